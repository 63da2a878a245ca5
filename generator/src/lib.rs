//! Seeded, reproducible request traces for llm-infer-bench.
//!
//! Layout (`README.md` has the map): [`synth`] (traces from a spec) and [`import`]
//! (traces from other files) use the shared modules at the top, never each other's
//! internals beyond what is named below:
//! * [`spec`]: spec files (TOML), command-line overrides, validation; [`limits`]: the
//!   largest prompt and trace accepted;
//! * [`rng`]: one ChaCha20 stream per purpose, portable samplers;
//! * [`dist`]: length distributions and arrival processes;
//! * [`prompt`]: prompt text with exact token counts (built-in words or a tokenizer);
//! * [`session`]: what multi-turn sessions share (scheduling, think times);
//! * [`inspect`]: trace summaries;
//! * [`synth`]: `trace` (spec -> requests -> trace file), `prefix` (shared prompt
//!   prefixes, `prefix = {...}`), `sessions` (multi-turn sessions of a spec), `suite`
//!   (the original benchmark's canonical traces);
//! * [`import`]: one module per source, `azure` (Azure LLM inference trace CSV),
//!   `burstgpt` (BurstGPT CSV), `mooncake` (Mooncake JSONL, prefix reuse kept by
//!   `block`), `sharegpt` and `jsonl` (chat datasets, through `dataset` and, with
//!   `--sessions`, `dataset_session`), and what they share: `csv` (the `csv` crate's
//!   reading of one line) and `lines` (the bounded line loop, see
//!   [`formats::InputFile`]).
//!
//! Determinism: the same spec (and tokenizer file) gives the same bytes on any machine
//! for as long as [`GENERATOR_VERSION`] is unchanged: integer-only records, streams keyed
//! by the seed, platform-independent float math (see [`rng`]), no hash-map iteration, no
//! clock. See `generator/README.md`.

pub mod dist;
pub mod error;
pub mod import;
pub mod inspect;
pub mod limits;
pub mod prompt;
pub mod rng;
pub mod session;
pub mod spec;
pub mod synth;

// The paths these modules had before `import/` and `synth/` (other crates and tests use
// them).
pub use import::{
    azure, block, burstgpt, csv, dataset, dataset_session, jsonl, mooncake, sharegpt,
};
pub use synth::sessions as synth_session;
pub use synth::{prefix, suite};

pub use error::{GenError, Result};
pub use import::azure::{AzureOptions, ImportReport, import_azure};
pub use import::burstgpt::{BurstGptOptions, BurstGptReport, import_burstgpt};
pub use import::dataset::{DatasetOptions, DatasetReport};
pub use import::jsonl::import_jsonl;
pub use import::mooncake::{MooncakeOptions, import_mooncake};
pub use import::sharegpt::import_sharegpt;
pub use inspect::{SessionSummary, Stats, TraceSummary};
pub use prompt::{Prompt, PromptBuilder, PromptSource};
pub use spec::{ArrivalKind, Overrides, load_spec, parse_spec, spec_to_toml, validate};
pub use synth::suite::{seed_suite, suite, suite_outputs, write_suite};
pub use synth::trace::{GenerateReport, Requests, generate_trace};

/// Version of the generation algorithm, written into every trace header. Bump it with
/// any change that alters the bytes generated from an existing spec.
pub const GENERATOR_VERSION: &str = "llmib-generator/1";
