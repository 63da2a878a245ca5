//! Errors of generation and import. Every message is one line, fit to show a user as is.

use std::path::PathBuf;

use formats::FormatError;

#[derive(Debug, thiserror::Error)]
pub enum GenError {
    /// A parameter that cannot be met (rate <= 0, floor > cap, NaN, ...).
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// A spec file that does not parse; `line` is 1-based.
    #[error("{}:{line}: {message}", path.display())]
    SpecSyntax {
        path: PathBuf,
        line: usize,
        message: String,
    },
    /// A malformed input row (CSV import); `line` is 1-based.
    #[error("{}:{line}: {message}", path.display())]
    BadRow {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("tokenizer {}: {message}", path.display())]
    Tokenizer { path: PathBuf, message: String },
    /// A prompt whose re-encoding does not have the requested token count.
    #[error("{0}")]
    Exactness(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Format(#[from] FormatError),
}

impl GenError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        GenError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = GenError> = std::result::Result<T, E>;
