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
    #[error("corrupted file: malformed {what} (object {index}): {message}")]
    Malformed {
        what: &'static str,
        index: u64,
        message: String,
    },
    #[error("truncated file: ends after {records} complete records without a trailer")]
    Truncated { records: u64 },
    /// The file ends inside its trailer, after every record.
    #[error("truncated file: ends inside its trailer, after all {records} records")]
    TruncatedTrailer { records: u64 },
    /// The file ends inside a header that starts like one of ours.
    #[error("truncated file: ends inside its header")]
    TruncatedHeader,
    #[error("corrupted file: trailer says {expected} records but {found} were read")]
    CountMismatch { expected: u64, found: u64 },
    #[error("corrupted file: record checksum is {found:08x}, trailer says {expected:08x}")]
    ChecksumMismatch { expected: u32, found: u32 },
    /// The header bytes differ from those the trailer's `header_crc32` covers.
    #[error("corrupted file: header checksum is {found:08x}, trailer says {expected:08x}")]
    HeaderChecksumMismatch { expected: u32, found: u32 },
    /// The header is one of ours but does not decode.
    #[error("corrupted file: damaged header ({0})")]
    DamagedHeader(String),
    /// The trailer (or what stands where it must be) does not verify.
    #[error("corrupted file: damaged trailer ({0})")]
    DamagedTrailer(String),
    /// Any other damage found while reading.
    #[error("corrupted file: {0}")]
    Corrupted(String),
    #[error("corrupted file: unexpected data after the trailer")]
    TrailingData,
    #[error("cannot encode {what}: {message}")]
    Encode { what: &'static str, message: String },
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    /// An input file longer than the limit of its kind ([`crate::InputKind`]).
    #[error("{}: more than {limit}, the limit for a {what}", path.display())]
    InputTooLarge {
        path: PathBuf,
        what: &'static str,
        limit: String,
    },
    /// An input line longer than the limit of its kind; `line` is 1-based.
    #[error("{}:{line}: line longer than {limit}, the limit for lines of a {what}", path.display())]
    LineTooLong {
        path: PathBuf,
        line: usize,
        what: &'static str,
        limit: String,
    },
    /// Input text that is not UTF-8; `line` and `byte` (in the line) are 1-based.
    #[error("{}:{line}: not UTF-8 (byte {byte})", path.display())]
    NotUtf8 {
        path: PathBuf,
        line: usize,
        byte: usize,
    },
    /// An output path refused by [`crate::OutputGuard`] rules (exists, is an input, is
    /// not a regular file, has no parent directory).
    #[error(transparent)]
    Output(#[from] crate::output::OutputError),
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

/// Makes a decoder's message fit one readable line: control characters become spaces,
/// numbers longer than 20 digits (a float such as 1e300 printed in full) are shown in
/// scientific notation, and the whole is cut to 200 characters.
pub(crate) fn tidy_message(message: &str) -> String {
    const MAX_CHARS: usize = 200;
    let chars: Vec<char> = message.chars().collect();
    let mut out = String::new();
    let (mut i, mut shown) = (0usize, 0usize);
    while i < chars.len() {
        if shown >= MAX_CHARS {
            out.push('…');
            break;
        }
        let digits = chars[i..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits > 20 {
            let run: String = chars[i..i + digits].iter().collect();
            let short = scientific(&run);
            i += digits;
            // A float printed in full ends with `.0`: the notation replaces it.
            let rest = &chars[i..];
            if rest.starts_with(&['.', '0']) && !rest.get(2).is_some_and(char::is_ascii_digit) {
                i += 2;
            }
            shown += short.len();
            out.push_str(&short);
            continue;
        }
        let c = chars[i];
        out.push(if c.is_control() { ' ' } else { c });
        shown += 1;
        i += 1;
    }
    out
}

/// A long run of decimal digits in scientific notation, 6 significant digits at most.
fn scientific(digits: &str) -> String {
    let x: f64 = digits.parse().unwrap_or(f64::INFINITY);
    let sci = format!("{x:.5e}");
    match sci.split_once('e') {
        Some((m, e)) => format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.')),
        None => sci,
    }
}

#[cfg(test)]
mod tests {
    use super::tidy_message;

    #[test]
    fn messages_become_one_short_readable_line() {
        let huge = format!("invalid type: floating point `1{}.0`", "0".repeat(300));
        assert_eq!(tidy_message(&huge), "invalid type: floating point `1e300`");
        assert_eq!(
            tidy_message("u64 18446744073709551615"),
            "u64 18446744073709551615"
        );
        assert_eq!(tidy_message("a\nb\tc"), "a b c");
        let long = tidy_message(&"x".repeat(5000));
        assert!(long.chars().count() <= 201, "{}", long.len());
    }
}
