//! The analyzer's error type: one line per failure, naming the file it concerns.

use std::path::PathBuf;

/// Everything that can stop an analysis. Messages are single lines shown as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A run log could not be read (empty, corrupt, not a log...).
    #[error("{}: {source}", path.display())]
    Log {
        path: PathBuf,
        #[source]
        source: formats::FormatError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
    #[error("figure {name}: {message}")]
    Figure { name: String, message: String },
    /// Bad input or options (unknown run, bad SLO, bad README markers...).
    #[error("{0}")]
    Invalid(String),
    /// Inputs that hold nothing to analyse (directories without run logs): not a usage
    /// error, `llmib analyze` exits 1 on it.
    #[error("{0}")]
    NothingToAnalyse(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
