//! The trace format (`llmib-trace`, versions 2 and 3): what to send and when.
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
use crate::object::{decode, encode_named};
use crate::spec::TraceSpec;
use crate::stream::{Next, ObjectReader, ObjectWriter, decode_header, open_buffered};
use crate::trailer::{Sealed, Tail, TrailerSums, encode_sealed};

pub const TRACE_FORMAT: &str = "llmib-trace";
/// Newest version; readers read every version up to it.
pub const TRACE_VERSION: u32 = 3;
/// Version written for traces without sessions or chat messages: version 3 only adds
/// those fields, so such traces keep the exact bytes they had in version 2.
pub const TRACE_VERSION_PLAIN: u32 = 2;
/// Version written for traces that use sessions or chat messages.
pub const TRACE_VERSION_SESSIONS: u32 = 3;

/// First object of a trace file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceHeader {
    /// Always `"llmib-trace"`.
    pub format: String,
    /// Format version: 2, or 3 when requests may carry sessions and chat messages.
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
            version: TRACE_VERSION_PLAIN,
            name: spec.name().to_string(),
            seed: spec.seed(),
            spec,
            tokenizer,
            request_count,
            generator_version: generator_version.into(),
        }
    }

    /// The same header at version 3, which allows session fields and `messages` in the
    /// requests (a version 2 writer refuses them).
    pub fn with_sessions(mut self) -> Self {
        self.version = TRACE_VERSION_SESSIONS;
        self
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
///
/// The four fields after `ignore_eos` are version 3 and absent (not serialized) when
/// unused, so a trace without sessions has the bytes version 2 gave it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRequest {
    /// 0..N-1 in file order.
    pub id: u64,
    /// Send time, nanoseconds after the trace start; non-decreasing. For a session's
    /// later turn (`turn` > 0) it is only the earliest time the turn can be due (every
    /// earlier turn taking no time) and orders the file: the turn is due `think_ns` after
    /// its predecessor completes.
    pub arrival_ns: u64,
    /// Prompt text. With `messages`, their rendering ([`render_messages`]): what a
    /// completion-style backend is sent, and what `prompt_tokens` counts.
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
    /// Version 3: the session this request is a turn of (sessions numbered from 0 in
    /// the order of their first turn). Present exactly when `turn` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// Version 3: the turn's index in its session, from 0. Turn `k` follows turn `k - 1`
    /// of the same session in file order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// Version 3, turns after the first only: the think time, ns, between the end of the
    /// previous turn of the session and this turn being due (closed loop within a
    /// session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think_ns: Option<u64>,
    /// Version 3: the chat to send to chat backends, instead of `prompt`: the recorded
    /// history (earlier user turns and the dataset's or generator's assistant answers,
    /// never a live reply) and this turn's user message last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
}

impl TraceRequest {
    /// Whether this request uses a version 3 field.
    pub fn uses_version_3(&self) -> bool {
        self.session_id.is_some()
            || self.turn.is_some()
            || self.think_ns.is_some()
            || self.messages.is_some()
    }
}

/// One chat message of a request's `messages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: impl Into<String>, content: impl Into<String>) -> Self {
        ChatMessage {
            role: role.into(),
            content: content.into(),
        }
    }
}

/// The documented rendering of `messages` as one prompt: `role: content` per message,
/// joined by `\n` (no trailing newline). A trace's `prompt` holds it, and its
/// `prompt_tokens` counts it.
pub fn render_messages(messages: &[ChatMessage]) -> String {
    let mut out = String::new();
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&m.role);
        out.push_str(": ");
        out.push_str(&m.content);
    }
    out
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
    version: u32,
    sessions: SessionCheck,
}

impl TraceWriter {
    pub fn create(path: impl AsRef<Path>, header: &TraceHeader) -> Result<Self> {
        let file = AtomicFile::create(path.as_ref())?;
        let inner = ObjectWriter::buffered(file, header)?;
        Ok(TraceWriter {
            inner,
            expected: header.request_count,
            last_arrival: 0,
            version: header.version,
            sessions: SessionCheck::default(),
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
        if self.version < TRACE_VERSION_SESSIONS && request.uses_version_3() {
            return Err(FormatError::Invalid {
                what: "trace request",
                message: format!(
                    "id {} has session fields or messages, which need a version 3 header",
                    request.id
                ),
            });
        }
        self.sessions
            .check(request)
            .map_err(|message| FormatError::Invalid {
                what: "trace request",
                message,
            })?;
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
        let file = self.inner.finish(&mut trailer)?;
        file.commit()
    }
}

/// Streams the requests of a trace, verifying count and checksum at the end.
/// Truncation and corruption are errors: a trace is an input and must be whole.
pub struct TraceReader<R: std::io::BufRead> {
    header: TraceHeader,
    objects: ObjectReader<R>,
    done: bool,
    sessions: SessionCheck,
}

impl TraceReader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        TraceReader::new(open_buffered(path.as_ref())?)
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
            sessions: SessionCheck::default(),
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
                let malformed = |message| FormatError::Malformed {
                    what: "trace request",
                    index: index + 1,
                    message,
                };
                if self.header.version < TRACE_VERSION_SESSIONS && req.uses_version_3() {
                    return Err(malformed(format!(
                        "session fields or messages in a version {} trace",
                        self.header.version
                    )));
                }
                self.sessions.check(&req).map_err(malformed)?;
                Ok(Some(req))
            }
            Next::Trailer => {
                self.objects.trailer::<TraceTrailer>()?;
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

/// The session rules every trace obeys, checked by the writer and the reader so that a
/// replayer can rely on them: `session_id` and `turn` come together; a session's turns
/// are 0, 1, 2... in file order; sessions are numbered in the order of their first turn
/// (the first is 0, each new one is one more than the highest so far); `think_ns` only
/// on later turns; `messages`, when present, end with a `user` message.
#[derive(Debug, Default)]
struct SessionCheck {
    /// Next turn expected per session seen so far, indexed by session id.
    next_turn: Vec<u32>,
}

impl SessionCheck {
    fn check(&mut self, r: &TraceRequest) -> std::result::Result<(), String> {
        if let Some(m) = &r.messages {
            match m.last() {
                Some(last) if last.role == "user" => {}
                _ => {
                    return Err(format!(
                        "id {}: `messages` must end with a user message",
                        r.id
                    ));
                }
            }
        }
        let (session, turn) = match (r.session_id, r.turn) {
            (None, None) if r.think_ns.is_some() => {
                return Err(format!("id {}: `think_ns` without a session", r.id));
            }
            (None, None) => return Ok(()),
            (Some(s), Some(t)) => (s, t),
            _ => return Err(format!("id {}: `session_id` and `turn` go together", r.id)),
        };
        if turn == 0 && r.think_ns.is_some() {
            return Err(format!("id {}: `think_ns` on a session's first turn", r.id));
        }
        let known = self.next_turn.len() as u64;
        if session == known && turn == 0 {
            self.next_turn.push(1);
            return Ok(());
        }
        match self.next_turn.get_mut(session as usize) {
            Some(next) if session < known && *next == turn => {
                *next += 1;
                Ok(())
            }
            Some(next) if session < known => Err(format!(
                "id {}: turn {turn} of session {session} where turn {next} was expected",
                r.id
            )),
            _ => Err(format!(
                "id {}: session {session} starts at turn {turn}; sessions start at turn 0 and are numbered in order (next: {known})",
                r.id
            )),
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
