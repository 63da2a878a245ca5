//! Seeded, reproducible request traces for llm-infer-bench.
//!
//! * [`spec`]: spec files (TOML), command-line overrides, validation; [`limits`]: the
//!   largest prompt and trace accepted;
//! * [`rng`]: one ChaCha20 stream per purpose, portable samplers;
//! * [`dist`]: length distributions and arrival processes;
//! * [`prompt`]: prompt text with exact token counts (built-in words or a tokenizer);
//! * [`synth`]: spec -> requests -> trace file;
//! * [`prefix`]: shared prompt prefixes of spec files (`prefix = {...}`);
//! * [`session`], [`synth_session`], [`dataset_session`]: multi-turn sessions (shared
//!   scheduling and think times; spec synthesis; dataset imports with `--sessions`);
//! * [`suite`]: the original benchmark's canonical traces;
//! * [`azure`]: import of the Azure LLM inference trace CSV;
//! * [`burstgpt`]: import of the BurstGPT trace CSV;
//! * [`csv`]: the CSV line splitter of both (quotes, escaped quotes); `lines`: the line
//!   loop every line-oriented import shares (bounded reads, see [`formats::InputFile`]);
//! * [`dataset`], [`sharegpt`], [`jsonl`]: import of chat datasets (ShareGPT JSON,
//!   prompt/messages JSONL);
//! * [`mooncake`]: import of Mooncake trace JSONL, with prefix reuse kept by [`block`];
//! * [`inspect`]: trace summaries.
//!
//! Determinism: the same spec (and tokenizer file) gives the same bytes on any machine
//! for as long as [`GENERATOR_VERSION`] is unchanged: integer-only records, streams keyed
//! by the seed, platform-independent float math (see [`rng`]), no hash-map iteration, no
//! clock. See `generator/README.md`.

pub mod azure;
pub mod block;
pub mod burstgpt;
pub mod csv;
pub mod dataset;
pub mod dataset_session;
pub mod dist;
pub mod error;
pub mod inspect;
pub mod jsonl;
pub mod limits;
mod lines;
pub mod mooncake;
pub mod prefix;
pub mod prompt;
pub mod rng;
pub mod session;
pub mod sharegpt;
pub mod spec;
pub mod suite;
pub mod synth;
pub mod synth_session;

pub use azure::{AzureOptions, ImportReport, import_azure};
pub use burstgpt::{BurstGptOptions, BurstGptReport, import_burstgpt};
pub use dataset::{DatasetOptions, DatasetReport};
pub use error::{GenError, Result};
pub use inspect::{SessionSummary, Stats, TraceSummary};
pub use jsonl::import_jsonl;
pub use mooncake::{MooncakeOptions, import_mooncake};
pub use prompt::{Prompt, PromptBuilder, PromptSource};
pub use sharegpt::import_sharegpt;
pub use spec::{ArrivalKind, Overrides, load_spec, parse_spec, spec_to_toml, validate};
pub use suite::{seed_suite, suite, suite_outputs, write_suite};
pub use synth::{GenerateReport, Requests, generate_trace};

/// Version of the generation algorithm, written into every trace header. Bump it with
/// any change that alters the bytes generated from an existing spec.
pub const GENERATOR_VERSION: &str = "llmib-generator/1";
