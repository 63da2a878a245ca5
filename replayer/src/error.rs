//! The one error type of the replayer's API, apart so that every phase of a run
//! ([`crate::run`], [`crate::net::http`], [`crate::run::prepare`]) can return it without depending
//! on the crate root.

use std::path::PathBuf;

use formats::FormatError;

/// Everything that stops a replay before it could start or finish writing its log.
/// Request failures are never errors: they are records.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Config(String),
    #[error("reading trace {path}: {source}")]
    Trace {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("cannot reach {endpoint}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("run log {path}: {message}")]
    Log { path: PathBuf, message: String },
    #[error("{0}")]
    Internal(String),
    /// Stopped (SIGINT, SIGTERM through the [`crate::StopHandle`]) before the run
    /// started, with nothing sent and no log written: a `--start-at` wait. Callers
    /// report it as an interruption (exit 130), not as a failure.
    #[error("{0}")]
    Interrupted(String),
}
