//! Errors of reading and writing the two file formats.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing a trace or a run log.
///
/// Messages are single lines meant to be shown to a user as they are.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("i/o error: {0}")]
    Stream(#[from] std::io::Error),
    #[error("not an llm-infer-bench file: {0}")]
    NotOurs(String),
    #[error("expected a {expected} file but found a {found} file")]
    WrongKind {
        expected: &'static str,
        found: String,
    },
    #[error(
        "{kind} version {found} is newer than this tool supports (up to {supported}); upgrade llm-infer-bench"
    )]
    NewerVersion {
        kind: &'static str,
        found: u32,
        supported: u32,
    },
    #[error("malformed {what} (object {index}): {message}")]
    Malformed {
        what: &'static str,
        index: u64,
        message: String,
    },
    #[error("truncated file: ends after {records} complete records without a trailer")]
    Truncated { records: u64 },
    #[error("corrupted file: trailer says {expected} records but {found} were read")]
    CountMismatch { expected: u64, found: u64 },
    #[error("corrupted file: record checksum is {found:08x}, trailer says {expected:08x}")]
    ChecksumMismatch { expected: u32, found: u32 },
    #[error("unexpected data after the trailer")]
    TrailingData,
    #[error("cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
}

impl FormatError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        FormatError::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = FormatError> = std::result::Result<T, E>;
