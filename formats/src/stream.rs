//! The container shared by both formats: header object, record objects, trailer object.
//!
//! Writers append one object at a time and keep a running CRC-32 and count of the record
//! bytes, and the CRC-32 of the header, for the trailer (sealed as [`crate::trailer`]
//! describes). Readers copy one object at a time (see [`crate::object`]), so memory
//! stays bounded by the largest single record whatever the file size, verify the
//! trailer against what they read, and hand an incomplete last object to the format's
//! reader to decide between a cut file and a damaged one.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crc32::{Crc32, crc32};
use crate::error::{FormatError, Result, tidy_message};
use crate::object::{ObjectRead, encode_named, is_trailer, map_marker_len, read_object};
use crate::trailer::{Hole, Sealed, Tail, TrailerSums, check_seal, classify_tail, encode_sealed};

/// Appends header, records and trailer to any writer.
pub(crate) struct ObjectWriter<W: Write> {
    out: W,
    header_crc: u32,
    crc: Crc32,
    count: u64,
    scratch: Vec<u8>,
}

impl<W: Write> ObjectWriter<W> {
    pub fn new<H: Serialize>(mut out: W, header: &H) -> Result<Self> {
        let mut scratch = Vec::with_capacity(4096);
        encode_named("header", header, &mut scratch)?;
        out.write_all(&scratch)?;
        Ok(ObjectWriter {
            out,
            header_crc: crc32(&scratch),
            crc: Crc32::new(),
            count: 0,
            scratch,
        })
    }

    pub fn write_record<T: Serialize>(&mut self, record: &T) -> Result<()> {
        encode_named("record", record, &mut self.scratch)?;
        self.out.write_all(&self.scratch)?;
        self.crc.update(&self.scratch);
        self.count += 1;
        Ok(())
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn crc32(&self) -> u32 {
        self.crc.value()
    }

    /// CRC-32 of the header object's bytes as written.
    pub fn header_crc32(&self) -> u32 {
        self.header_crc
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    /// Writes the trailer with its `trailer_crc32` seal filled in.
    pub fn write_trailer<T: Sealed>(mut self, trailer: &mut T) -> Result<W> {
        encode_sealed(trailer, &mut self.scratch)?;
        self.out.write_all(&self.scratch)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

impl<F: Write> ObjectWriter<BufWriter<F>> {
    /// A writer of `file` through a 64 KiB buffer, the header written.
    pub fn buffered(file: F, header: &impl Serialize) -> Result<Self> {
        ObjectWriter::new(BufWriter::with_capacity(1 << 16, file), header)
    }

    /// Writes the trailer (see [`ObjectWriter::write_trailer`]) and returns the file,
    /// everything flushed into it.
    pub fn finish<T: Sealed>(self, trailer: &mut T) -> Result<F> {
        let buf = self.write_trailer(trailer)?;
        buf.into_inner()
            .map_err(|e| FormatError::Stream(e.into_error()))
    }
}

/// Opens `path` for a reader, through a 64 KiB buffer; errors name the path.
pub(crate) fn open_buffered(path: &Path) -> Result<BufReader<File>> {
    let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

/// One step of a reader.
pub(crate) enum Next<'a> {
    Record(&'a [u8]),
    /// A trailer, decoded and checked by [`ObjectReader::trailer`].
    Trailer,
    /// Clean end of stream without a trailer.
    EndWithoutTrailer,
    /// The stream ends in the middle of an object; see [`ObjectReader::tail`].
    PartialTail,
    /// Bytes that are not MessagePack (a never-used marker, an implausible length);
    /// what was read of the object is in [`ObjectReader::tail`].
    Invalid(String),
}

/// Reads objects; the caller decodes.
pub(crate) struct ObjectReader<R: BufRead> {
    input: R,
    buf: Vec<u8>,
    version: u32,
    header_crc: u32,
    crc: Crc32,
    count: u64,
}

impl<R: BufRead> ObjectReader<R> {
    pub fn new(input: R) -> Self {
        ObjectReader {
            input,
            buf: Vec::with_capacity(4096),
            version: 0,
            header_crc: 0,
            crc: Crc32::new(),
            count: 0,
        }
    }

    /// Reads the header object, checks its `format` and `version` (see
    /// [`check_header`]) and returns its raw bytes.
    pub fn header(&mut self, expected: &'static str, supported: u32) -> Result<&[u8]> {
        match read_object(&mut self.input, &mut self.buf).map_err(not_msgpack)? {
            ObjectRead::Complete => {}
            ObjectRead::End => return Err(FormatError::NotOurs("empty file".into())),
            ObjectRead::Partial if starts_like_header(&self.buf, expected) => {
                return Err(if ends_with_sealed_trailer(&self.buf) {
                    FormatError::DamagedHeader(
                        "it runs over the records into the trailer at the end of the file".into(),
                    )
                } else {
                    FormatError::TruncatedHeader
                });
            }
            ObjectRead::Partial => {
                return Err(FormatError::NotOurs(
                    "file ends inside its first object".into(),
                ));
            }
        }
        self.version = check_header(&self.buf, expected, supported)?;
        self.header_crc = crc32(&self.buf);
        Ok(&self.buf)
    }

    pub fn next(&mut self) -> Result<Next<'_>> {
        let read = match read_object(&mut self.input, &mut self.buf) {
            Ok(read) => read,
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Ok(Next::Invalid(e.to_string()));
            }
            Err(e) => return Err(e.into()),
        };
        match read {
            ObjectRead::End => Ok(Next::EndWithoutTrailer),
            ObjectRead::Partial => Ok(Next::PartialTail),
            ObjectRead::Complete => {
                if is_trailer(&self.buf) {
                    Ok(Next::Trailer)
                } else {
                    self.crc.update(&self.buf);
                    self.count += 1;
                    Ok(Next::Record(&self.buf))
                }
            }
        }
    }

    /// Records read so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The integrity fields the trailer must hold after the records read so far
    /// (`trailer_crc32` is left for the writer to compute).
    pub fn expected_sums(&self) -> TrailerSums {
        TrailerSums {
            trailer: true,
            record_count: self.count,
            crc32: self.crc.value(),
            header_crc32: (self.version >= 2).then_some(self.header_crc),
            trailer_crc32: (self.version >= 2).then_some(0),
        }
    }

    /// Classifies the incomplete or invalid object last read (see [`classify_tail`]).
    pub fn tail(&self, expected_trailer: &[u8], holes: &[(&str, Hole)]) -> Tail {
        classify_tail(&self.buf, expected_trailer, holes)
    }

    /// Decodes the trailer last read (a failure is a damaged trailer) and checks it (see
    /// [`ObjectReader::verify_trailer`]).
    pub fn trailer<T: Sealed>(&mut self) -> Result<T> {
        let trailer: T = decode_trailer(&self.buf)?;
        self.verify_trailer(&trailer.sums())?;
        Ok(trailer)
    }

    /// Checks the trailer last read: its own seal, the header checksum, its
    /// `record_count` and `crc32` against the records read, and that nothing follows.
    /// Version 2 files must carry both `trailer_crc32` and `header_crc32`; a version 1
    /// file is checked on whatever it carries.
    pub fn verify_trailer(&mut self, sums: &TrailerSums) -> Result<()> {
        if !sums.trailer {
            return Err(FormatError::DamagedTrailer("`trailer` is not true".into()));
        }
        let v2 = self.version >= 2;
        if sums.trailer_crc32.is_some() || v2 {
            check_seal(&self.buf).map_err(FormatError::DamagedTrailer)?;
        }
        match sums.header_crc32 {
            Some(h) if h != self.header_crc => {
                return Err(FormatError::HeaderChecksumMismatch {
                    expected: h,
                    found: self.header_crc,
                });
            }
            None if v2 => {
                return Err(FormatError::DamagedTrailer("no header_crc32 field".into()));
            }
            _ => {}
        }
        if sums.record_count != self.count {
            return Err(FormatError::CountMismatch {
                expected: sums.record_count,
                found: self.count,
            });
        }
        if sums.crc32 != self.crc.value() {
            return Err(FormatError::ChecksumMismatch {
                expected: sums.crc32,
                found: self.crc.value(),
            });
        }
        if !self.input.fill_buf()?.is_empty() {
            return Err(FormatError::TrailingData);
        }
        Ok(())
    }
}

/// True when a partial first object is a map that starts with the key `format` set to
/// `kind`, or is cut before that could be told.
fn starts_like_header(partial: &[u8], kind: &str) -> bool {
    let Some(len) = partial.first().and_then(|&m| map_marker_len(m)) else {
        return false;
    };
    let mut want = rmp_serde::to_vec("format").expect("str encodes");
    want.extend(rmp_serde::to_vec(kind).expect("str encodes"));
    let rest = partial.get(len..).unwrap_or(&[]);
    let n = rest.len().min(want.len());
    rest[..n] == want[..n]
}

/// True when `bytes` end with a complete trailer whose `trailer_crc32` verifies: a
/// header that reaches it was damaged, not cut (version 2 files only; a cut file
/// cannot end with its trailer).
fn ends_with_sealed_trailer(bytes: &[u8]) -> bool {
    const KEY: &[u8] = b"\xa7trailer";
    let mut end = bytes.len();
    while let Some(at) = bytes[..end].windows(KEY.len()).rposition(|w| w == KEY) {
        let sealed = [1, 3, 5].iter().any(|&marker_len| {
            at.checked_sub(marker_len)
                .is_some_and(|start| check_seal(&bytes[start..]).is_ok())
        });
        if sealed {
            return true;
        }
        end = at + KEY.len() - 1;
    }
    false
}

fn not_msgpack(e: std::io::Error) -> FormatError {
    if e.kind() == std::io::ErrorKind::InvalidData {
        FormatError::NotOurs(format!("not MessagePack ({e})"))
    } else {
        FormatError::Stream(e)
    }
}

/// The `format` and `version` fields every header starts with, read before the full
/// header so that a foreign or newer file gets a precise error.
#[derive(serde::Deserialize)]
pub(crate) struct HeaderProbe {
    pub format: Option<String>,
    pub version: Option<u32>,
}

/// Checks a header's `format` and `version`; returns the version.
pub(crate) fn check_header(bytes: &[u8], expected: &'static str, supported: u32) -> Result<u32> {
    let probe: HeaderProbe = rmp_serde::from_slice(bytes).map_err(|e| {
        if starts_like_header(bytes, expected) {
            FormatError::DamagedHeader(tidy_message(&e.to_string()))
        } else {
            FormatError::NotOurs("its first object is not a header map".into())
        }
    })?;
    let Some(format) = probe.format else {
        return Err(FormatError::NotOurs(
            "its header has no `format` field".into(),
        ));
    };
    if format != expected {
        // The value is the file's, any length and any characters: shown tidied (found by
        // fuzzing: a newline in it split the error line).
        if format.starts_with("llmib-") {
            return Err(FormatError::WrongKind {
                expected,
                found: tidy_message(&format),
            });
        }
        return Err(FormatError::NotOurs(format!(
            "unknown format {}",
            tidy_message(&format!("{format:?}"))
        )));
    }
    // From here on the file says it is of the expected kind: what is wrong is damage.
    let Some(version) = probe.version else {
        return Err(FormatError::DamagedHeader("no `version` field".into()));
    };
    if version > supported {
        return Err(FormatError::NewerVersion {
            kind: expected,
            found: version,
            supported,
        });
    }
    if version == 0 {
        return Err(FormatError::DamagedHeader(
            "version 0 does not exist".into(),
        ));
    }
    Ok(version)
}

/// Decodes a header that passed [`check_header`]: a failure is a damaged header.
pub(crate) fn decode_header<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| FormatError::DamagedHeader(tidy_message(&e.to_string())))
}

/// Decodes a trailer: a failure is a damaged trailer.
pub(crate) fn decode_trailer<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    rmp_serde::from_slice(bytes)
        .map_err(|e| FormatError::DamagedTrailer(tidy_message(&e.to_string())))
}
