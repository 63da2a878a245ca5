//! The root crate's integration tests, in one test binary (issue 22: one binary links
//! the workspace once, instead of once per test file): most drive the real `llmib`
//! binary, one module per subject. Tests whose numbers depend on wall-clock time hold
//! [`common::timing_sensitive`] so that they never run alongside each other. The slow
//! checks are `#[ignore = "slow: ..."]`: `cargo test --workspace` leaves them out and
//! `.ci/run` runs them as its second step (`cargo test --workspace --tests -- --ignored`).

mod common;

/// The analyzer's hand-built run logs (`analyzer/tests/all/common/`).
#[path = "../../analyzer/tests/all/common/mod.rs"]
mod analyzer_logs;
/// The replayer's HTTPS front (`replayer/tests/all/common/tls_front.rs`).
#[path = "../../replayer/tests/all/common/tls_front.rs"]
mod tls_front;

mod analyze;
mod analyze_sessions;
mod calibrate;
mod compare;
mod connections;
mod deploy_recipes;
mod dilation;
mod e2e_suite;
mod endpoints;
mod generate;
mod import;
mod import_sessions;
mod inputs;
mod integrity;
mod native_backends;
mod outputs;
mod prefix_cache;
mod reasoning;
mod replay;
mod runguard;
mod search;
mod server_metrics;
mod sessions_generate;
mod sessions_replay;
mod shards;
mod sweep;
mod twin;
mod vllm_newline;
