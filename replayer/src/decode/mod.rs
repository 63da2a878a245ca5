//! Sans-I/O decoding of one response body: framing plus the dialect's decoder.
//!
//! A request task ([`crate::run::request`]) owns the network; everything it learns from the
//! bytes goes through this module: streamed bodies chunk by chunk through a
//! [`StreamBody`] (the dialect's framing parser feeding its [`Decoder`]), non-streamed
//! bodies at once through [`parse_answer`], error bodies through [`error_body_message`].
//! It is public so that tests and the `cargo fuzz` targets (`fuzz/`) drive exactly the
//! code a replay runs, with arbitrary bytes cut at arbitrary chunk boundaries, without a
//! server. Whatever the bytes, the outcome lands in the [`Accum`]: events and counts, or a
//! one-line, bounded `protocol_error` / `server_error`; nothing panics.

pub mod framing;

use crate::config::BackendKind;
use crate::decode::framing::{NulParser, SseParser};
use crate::dialect::adapter::{Accum, Decoder, EventFraming, ReqCtx};

enum Framing {
    Sse(SseParser),
    Nul(NulParser),
}

/// One streamed response being decoded.
pub struct StreamBody {
    framing: Framing,
    decoder: Box<dyn Decoder>,
    finished: bool,
}

impl StreamBody {
    /// A decoder for a streamed `backend` response; lines/objects longer than
    /// `max_event_bytes` are a protocol error.
    pub fn new(backend: BackendKind, ctx: &ReqCtx, max_event_bytes: usize) -> Self {
        let dialect = backend.dialect();
        let framing = match dialect.framing() {
            EventFraming::Sse => Framing::Sse(SseParser::new(max_event_bytes)),
            EventFraming::Nul => Framing::Nul(NulParser::new(max_event_bytes)),
        };
        StreamBody {
            framing,
            decoder: dialect.stream_decoder(ctx),
            finished: false,
        }
    }

    /// Feeds one body chunk received at `t_ns`; `false` when reading should stop (end
    /// marker, server error event, or a protocol error recorded in `acc`).
    pub fn feed(&mut self, chunk: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        let decoder = &mut self.decoder;
        let mut cb = |data: &[u8]| decoder.payload(data, t_ns, acc);
        let r = match &mut self.framing {
            Framing::Sse(p) => p.feed(chunk, &mut cb),
            Framing::Nul(p) => p.feed(chunk, &mut cb),
        };
        match r {
            Ok(keep_going) => keep_going && acc.protocol_error.is_none(),
            Err(e) => {
                acc.fail_protocol(e);
                false
            }
        }
    }

    /// The response is over at `t_ns`: with `flush`, an unterminated last event is
    /// decoded first; `eof` says the body ended cleanly. Settles the counts; only the
    /// first call has an effect.
    pub fn finish(&mut self, acc: &mut Accum, t_ns: u64, flush: bool, eof: bool, ctx: &ReqCtx) {
        if self.finished {
            return;
        }
        self.finished = true;
        if flush && acc.protocol_error.is_none() {
            let decoder = &mut self.decoder;
            let mut cb = |data: &[u8]| decoder.payload(data, t_ns, acc);
            match &mut self.framing {
                Framing::Sse(p) => {
                    if let Err(e) = p.finish(&mut cb) {
                        acc.fail_protocol(e);
                    }
                }
                Framing::Nul(p) => p.finish(&mut cb),
            }
        }
        let clean = eof && acc.protocol_error.is_none();
        self.decoder.finish(acc, ctx, clean);
    }

    /// True once [`StreamBody::finish`] ran.
    pub fn is_finished(&self) -> bool {
        self.finished
    }
}

/// Decodes a whole non-streamed `backend` answer received at `t_ns`.
pub fn parse_answer(backend: BackendKind, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    backend.dialect().parse_answer(body, t_ns, ctx, acc)
}

/// The one-line, bounded message of an error response body of any shape.
pub fn error_body_message(body: &[u8]) -> String {
    crate::dialect::adapter::error_message(body)
}

#[cfg(test)]
mod fixture_tests;
#[cfg(test)]
mod tests;
