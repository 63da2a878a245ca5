//! The two on-disk formats of llm-infer-bench, shared by every crate.
//!
//! * A **trace** (`llmib-trace`) says what to send and when: written by the generator,
//!   read by the replayer, shared between teams and identified by its sha256.
//! * A **run log** (`llmib-log`) says what happened to every request: written by the
//!   replayer as the run goes, read by the analyzer long after.
//!
//! Both are a stream of self-describing MessagePack maps (named fields, readable by any
//! msgpack library): one header, one object per request, one trailer holding the record
//! count and a CRC-32 of the record bytes, so truncation and corruption are detected.
//! Readers iterate without loading the whole file; writers append. Times are integer
//! nanoseconds; records hold no floats, so the same inputs give the same bytes anywhere.
//! `formats/README.md` documents every field.

mod atomic;
mod crc32;
mod display;
mod error;
mod hash;
mod input;
mod log;
mod object;
mod output;
mod redact;
mod server_info;
mod server_metrics;
mod spec;
mod stream;
mod trace;
mod trailer;

pub use atomic::{AtomicFile, write_atomic};
pub use crc32::{Crc32, crc32};
pub use display::readable;
pub use error::{FormatError, Result};
pub use hash::{sha256_bytes, sha256_file};
pub use input::{InputFile, InputKind, Size, read_input, read_input_utf8};
pub use log::{
    BackendInfo, ClientCpu, ClockSync, Events, LOG_FORMAT, LOG_VERSION, LogEnd, LogHeader,
    LogReader, LogRecord, LogTrailer, LogWriter, MAX_SHARDS, MergedShard, Outcome, ReplayOptions,
    RunLog, SIMULATOR_HEADER, ShardInfo, SimulatedInfo, StartAtInfo, TraceRef, WarmConnections,
    read_log,
};
pub use output::{
    OutputError, OutputGuard, ensure_parent_dir, ensure_regular_or_absent, file_kind,
};
pub use redact::redact_url;
pub use server_info::{IdentitySource, PrefixCacheReset, ServedModel, ServerIdentity};
pub use server_metrics::{
    MetricSample, SERVER_METRICS_FORMAT, SERVER_METRICS_SUFFIX, SERVER_METRICS_VERSION,
    ServerMetricsHeader, ServerMetricsLog, ServerMetricsRef, ServerMetricsWriter, is_sidecar_path,
    read_server_metrics, sidecar_path,
};
pub use spec::{
    Arrival, AzureImportSpec, BurstGptImportSpec, DatasetImportSpec, LengthDist,
    MooncakeImportSpec, PrefixShare, PrefixSpec, SessionSpec, SyntheticSpec, ThinkTime, TraceSpec,
};
pub use trace::{
    ChatMessage, TRACE_FORMAT, TRACE_VERSION, TRACE_VERSION_PLAIN, TRACE_VERSION_SESSIONS,
    TokenizerInfo, TraceHeader, TraceReader, TraceRequest, TraceTrailer, TraceWriter, read_trace,
    render_messages,
};

#[cfg(test)]
mod tests;
