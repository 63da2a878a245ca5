//! Incremental framing of streamed response bodies: Server-Sent Events and
//! NUL-delimited JSON (vLLM's legacy `/generate`).
//!
//! Both parsers take the body chunk by chunk exactly as the network delivers it: a chunk
//! may hold several events, part of one, or end in the middle of a line (even in the
//! middle of a `\r\n`). Complete payloads are handed to a callback as borrowed slices, so
//! the common case (one `data:` line per event) copies each byte once into a reused
//! buffer and allocates nothing per event.
//!
//! Buffers are bounded: a line (SSE) or object (NUL) longer than `max_len` is a protocol
//! error, never an unbounded allocation. Buffers keep their capacity between events but
//! are shrunk back when one oversized (yet allowed) event inflated them, so a long-lived
//! stream does not pin its worst case.

/// A framing failure: the server sent something no parser state can absorb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// A line (SSE) or object (NUL framing) exceeded the bound.
    TooLong { limit: usize },
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLong { limit } => {
                write!(f, "stream line longer than {limit} bytes (bounded buffer)")
            }
        }
    }
}

/// Capacity kept by idle buffers; anything above is released after use.
const KEEP_CAPACITY: usize = 8 * 1024;

/// Incremental SSE parser (the subset LLM servers use: `data:` lines, comments, blank
/// line terminating an event; `event:`, `id:` and `retry:` fields are ignored).
///
/// Per the SSE specification exactly one optional space after `data:` is stripped
/// (TGI and LightLLM send `data:{..}`, OpenAI-style servers `data: {..}`); lines end
/// with `\n`, `\r\n` or `\r`; several `data:` lines of one event are joined with `\n`.
#[derive(Debug)]
pub struct SseParser {
    /// Bytes of the current incomplete line.
    line: Vec<u8>,
    /// Data of the current event (lines joined with `\n`).
    data: Vec<u8>,
    /// The current event has at least one data line.
    has_data: bool,
    /// The previous chunk ended with `\r`: a leading `\n` of the next chunk belongs to it.
    after_cr: bool,
    max_len: usize,
    /// Comment lines seen (keep-alives).
    pub comments: u64,
}

/// The common event, found whole in one chunk: `chunk[..eol]` is a lone `data:` line and
/// the blank line that ends its event follows at once (`\n\n` or `\r\n\r\n`). Returns
/// the data and the bytes the event takes, so it is handed over without being copied;
/// anything else goes through the general line-by-line path, which gives the same result.
fn lone_data_event(chunk: &[u8], eol: usize, max_len: usize) -> Option<(&[u8], usize)> {
    let line = &chunk[..eol];
    if line.len() > max_len {
        return None;
    }
    let value = line.strip_prefix(b"data:")?;
    let value = value.strip_prefix(b" ").unwrap_or(value);
    let rest = &chunk[eol..];
    let end = if rest.starts_with(b"\n\n") {
        2
    } else if rest.starts_with(b"\r\n\r\n") {
        4
    } else {
        return None;
    };
    Some((value, eol + end))
}

/// The payload an `error:` field line stands for: `{"error": <value>}`, the value kept
/// as JSON when it looks like an object or a string, else quoted as text.
fn error_field_event(value: &[u8]) -> Vec<u8> {
    let v = value.trim_ascii();
    let mut out = b"{\"error\":".to_vec();
    if v.starts_with(b"{") || v.starts_with(b"\"") {
        out.extend_from_slice(v);
    } else {
        let text = String::from_utf8_lossy(v);
        out.extend_from_slice(
            serde_json::to_string(&text)
                .expect("strings serialize")
                .as_bytes(),
        );
    }
    out.push(b'}');
    out
}

impl SseParser {
    pub fn new(max_len: usize) -> Self {
        SseParser {
            line: Vec::new(),
            data: Vec::new(),
            has_data: false,
            after_cr: false,
            max_len,
            comments: 0,
        }
    }

    /// Feeds one chunk; `on_event` receives the data of every event completed by it.
    /// Stops early (returning `Ok(false)`) when the callback returns `false`.
    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        on_event: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<bool, FrameError> {
        // An empty chunk keeps the pending `\r` pending (found by fuzzing: it made the
        // next chunk's `\n` a blank line, dispatching an unfinished event).
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                chunk = &chunk[1..];
            }
        }
        while !chunk.is_empty() {
            match memchr::memchr2(b'\n', b'\r', chunk) {
                Some(pos) => {
                    if self.line.is_empty()
                        && !self.has_data
                        && let Some((value, used)) = lone_data_event(chunk, pos, self.max_len)
                    {
                        chunk = &chunk[used..];
                        if !on_event(value) {
                            return Ok(false);
                        }
                        continue;
                    }
                    let eol = chunk[pos];
                    let rest_start = if eol == b'\r' {
                        if pos + 1 < chunk.len() {
                            if chunk[pos + 1] == b'\n' {
                                pos + 2
                            } else {
                                pos + 1
                            }
                        } else {
                            self.after_cr = true;
                            pos + 1
                        }
                    } else {
                        pos + 1
                    };
                    let keep_going = if self.line.is_empty() {
                        self.line_done(&chunk[..pos], on_event)?
                    } else {
                        if self.line.len() + pos > self.max_len {
                            return Err(FrameError::TooLong {
                                limit: self.max_len,
                            });
                        }
                        let mut line = std::mem::take(&mut self.line);
                        line.extend_from_slice(&chunk[..pos]);
                        let r = self.line_done(&line, on_event);
                        line.clear();
                        if line.capacity() <= KEEP_CAPACITY {
                            self.line = line;
                        }
                        r?
                    };
                    chunk = &chunk[rest_start..];
                    if !keep_going {
                        return Ok(false);
                    }
                }
                None => {
                    if self.line.len() + chunk.len() > self.max_len {
                        return Err(FrameError::TooLong {
                            limit: self.max_len,
                        });
                    }
                    self.line.extend_from_slice(chunk);
                    break;
                }
            }
        }
        Ok(true)
    }

    fn line_done(
        &mut self,
        line: &[u8],
        on_event: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<bool, FrameError> {
        if line.is_empty() {
            return Ok(self.dispatch(on_event));
        }
        if line.len() > self.max_len {
            return Err(FrameError::TooLong {
                limit: self.max_len,
            });
        }
        if line[0] == b':' {
            self.comments += 1;
            return Ok(true);
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let v = &line[i + 1..];
                (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        if field == b"data" {
            self.push_data(value)?;
        } else if field == b"error" {
            // llama.cpp's server before its split into modules (2025) sent stream errors
            // as an `error:` field, not `data:`; handed over as `{"error": <value>}`,
            // the error event every dialect's decoder reads.
            let event = error_field_event(value);
            self.push_data(&event)?;
        }
        Ok(true)
    }

    /// Appends one data line's value to the current event.
    fn push_data(&mut self, value: &[u8]) -> Result<(), FrameError> {
        if self.has_data {
            if self.data.len() + 1 + value.len() > self.max_len {
                return Err(FrameError::TooLong {
                    limit: self.max_len,
                });
            }
            self.data.push(b'\n');
        }
        self.data.extend_from_slice(value);
        self.has_data = true;
        Ok(())
    }

    fn dispatch(&mut self, on_event: &mut dyn FnMut(&[u8]) -> bool) -> bool {
        if !self.has_data {
            return true;
        }
        let keep_going = on_event(&self.data);
        self.data.clear();
        if self.data.capacity() > KEEP_CAPACITY {
            self.data = Vec::new();
        }
        self.has_data = false;
        keep_going
    }

    /// The body ended. Servers that close the stream without the final blank line (or
    /// in the middle of the last line) leave an event pending: it is handed over so the
    /// adapter can decide whether it is a complete payload or a torn one.
    pub fn finish(&mut self, on_event: &mut dyn FnMut(&[u8]) -> bool) -> Result<(), FrameError> {
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.line_done(&line, on_event)?;
        }
        self.dispatch(on_event);
        Ok(())
    }

    /// Bytes currently buffered (for memory accounting and tests).
    pub fn buffered(&self) -> usize {
        self.line.capacity() + self.data.capacity()
    }
}

/// Incremental parser of delimited objects (vLLM legacy `/generate` streams:
/// `{"text":[..]}\0{"text":[..]}\0...`, and from vLLM commit 9e37266 (2024-11) on
/// `{"text":[..]}\n...`): a NUL byte or a newline ends an object (`json.dumps` never
/// writes a raw newline, so either is safe). Empty and blank objects (two separators in
/// a row, a `\r` before a newline) are skipped.
#[derive(Debug)]
pub struct NulParser {
    buf: Vec<u8>,
    max_len: usize,
}

impl NulParser {
    pub fn new(max_len: usize) -> Self {
        NulParser {
            buf: Vec::new(),
            max_len,
        }
    }

    pub fn feed(
        &mut self,
        mut chunk: &[u8],
        on_object: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Result<bool, FrameError> {
        while let Some(pos) = memchr::memchr2(0, b'\n', chunk) {
            let keep_going = if self.buf.is_empty() {
                // Bounded like an object spread over several chunks (found by fuzzing:
                // the outcome depended on where the network cut the body).
                if pos > self.max_len {
                    return Err(FrameError::TooLong {
                        limit: self.max_len,
                    });
                }
                let object = &chunk[..pos];
                object.iter().all(u8::is_ascii_whitespace) || on_object(object)
            } else {
                if self.buf.len() + pos > self.max_len {
                    return Err(FrameError::TooLong {
                        limit: self.max_len,
                    });
                }
                self.buf.extend_from_slice(&chunk[..pos]);
                let blank = self.buf.iter().all(u8::is_ascii_whitespace);
                let k = blank || on_object(&self.buf);
                self.buf.clear();
                if self.buf.capacity() > KEEP_CAPACITY {
                    self.buf = Vec::new();
                }
                k
            };
            chunk = &chunk[pos + 1..];
            if !keep_going {
                return Ok(false);
            }
        }
        if self.buf.len() + chunk.len() > self.max_len {
            return Err(FrameError::TooLong {
                limit: self.max_len,
            });
        }
        self.buf.extend_from_slice(chunk);
        Ok(true)
    }

    /// The body ended: a trailing object without its separator is handed over.
    pub fn finish(&mut self, on_object: &mut dyn FnMut(&[u8]) -> bool) {
        let trimmed = self.buf.iter().all(|b| b.is_ascii_whitespace());
        if !trimmed {
            on_object(&self.buf);
        }
        self.buf = Vec::new();
    }

    pub fn buffered(&self) -> usize {
        self.buf.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse_all(parts: &[&[u8]]) -> Vec<String> {
        let mut p = SseParser::new(1 << 16);
        let mut out = Vec::new();
        for part in parts {
            p.feed(part, &mut |d| {
                out.push(String::from_utf8_lossy(d).into_owned());
                true
            })
            .unwrap();
        }
        p.finish(&mut |d| {
            out.push(String::from_utf8_lossy(d).into_owned());
            true
        })
        .unwrap();
        out
    }

    #[test]
    fn sse_space_optional_comments_and_multiline() {
        let body = b": keep-alive\n\ndata:{\"a\":1}\n\ndata: {\"b\":2}\r\n\r\nevent: x\ndata: l1\ndata:l2\n\n";
        assert_eq!(sse_all(&[body]), vec!["{\"a\":1}", "{\"b\":2}", "l1\nl2"]);
    }

    #[test]
    fn sse_error_field_is_an_error_event() {
        assert_eq!(
            sse_all(&[b"data: {\"a\":1}\n\nerror: {\"code\":500,\"message\":\"m\"}\n\n"]),
            vec!["{\"a\":1}", "{\"error\":{\"code\":500,\"message\":\"m\"}}"]
        );
        assert_eq!(
            sse_all(&[b"error: model crashed\r\n\r\n"]),
            vec!["{\"error\":\"model crashed\"}"]
        );
        // Other fields are still ignored.
        assert_eq!(
            sse_all(&[b"event: x\nid: 1\nretry: 5\n\n"]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn sse_only_one_space_is_stripped() {
        assert_eq!(sse_all(&[b"data:  x\n\n"]), vec![" x"]);
    }

    #[test]
    fn sse_every_split_point_gives_the_same_events() {
        let body: &[u8] =
            b"data:{\"t\":1}\r\n\r\n: ping\r\ndata: {\"t\":2}\n\ndata:[DONE]\r\rdata: tail";
        let whole = sse_all(&[body]);
        assert_eq!(whole, vec!["{\"t\":1}", "{\"t\":2}", "[DONE]", "tail"]);
        for i in 0..=body.len() {
            for j in i..=body.len() {
                assert_eq!(
                    sse_all(&[&body[..i], &body[i..j], &body[j..]]),
                    whole,
                    "split {i} {j}"
                );
            }
        }
    }

    #[test]
    fn sse_empty_chunk_between_cr_and_lf() {
        // Fuzzing regression: `\r` | empty chunk | `\n` is one line end, not two.
        let parts: [&[u8]; 4] = [b"data: x\r", b"", b"\ndata: y\n", b"\n"];
        assert_eq!(sse_all(&parts), vec!["x\ny"]);
        assert_eq!(sse_all(&[b"data: x\r\ndata: y\n\n"]), vec!["x\ny"]);
    }

    #[test]
    fn sse_bounded() {
        let mut p = SseParser::new(16);
        let r = p.feed(&[b'a'; 10], &mut |_| true);
        assert!(r.is_ok());
        let r = p.feed(&[b'a'; 10], &mut |_| true);
        assert_eq!(r, Err(FrameError::TooLong { limit: 16 }));
        // A long line delivered in one chunk is refused as well.
        let mut p = SseParser::new(16);
        let mut line = b"data: ".to_vec();
        line.extend_from_slice(&[b'x'; 40]);
        line.push(b'\n');
        assert_eq!(
            p.feed(&line, &mut |_| true),
            Err(FrameError::TooLong { limit: 16 })
        );
    }

    #[test]
    fn sse_callback_can_stop() {
        let mut p = SseParser::new(1024);
        let mut n = 0;
        let r = p.feed(b"data: 1\n\ndata: 2\n\n", &mut |_| {
            n += 1;
            false
        });
        assert_eq!(r, Ok(false));
        assert_eq!(n, 1);
    }

    #[test]
    fn nul_every_split_point() {
        let body: &[u8] = b"{\"text\":[\"a\"]}\0{\"text\":[\"ab\"]}\0\0{\"text\":[\"abc\"]}";
        let run = |parts: &[&[u8]]| {
            let mut p = NulParser::new(1024);
            let mut out = Vec::new();
            for part in parts {
                p.feed(part, &mut |d| {
                    out.push(d.to_vec());
                    true
                })
                .unwrap();
            }
            p.finish(&mut |d| {
                out.push(d.to_vec());
                true
            });
            out
        };
        let whole = run(&[body]);
        assert_eq!(whole.len(), 3);
        for i in 0..=body.len() {
            assert_eq!(run(&[&body[..i], &body[i..]]), whole);
        }
    }

    #[test]
    fn newline_and_nul_separators_give_the_same_objects() {
        let run = |body: &[u8], cut: usize| {
            let mut p = NulParser::new(1024);
            let mut out = Vec::new();
            for part in [&body[..cut], &body[cut..]] {
                p.feed(part, &mut |d| {
                    out.push(d.to_vec());
                    true
                })
                .unwrap();
            }
            p.finish(&mut |d| {
                out.push(d.to_vec());
                true
            });
            out
        };
        let nul: &[u8] = b"{\"text\": [\"a\"]}\0{\"text\": [\"ab\"]}\0";
        let nl: &[u8] = b"{\"text\": [\"a\"]}\n{\"text\": [\"ab\"]}\r\n\n";
        let whole = run(nul, 0);
        assert_eq!(whole.len(), 2);
        for i in 0..=nl.len() {
            let got: Vec<Vec<u8>> = run(nl, i)
                .into_iter()
                .map(|o| o.trim_ascii().to_vec())
                .collect();
            assert_eq!(got, whole, "cut at {i}");
        }
    }

    #[test]
    fn nul_bounded() {
        let mut p = NulParser::new(8);
        assert!(p.feed(b"12345", &mut |_| true).is_ok());
        assert!(p.feed(b"67890", &mut |_| true).is_err());
        // An oversized object inside one chunk is refused too (fuzzing regression).
        let mut p = NulParser::new(8);
        assert_eq!(
            p.feed(b"123456789\0", &mut |_| true),
            Err(FrameError::TooLong { limit: 8 })
        );
        let mut p = NulParser::new(8);
        let mut n = 0;
        assert_eq!(
            p.feed(b"12345678\0", &mut |_| {
                n += 1;
                true
            }),
            Ok(true)
        );
        assert_eq!(n, 1);
    }
}
