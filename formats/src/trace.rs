//! The trace format (`llmib-trace`, version 2): what to send and when.
//!
//! A trace is an input and must be whole: any truncation or damage is an error. The
//! header says how many requests follow, so once they are read the reader knows every
//! value of the trailer and can tell a file cut inside its trailer (truncated) from a
//! damaged one (corrupted) exactly. Version 1 files (no `header_crc32` and
//! `trailer_crc32`) still read, with only the record checks.

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::atomic::AtomicFile;
use crate::error::{FormatError, Result};
use crate::spec::TraceSpec;
use crate::stream::{
    Next, ObjectReader, ObjectWriter, TrailerSums, decode, decode_header, decode_trailer,
    encode_named,
};
use crate::trailer::{Sealed, Tail, encode_sealed};

pub const TRACE_FORMAT: &str = "llmib-trace";
/// Version written; readers read every version up to it.
pub const TRACE_VERSION: u32 = 2;

/// First object of a trace file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// Always `"llmib-trace"`.
    pub format: String,
    /// Format version, currently 2.
    pub version: u32,
    pub name: String,
    pub seed: u64,
    /// Every generator parameter: enough to regenerate the same bytes.
    pub spec: TraceSpec,
    /// How prompt texts were made and counted.
    pub tokenizer: TokenizerInfo,
    /// Number of request records that follow.
    pub request_count: u64,
    /// Version of the generation algorithm (not of the tool): the same spec gives the
    /// same bytes for as long as this does not change.
    pub generator_version: String,
}

impl TraceHeader {
    pub fn new(
        spec: TraceSpec,
        tokenizer: TokenizerInfo,
        request_count: u64,
        generator_version: impl Into<String>,
    ) -> Self {
        TraceHeader {
            format: TRACE_FORMAT.to_string(),
            version: TRACE_VERSION,
            name: spec.name().to_string(),
            seed: spec.seed(),
            spec,
            tokenizer,
            request_count,
            generator_version: generator_version.into(),
        }
    }
}

/// The tokenizer prompts were built and counted with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenizerInfo {
    /// `"builtin-words"` (one word of the built-in vocabulary = one token) or
    /// `"huggingface"` (a tokenizer.json through the tokenizers library).
    pub kind: String,
    /// Vocabulary name, or the tokenizer file's name.
    pub name: String,
    /// sha256 of the tokenizer file, lowercase hex, when a file was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// One request to send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// 0..N-1 in file order.
    pub id: u64,
    /// Send time, nanoseconds after the trace start; non-decreasing.
    pub arrival_ns: u64,
    /// Prompt text.
    pub prompt: String,
    /// Token ids of `prompt` when a real tokenizer was used (they re-encode exactly).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_token_ids: Option<Vec<u32>>,
    /// Prompt length in tokens.
    pub prompt_tokens: u32,
    /// Output tokens to generate.
    pub max_tokens: u32,
    /// Ask the server to ignore end-of-sequence.
    pub ignore_eos: bool,
}

/// Last object of a trace file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceTrailer {
    /// Always true: marks this object as the trailer.
    pub trailer: bool,
    pub record_count: u64,
    /// CRC-32 (zlib) of the concatenated bytes of all request objects.
    pub crc32: u32,
    /// CRC-32 of the header object's bytes (version 2; `None` in version 1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_crc32: Option<u32>,
    /// CRC-32 of this trailer's bytes before the `trailer_crc32` key, which is the last
    /// entry (version 2; `None` in version 1 files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailer_crc32: Option<u32>,
}

impl Sealed for TraceTrailer {
    fn set_trailer_crc32(&mut self, crc: u32) {
        self.trailer_crc32 = Some(crc);
    }
}

impl TraceTrailer {
    fn sums(&self) -> TrailerSums {
        TrailerSums {
            trailer: self.trailer,
            record_count: self.record_count,
            crc32: self.crc32,
            header_crc32: self.header_crc32,
            trailer_crc32: self.trailer_crc32,
        }
    }
}

/// Writes a trace to a temporary file next to the target and renames it into place on
/// [`TraceWriter::finish`]: a failed or interrupted generation leaves no half-written trace.
pub struct TraceWriter {
    inner: ObjectWriter<BufWriter<AtomicFile>>,
    expected: u64,
    last_arrival: u64,
}

impl TraceWriter {
    pub fn create(path: impl AsRef<Path>, header: &TraceHeader) -> Result<Self> {
        let file = AtomicFile::create(path.as_ref())?;
        let inner = ObjectWriter::new(BufWriter::with_capacity(1 << 16, file), header)?;
        Ok(TraceWriter {
            inner,
            expected: header.request_count,
            last_arrival: 0,
        })
    }

    pub fn write(&mut self, request: &TraceRequest) -> Result<()> {
        let n = self.inner.count();
        if request.id != n {
            return Err(FormatError::Invalid {
                what: "trace request",
                message: format!("id {} written at position {n}", request.id),
            });
        }
        if request.arrival_ns < self.last_arrival {
            return Err(FormatError::Invalid {
                what: "trace request",
                message: format!("arrival_ns decreases at id {}", request.id),
            });
        }
        self.last_arrival = request.arrival_ns;
        self.inner.write_record(request)
    }

    /// Writes the trailer, syncs and renames the file into place.
    pub fn finish(self) -> Result<PathBuf> {
        let count = self.inner.count();
        if count != self.expected {
            return Err(FormatError::CountMismatch {
                expected: self.expected,
                found: count,
            });
        }
        let mut trailer = TraceTrailer {
            trailer: true,
            record_count: count,
            crc32: self.inner.crc32(),
            header_crc32: Some(self.inner.header_crc32()),
            trailer_crc32: None,
        };
        let buf = self.inner.write_trailer(&mut trailer)?;
        let file = buf
            .into_inner()
            .map_err(|e| FormatError::Stream(e.into_error()))?;
        file.commit()
    }
}

/// Streams the requests of a trace, verifying count and checksum at the end.
/// Truncation and corruption are errors: a trace is an input and must be whole.
pub struct TraceReader<R: std::io::BufRead> {
    header: TraceHeader,
    objects: ObjectReader<R>,
    done: bool,
}

impl TraceReader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        TraceReader::new(BufReader::with_capacity(1 << 16, file))
    }
}

impl<R: std::io::BufRead> TraceReader<R> {
    pub fn new(input: R) -> Result<Self> {
        let mut objects = ObjectReader::new(input);
        let header: TraceHeader = decode_header(objects.header(TRACE_FORMAT, TRACE_VERSION)?)?;
        Ok(TraceReader {
            header,
            objects,
            done: false,
        })
    }

    pub fn header(&self) -> &TraceHeader {
        &self.header
    }

    fn next_request(&mut self) -> Result<Option<TraceRequest>> {
        let index = self.objects.count();
        let all_read = index >= self.header.request_count;
        match self.objects.next()? {
            Next::Record(_) if all_read => Err(FormatError::DamagedTrailer(format!(
                "the object after the {} requests the header announces is not a trailer",
                self.header.request_count
            ))),
            Next::Record(bytes) => {
                let req: TraceRequest = decode("trace request", index + 1, bytes)?;
                if req.id != index {
                    return Err(FormatError::Malformed {
                        what: "trace request",
                        index: index + 1,
                        message: format!("id {} where {index} was expected", req.id),
                    });
                }
                Ok(Some(req))
            }
            Next::Trailer(bytes) => {
                let trailer: TraceTrailer = decode_trailer(bytes)?;
                self.objects.verify_trailer(&trailer.sums())?;
                if !all_read {
                    return Err(FormatError::Corrupted(format!(
                        "the header announces {} requests but the trailer follows {index}",
                        self.header.request_count
                    )));
                }
                Ok(None)
            }
            Next::EndWithoutTrailer => Err(FormatError::Truncated { records: index }),
            Next::PartialTail => Err(self.bad_tail(all_read, None)),
            Next::Invalid(message) => Err(self.bad_tail(all_read, Some(message))),
        }
    }

    /// The error for a last object that is incomplete (`invalid` = `None`) or not
    /// MessagePack: truncated only when it is a strict prefix of the record or trailer
    /// expected there.
    fn bad_tail(&self, all_read: bool, invalid: Option<String>) -> FormatError {
        let index = self.objects.count();
        let tail = self.objects.tail(&self.expected_trailer(), &[]);
        let is_invalid = invalid.is_some();
        match (tail, all_read, is_invalid) {
            (Tail::CutTrailer, true, false) => FormatError::TruncatedTrailer { records: index },
            (Tail::CutRecord, false, false) => FormatError::Truncated { records: index },
            (Tail::DamagedTrailer, ..) | (_, true, _) => FormatError::DamagedTrailer(format!(
                "after the {index} requests the file ends with bytes that are not the trailer{}",
                invalid.map(|m| format!(": {m}")).unwrap_or_default()
            )),
            (_, false, _) => FormatError::Corrupted(format!(
                "after {index} requests: {}",
                invalid.unwrap_or_else(|| {
                    "the file ends inside an object that is not a request".into()
                })
            )),
        }
    }

    /// The trailer this crate's writer puts after the requests read so far.
    fn expected_trailer(&self) -> Vec<u8> {
        let sums = self.objects.expected_sums();
        let mut trailer = TraceTrailer {
            trailer: true,
            record_count: sums.record_count,
            crc32: sums.crc32,
            header_crc32: sums.header_crc32,
            trailer_crc32: None,
        };
        let mut out = Vec::new();
        let encoded = if sums.trailer_crc32.is_some() {
            encode_sealed(&mut trailer, &mut out)
        } else {
            encode_named("trailer", &trailer, &mut out)
        };
        encoded.expect("a trailer always encodes");
        out
    }
}

impl<R: std::io::BufRead> Iterator for TraceReader<R> {
    type Item = Result<TraceRequest>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_request() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

/// Reads a whole trace into memory, fully verified.
pub fn read_trace(path: impl AsRef<Path>) -> Result<(TraceHeader, Vec<TraceRequest>)> {
    let reader = TraceReader::open(path)?;
    let header = reader.header().clone();
    let requests = reader.collect::<Result<Vec<_>>>()?;
    Ok((header, requests))
}
