//! The run-log format (`llmib-log`, version 2): what happened to every request.
//!
//! Written incrementally by the replayer while the run goes on, so a killed run leaves a
//! file readable up to its last flushed record; the trailer says whether the run ended
//! normally. All times are integer nanoseconds since the run's start instant, measured
//! with a monotonic clock; `started_unix_ns` ties that instant to wall-clock time.
//!
//! A missing trailer is legal (a killed writer) but a damaged one is not: a tail that
//! starts like a trailer and does not verify is an error, never a silent truncation.
//! The reader knows every trailer field but `complete` and `ended_ns`, so a tail that is
//! a strict prefix of such a trailer is a cut one. Version 1 logs still read.
//!
//! Layout: [`header`] (the first object), [`record`] (one per request), [`io`] (trailer,
//! writer, reader); this module only gathers them.

mod header;
mod io;
mod record;

pub use header::{
    BackendInfo, ClockSync, LOG_FORMAT, LOG_VERSION, LogHeader, MAX_SHARDS, MergedShard,
    ReplayOptions, SIMULATOR_HEADER, ShardInfo, SimulatedInfo, StartAtInfo, TraceRef,
    WarmConnections,
};
pub use io::{ClientCpu, LogEnd, LogReader, LogTrailer, LogWriter, RunLog, read_log};
pub use record::{Events, LogRecord, Outcome};
