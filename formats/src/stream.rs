//! The container shared by both formats: header object, record objects, trailer object.
//!
//! Writers append one object at a time and keep a running CRC-32 and count of the record
//! bytes for the trailer. Readers copy one object at a time (see [`crate::object`]),
//! so memory stays bounded by the largest single record whatever the file size.

use std::io::{BufRead, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::crc32::Crc32;
use crate::error::{FormatError, Result};
use crate::object::{ObjectRead, is_trailer, read_object};

/// Serializes `value` as a MessagePack map with field names.
pub(crate) fn encode_named<T: Serialize>(
    what: &'static str,
    value: &T,
    out: &mut Vec<u8>,
) -> Result<()> {
    out.clear();
    value
        .serialize(&mut rmp_serde::Serializer::new(&mut *out).with_struct_map())
        .map_err(|e| FormatError::Encode {
            what,
            message: e.to_string(),
        })
}

pub(crate) fn decode<T: DeserializeOwned>(
    what: &'static str,
    index: u64,
    bytes: &[u8],
) -> Result<T> {
    rmp_serde::from_slice(bytes).map_err(|e| FormatError::Malformed {
        what,
        index,
        message: e.to_string(),
    })
}

/// Appends header, records and trailer to any writer.
pub(crate) struct ObjectWriter<W: Write> {
    out: W,
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

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush()?;
        Ok(())
    }

    pub fn write_trailer<T: Serialize>(mut self, trailer: &T) -> Result<W> {
        encode_named("trailer", trailer, &mut self.scratch)?;
        self.out.write_all(&self.scratch)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One step of a reader.
pub(crate) enum Next<'a> {
    Record(&'a [u8]),
    Trailer(&'a [u8]),
    /// Clean end of stream without a trailer.
    EndWithoutTrailer,
    /// The stream ends in the middle of an object.
    PartialTail,
}

/// Reads objects; the caller decodes.
pub(crate) struct ObjectReader<R: BufRead> {
    input: R,
    buf: Vec<u8>,
    crc: Crc32,
    count: u64,
}

impl<R: BufRead> ObjectReader<R> {
    pub fn new(input: R) -> Self {
        ObjectReader {
            input,
            buf: Vec::with_capacity(4096),
            crc: Crc32::new(),
            count: 0,
        }
    }

    /// Reads the header object's raw bytes; `None` for an empty stream.
    pub fn header(&mut self) -> Result<Option<&[u8]>> {
        match read_object(&mut self.input, &mut self.buf).map_err(not_msgpack)? {
            ObjectRead::Complete => Ok(Some(&self.buf)),
            ObjectRead::End => Ok(None),
            ObjectRead::Partial => Err(FormatError::NotOurs(
                "file ends inside its first object".into(),
            )),
        }
    }

    pub fn next(&mut self) -> Result<Next<'_>> {
        match read_object(&mut self.input, &mut self.buf)? {
            ObjectRead::End => Ok(Next::EndWithoutTrailer),
            ObjectRead::Partial => Ok(Next::PartialTail),
            ObjectRead::Complete => {
                if is_trailer(&self.buf) {
                    Ok(Next::Trailer(&self.buf))
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

    /// Checks a trailer's `record_count` and `crc32` against the records read, and that
    /// nothing follows it.
    pub fn verify_trailer(&mut self, record_count: u64, crc32: u32) -> Result<()> {
        if record_count != self.count {
            return Err(FormatError::CountMismatch {
                expected: record_count,
                found: self.count,
            });
        }
        if crc32 != self.crc.value() {
            return Err(FormatError::ChecksumMismatch {
                expected: crc32,
                found: self.crc.value(),
            });
        }
        if !self.input.fill_buf()?.is_empty() {
            return Err(FormatError::TrailingData);
        }
        Ok(())
    }
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

/// Checks a header's `format` and `version`.
pub(crate) fn check_header(bytes: &[u8], expected: &'static str, supported: u32) -> Result<()> {
    let probe: HeaderProbe = rmp_serde::from_slice(bytes)
        .map_err(|_| FormatError::NotOurs("its first object is not a header map".into()))?;
    let Some(format) = probe.format else {
        return Err(FormatError::NotOurs(
            "its header has no `format` field".into(),
        ));
    };
    if format != expected {
        if format.starts_with("llmib-") {
            return Err(FormatError::WrongKind {
                expected,
                found: format,
            });
        }
        return Err(FormatError::NotOurs(format!("unknown format {format:?}")));
    }
    let Some(version) = probe.version else {
        return Err(FormatError::NotOurs(
            "its header has no `version` field".into(),
        ));
    };
    if version > supported {
        return Err(FormatError::NewerVersion {
            kind: expected,
            found: version,
            supported,
        });
    }
    if version == 0 {
        return Err(FormatError::NotOurs("version 0 does not exist".into()));
    }
    Ok(())
}
