//! Open-loop replay of a request trace against an LLM serving backend, writing a raw
//! run log (`llmib-log`): the measuring instrument of llm-infer-bench.
//!
//! The instrument must never be the bottleneck and never lie:
//! * every request is sent at its absolute trace time by a dedicated dispatcher thread
//!   (`run/dispatch.rs`), each as its own task, and how late the client was
//!   is recorded per request and summarized;
//! * every trace request ends as exactly one log record, whatever happens (errors,
//!   broken streams, malformed data, timeouts, interruption);
//! * token counts say how they were obtained (`token_count_method`, see [`adapter`]);
//!   a chunk is never silently taken for a token;
//! * the log is written by its own thread as requests finish and flushed at least
//!   every 500 ms, so a killed run leaves a readable log.
//!
//! Entry points: [`replay`] (async, runs on the caller's tokio runtime: the CLI and the
//! `run`/`demo` pipelines use it) and [`check_endpoint`] (fail fast when the server is
//! down). See `replayer/README.md` for the map of the folders, the design, log fields and
//! benchmark figures.

mod clock;
mod config;
pub mod decode;
mod dialect;
mod error;
mod identity;
mod net;
mod run;
pub mod server_metrics;
pub mod shard;

use std::path::Path;

pub use config::{
    BackendKind, DEFAULT_POOL_IDLE, DEFAULT_SERVER_METRICS_INTERVAL, IgnoreEos, ReplayConfig,
    RequestFields, ServerMetricsSource, TlsOptions,
};
pub use decode::framing;
pub use dialect::adapter;
pub use error::ReplayError;
pub use net::cache_reset::warning as prefix_cache_reset_warning;
pub use net::http::{check_endpoint, check_endpoint_with};
pub use run::dispatch::SPIN_NS;
pub use run::request::{MAX_BODY_BYTES, MAX_EVENT_BYTES, TIMING_HEADERS};
pub use run::start_at::MAX_AHEAD as START_AT_MAX_AHEAD;
pub use run::stats::fmt_ns;
pub use run::stop::StopHandle;
pub use run::summary::{Connections, ReplaySummary};
pub use shard::{SHARD_RULE, Shard, assign_shards};
pub use tokio_util::sync::CancellationToken as Token;

/// Replays `trace` as `config` says, writing the run log to `config.output`.
///
/// Must be called from within a multi-threaded tokio runtime (request tasks run on it;
/// the dispatcher and the log writer get their own threads). Returns when every record
/// and the trailer are written. Request failures are records, not errors. The phases
/// of a run are in `run/mod.rs`.
pub async fn replay(
    trace: &Path,
    config: ReplayConfig,
    stop: impl Into<StopHandle>,
) -> Result<ReplaySummary, ReplayError> {
    run::replay(trace, config, stop.into()).await
}
