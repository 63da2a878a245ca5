//! Bounded reading of the input files a user names: imported traces and datasets,
//! tokenizers, certificates, spec files.
//!
//! Why: such a path may be anything: `/dev/zero`, a FIFO, `<(cmd)`, a file of one
//! endless line. Reading it with `read_to_string` or `lines()` allocates without bound
//! (the process dies with exit 134, or hangs). Every such read goes through
//! [`InputFile`], which
//! * reads the file once, front to back (a FIFO or `/dev/fd/N` can only be read once),
//!   and hashes exactly the bytes read, so the recorded sha256 is that of the input;
//! * refuses more than [`InputKind::max_bytes`] bytes in all, and a line longer than
//!   [`InputKind::max_line`], with one error line naming the file (and the line);
//! * drops a UTF-8 byte-order mark at the start, and `\n` / `\r\n` line ends.
//!
//! The limits per kind are the `InputKind` constants below, documented in README.md
//! ("Input limits").

use std::fmt;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{FormatError, Result};

const KIB: u64 = 1 << 10;
const MIB: u64 = 1 << 20;
const GIB: u64 = 1 << 30;

/// A kind of input file and its limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputKind {
    /// What the file is, for messages ("CSV trace").
    pub what: &'static str,
    /// Most bytes read from the file in all.
    pub max_bytes: u64,
    /// Longest line, in bytes (line end excluded); whole-file kinds have none.
    pub max_line: Option<u64>,
}

impl InputKind {
    /// Azure and BurstGPT CSV traces (rows of a few dozen bytes).
    pub const CSV_TRACE: InputKind = InputKind {
        what: "CSV trace",
        max_bytes: 16 * GIB,
        max_line: Some(64 * KIB),
    };
    /// Mooncake trace JSONL (a line's `hash_ids` hold up to about a million ids).
    pub const MOONCAKE_JSONL: InputKind = InputKind {
        what: "Mooncake JSONL",
        max_bytes: 16 * GIB,
        max_line: Some(64 * MIB),
    };
    /// Prompt JSONL (a line holds a prompt or a conversation; every line is kept in
    /// memory until the import ends).
    pub const PROMPT_JSONL: InputKind = InputKind {
        what: "prompt JSONL",
        max_bytes: 4 * GIB,
        max_line: Some(64 * MIB),
    };
    /// ShareGPT JSON (one document, parsed as it is read).
    pub const SHAREGPT_JSON: InputKind = InputKind {
        what: "ShareGPT JSON",
        max_bytes: 4 * GIB,
        max_line: None,
    };
    /// Hugging Face `tokenizer.json` (the largest vocabularies take tens of MB).
    pub const TOKENIZER: InputKind = InputKind {
        what: "tokenizer file",
        max_bytes: 128 * MIB,
        max_line: None,
    };
    /// PEM certificates (`--cacert`; a system bundle is a few hundred KB).
    pub const CERTIFICATES: InputKind = InputKind {
        what: "certificate file",
        max_bytes: 16 * MIB,
        max_line: None,
    };
    /// TOML spec and profile files.
    pub const SPEC: InputKind = InputKind {
        what: "spec file",
        max_bytes: 16 * MIB,
        max_line: None,
    };
    /// Capacity manifests (`sweep.json`, `search.json`: a line per run, a few hundred
    /// bytes each).
    pub const MANIFEST: InputKind = InputKind {
        what: "capacity manifest",
        max_bytes: 64 * MIB,
        max_line: None,
    };
    /// Markdown files whose marked blocks `--readme` and `llmib demo --readme` rewrite.
    pub const README: InputKind = InputKind {
        what: "README",
        max_bytes: 16 * MIB,
        max_line: None,
    };
}

/// A byte count as the limits are written: `64 KiB`, `16 GiB`, else bytes.
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, name) in [(GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")] {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{} {name}", self.0 / unit);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// The file under a [`BufReader`]: hashes and counts every byte read, and fails once
/// more than `max` bytes came.
struct Counted<R> {
    file: R,
    hasher: Sha256,
    read: u64,
    max: u64,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let room = self.max.saturating_add(1).saturating_sub(self.read);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.file.read(&mut buf[..want])?;
        self.read += n as u64;
        self.hasher.update(&buf[..n]);
        if self.read > self.max {
            // `InputFile::error` tells this apart by the count.
            return Err(io::Error::other("input over its limit"));
        }
        Ok(n)
    }
}

/// A user's input file read once, bounded, hashed; see the module docs.
pub struct InputFile<R = File> {
    path: PathBuf,
    kind: InputKind,
    reader: BufReader<Counted<R>>,
    /// Bytes of a partial byte-order mark, which start the content.
    pending: Vec<u8>,
    line: Vec<u8>,
    line_no: usize,
}

impl InputFile {
    /// Opens `path` (a FIFO blocks here until its writer opens it, as for `cat`) and
    /// drops a leading UTF-8 byte-order mark.
    pub fn open(path: &Path, kind: InputKind) -> Result<InputFile> {
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        InputFile::from_reader(file, path, kind)
    }
}

impl<R: Read> InputFile<R> {
    /// Reads `file` as [`InputFile::open`] reads a file; `path` labels errors.
    pub fn from_reader(file: R, path: &Path, kind: InputKind) -> Result<InputFile<R>> {
        let counted = Counted {
            file,
            hasher: Sha256::new(),
            read: 0,
            max: kind.max_bytes,
        };
        let mut f = InputFile {
            path: path.to_path_buf(),
            kind,
            reader: BufReader::with_capacity(1 << 16, counted),
            pending: Vec::new(),
            line: Vec::new(),
            line_no: 0,
        };
        f.skip_bom()?;
        Ok(f)
    }

    /// The path given to [`InputFile::open`].
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn skip_bom(&mut self) -> Result<()> {
        const BOM: &[u8] = b"\xEF\xBB\xBF";
        let mut start = Vec::with_capacity(3);
        while start.len() < 3 {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) => return Err(self.error(e)),
            };
            if buf.is_empty() {
                break;
            }
            let take = buf.len().min(3 - start.len());
            if !BOM.starts_with(&[&start[..], &buf[..take]].concat()) {
                break;
            }
            start.extend_from_slice(&buf[..take]);
            self.reader.consume(take);
        }
        // A partial mark (one or two of its bytes, then something else) is kept.
        if !start.is_empty() && start != BOM {
            self.pending = start;
        }
        Ok(())
    }

    /// The next line, without its `\n` or `\r\n`, and its 1-based number; `None` at the
    /// end of the file. A line longer than the kind's limit or not UTF-8 is an error
    /// naming the file and line.
    pub fn next_line(&mut self) -> Result<Option<(usize, &str)>> {
        let max = self.kind.max_line.unwrap_or(self.kind.max_bytes);
        // A partial byte-order mark kept by `skip_bom` starts the first line.
        self.line.clear();
        self.line.append(&mut self.pending);
        self.line_no += 1;
        let mut ended = false;
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(buf) => buf,
                Err(e) => return Err(self.error(e)),
            };
            if buf.is_empty() {
                break;
            }
            let (take, newline) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let content = take - usize::from(newline);
            if (self.line.len() + content) as u64 > max.saturating_add(1) {
                return Err(FormatError::LineTooLong {
                    path: self.path.clone(),
                    line: self.line_no,
                    what: self.kind.what,
                    limit: Size(max).to_string(),
                });
            }
            self.line.extend_from_slice(&buf[..content]);
            self.reader.consume(take);
            if newline {
                ended = true;
                break;
            }
        }
        if !ended && self.line.is_empty() {
            return Ok(None);
        }
        if self.line.last() == Some(&b'\r') {
            self.line.pop();
        }
        if self.line.len() as u64 > max {
            return Err(FormatError::LineTooLong {
                path: self.path.clone(),
                line: self.line_no,
                what: self.kind.what,
                limit: Size(max).to_string(),
            });
        }
        match std::str::from_utf8(&self.line) {
            Ok(s) => Ok(Some((self.line_no, s))),
            Err(e) => Err(FormatError::NotUtf8 {
                path: self.path.clone(),
                line: self.line_no,
                byte: e.valid_up_to() + 1,
            }),
        }
    }

    /// The rest of the file (after a byte-order mark), within the kind's limit.
    pub fn read_rest(&mut self) -> Result<Vec<u8>> {
        let mut out = std::mem::take(&mut self.pending);
        self.reader
            .read_to_end(&mut out)
            .map_err(|e| self.error(e))?;
        Ok(out)
    }

    /// The rest of the file as UTF-8 text.
    pub fn read_rest_utf8(&mut self) -> Result<String> {
        let bytes = self.read_rest()?;
        String::from_utf8(bytes).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            let before = &e.as_bytes()[..at];
            let line_start = before
                .iter()
                .rposition(|&b| b == b'\n')
                .map_or(0, |i| i + 1);
            FormatError::NotUtf8 {
                path: self.path.clone(),
                line: before.iter().filter(|&&b| b == b'\n').count() + 1,
                byte: at - line_start + 1,
            }
        })
    }

    /// A reader of the rest of the file (for parsers that read as they go). Its errors
    /// are turned into this crate's by [`InputFile::error`].
    pub fn reader(&mut self) -> impl Read + '_ {
        io::Cursor::new(std::mem::take(&mut self.pending)).chain(&mut self.reader)
    }

    /// The limit error when more than the kind's limit was read (for errors that came
    /// through a parser reading [`InputFile::reader`], which hides their cause).
    pub fn limit_error(&self) -> Option<FormatError> {
        let c = self.reader.get_ref();
        (c.read > c.max).then(|| FormatError::InputTooLarge {
            path: self.path.clone(),
            what: self.kind.what,
            limit: Size(self.kind.max_bytes).to_string(),
        })
    }

    /// Reads to the end of the file (within the limit) and returns the lowercase hex
    /// sha256 of every byte read, byte-order mark included.
    pub fn finish(mut self) -> Result<String> {
        io::copy(&mut self.reader, &mut io::sink()).map_err(|e| self.error(e))?;
        Ok(crate::hash::hex(
            &self.reader.into_inner().hasher.finalize(),
        ))
    }

    /// The one-line error of a read failure: the limit, or the system's reason.
    pub fn error(&self, e: io::Error) -> FormatError {
        match self.limit_error() {
            Some(too_large) => too_large,
            None => FormatError::io(&self.path, e),
        }
    }
}

/// Reads a whole input file of `kind`, bounded: the bytes after a byte-order mark.
pub fn read_input(path: &Path, kind: InputKind) -> Result<Vec<u8>> {
    InputFile::open(path, kind)?.read_rest()
}

/// Reads a whole input file of `kind`, bounded, as UTF-8 text (byte-order mark dropped).
pub fn read_input_utf8(path: &Path, kind: InputKind) -> Result<String> {
    InputFile::open(path, kind)?.read_rest_utf8()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, bytes).unwrap();
        f
    }

    fn lines(bytes: &[u8], kind: InputKind) -> std::result::Result<Vec<String>, String> {
        let f = file(bytes);
        let mut input = InputFile::open(f.path(), kind).map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        while let Some((n, l)) = input.next_line().map_err(|e| e.to_string())? {
            out.push(format!("{n}:{l}"));
        }
        Ok(out)
    }

    const SMALL: InputKind = InputKind {
        what: "test file",
        max_bytes: 32,
        max_line: Some(4),
    };

    #[test]
    fn lines_drop_bom_and_line_ends() {
        let got = lines(b"\xEF\xBB\xBFab\r\n\ncd\nef", SMALL).unwrap();
        assert_eq!(got, ["1:ab", "2:", "3:cd", "4:ef"]);
        assert_eq!(lines(b"", SMALL).unwrap(), Vec::<String>::new());
        // A partial mark is data.
        let e = lines(b"\xEF\xBBa\n", SMALL).unwrap_err();
        assert!(e.ends_with(":1: not UTF-8 (byte 1)"), "{e}");
        let f = file(b"\xEF\xBB");
        assert_eq!(read_input(f.path(), SMALL).unwrap(), b"\xEF\xBB");
    }

    #[test]
    fn limits_are_one_line_errors() {
        let e = lines(b"ab\nabcde\n", SMALL).unwrap_err();
        assert!(
            e.ends_with(":2: line longer than 4 bytes, the limit for lines of a test file"),
            "{e}"
        );
        assert!(lines(b"abcd\r\n", SMALL).is_ok());
        let e = lines(&b"a\n".repeat(20), SMALL).unwrap_err();
        assert!(
            e.ends_with(": more than 32 bytes, the limit for a test file"),
            "{e}"
        );
        let e = lines(b"a\n\xff\n", SMALL).unwrap_err();
        assert!(e.ends_with(":2: not UTF-8 (byte 1)"), "{e}");
    }

    #[test]
    fn hash_covers_every_byte_read_once() {
        let bytes = b"\xEF\xBB\xBFab\ncd\n";
        let f = file(bytes);
        let mut input = InputFile::open(f.path(), SMALL).unwrap();
        input.next_line().unwrap();
        assert_eq!(input.finish().unwrap(), crate::sha256_bytes(bytes));
        let e = read_input(Path::new("/dev/zero"), SMALL).unwrap_err();
        assert_eq!(
            e.to_string(),
            "/dev/zero: more than 32 bytes, the limit for a test file"
        );
        assert_eq!(read_input_utf8(f.path(), SMALL).unwrap(), "ab\ncd\n");
    }

    #[test]
    fn sizes_read_as_written() {
        assert_eq!(Size(64 * KIB).to_string(), "64 KiB");
        assert_eq!(Size(16 * GIB).to_string(), "16 GiB");
        assert_eq!(Size(1000).to_string(), "1000 bytes");
    }
}
