//! Streaming a request's tokens as a response body: a dialect's [`Framer`] turns each
//! token into its event bytes, [`stream_body`] drives the [`Job`](crate::dialect::tokens::Job)
//! and the faults that act mid-stream (cut connection, error event), with keep-alive
//! comments and the end-of-stream gap the real servers have.

use std::time::Duration;

use axum::body::Body;
use bytes::{Bytes, BytesMut};

use crate::dialect::tokens::{Job, Tok};
use crate::faults::Fault;
use crate::truth::Outcome;

/// A dialect's streamed bytes.
pub(crate) trait Framer: Send + 'static {
    /// Append the event(s) for one token.
    fn token(&mut self, tok: &Tok, out: &mut BytesMut);
    /// Append what follows the last token (may be nothing).
    fn end(&mut self, _out: &mut BytesMut) {}
    /// Only the latest of the tokens ready together is sent, the others are lost
    /// (LightLLM 2023: its manager keeps one undelivered token per request).
    fn latest_only(&self) -> bool {
        false
    }
    /// End the stream with an error event once this many tokens were written, instead
    /// of generating the rest (an injected HTTP 500 on a server that reports errors
    /// inside a 200 stream: TGI); the truth log says the error's outcome with status 200.
    fn error_after(&self) -> Option<u32> {
        None
    }
    /// Append that error event; returns the truth log's outcome for it.
    fn error(&mut self, _out: &mut BytesMut) -> Outcome {
        Outcome::Http500
    }
    /// A `:` comment is sent when the stream was silent this long (TGI).
    fn keep_alive(&self) -> Option<Duration> {
        None
    }
}

/// Most token events put into one body chunk when several are ready at once.
const MAX_EVENTS_PER_CHUNK: usize = 16;

struct StreamState<F> {
    job: Job,
    framer: F,
    written: u32,
    /// A token taken from the source but held back for the next chunk (a stall goes
    /// before it).
    pending: Option<Tok>,
    done: bool,
    /// Set when the last event went out: wait this long before the body's end.
    end_gap: Option<Duration>,
}

#[derive(Debug)]
struct Cut;
impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection cut")
    }
}
impl std::error::Error for Cut {}

/// A streamed body: one event per token, faults applied, truth recorded. Tokens that are
/// ready together go out in one body chunk (still one event each, unless the framer
/// keeps only the latest). The body may start with `prefix` (e.g. a role chunk).
pub(crate) fn stream_body<F: Framer>(job: Job, framer: F, prefix: Option<Bytes>) -> Body {
    let keep_alive = framer.keep_alive();
    let state = StreamState {
        job,
        framer,
        written: 0,
        pending: None,
        done: false,
        end_gap: None,
    };
    let prefix = futures_util::stream::iter(prefix.map(Ok::<Bytes, Cut>));
    let tokens = futures_util::stream::unfold(state, StreamState::step);
    use futures_util::StreamExt;
    let body = prefix.chain(tokens);
    match keep_alive {
        Some(every) => Body::from_stream(with_keep_alive(body, every)),
        None => Body::from_stream(body),
    }
}

impl<F: Framer> StreamState<F> {
    /// The next body chunk (or the cut), `None` once the body is over.
    async fn step(mut self) -> Option<(Result<Bytes, Cut>, Self)> {
        if self.done {
            if let Some(gap) = self.end_gap.take() {
                tokio::time::sleep(gap).await;
            }
            return None;
        }
        if let Some(end) = self.fault_due().await {
            return Some((end, self));
        }
        let next = match self.pending.take() {
            Some(t) => Some(t),
            None => self.job.next().await,
        };
        let Some(tok) = next else {
            // The engine is gone: the server is shutting down.
            self.done = true;
            self.job.ctx.finish(Outcome::Disconnect, 200);
            return Some((Err(Cut), self));
        };
        let out = self.chunk(tok).await;
        Some((Ok(out.freeze()), self))
    }

    /// The end of the stream when a fault is due before the next token: the connection
    /// cut (Disconnect) or the framer's error event.
    async fn fault_due(&mut self) -> Option<Result<Bytes, Cut>> {
        if self.disconnect_due() {
            self.done = true;
            self.job.ctx.finish(Outcome::Disconnect, 200);
            // Pending once, so what was written (at least the headers) is flushed
            // before the error aborts the connection.
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Some(Err(Cut));
        }
        if self.error_due() {
            self.done = true;
            let mut out = BytesMut::new();
            let outcome = self.framer.error(&mut out);
            self.job.ctx.finish(outcome, 200);
            return Some(Ok(out.freeze()));
        }
        None
    }

    fn disconnect_due(&self) -> bool {
        matches!(self.job.plan.fault, Some(Fault::Disconnect { after_tokens })
            if self.written >= after_tokens)
    }

    fn error_due(&self) -> bool {
        self.framer.error_after().is_some_and(|k| self.written >= k)
    }

    /// Notes a token as written: its time in the truth record, and the request's end
    /// after the last one.
    fn written_token(&mut self, index: u32, last: bool, eos: bool) {
        let now = self.job.ctx.now_ns();
        let reasoning = index < self.job.plan.reasoning;
        self.job.ctx.push_token(now, reasoning);
        self.written += 1;
        if last {
            self.job.ctx.rec.finish_reason = Some(if eos { "eos" } else { "length" }.into());
            self.job.ctx.finish(Outcome::Ok, 200);
            self.done = true;
        }
    }

    /// One body chunk: `tok` and the tokens ready right after it, up to
    /// [`MAX_EVENTS_PER_CHUNK`], a stall, a due fault or the last token.
    async fn chunk(&mut self, mut tok: Tok) -> BytesMut {
        let mut out = BytesMut::with_capacity(256);
        let mut n = 0;
        let latest_only = self.framer.latest_only();
        // The token not sent yet when only the latest is (lost if another follows).
        let mut held: Option<Tok> = None;
        let mut ended = false;
        loop {
            if let Some(Fault::Stall { before_token, ms }) = self.job.plan.fault
                && tok.index == before_token
            {
                if n > 0 {
                    self.pending = Some(tok);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            let (index, last, eos) = (tok.index, tok.last, tok.eos);
            if latest_only {
                held = Some(tok);
            } else {
                self.framer.token(&tok, &mut out);
            }
            self.written_token(index, last, eos);
            n += 1;
            if last {
                ended = true;
                break;
            }
            if n >= MAX_EVENTS_PER_CHUNK || self.disconnect_due() || self.error_due() {
                break;
            }
            match self.job.try_next() {
                Some(t) => tok = t,
                None => break,
            }
        }
        if let Some(t) = held {
            self.framer.token(&t, &mut out);
        }
        if ended {
            self.framer.end(&mut out);
            let gap = self.job.ctx.state.stream_end_gap;
            self.end_gap = (!gap.is_zero()).then_some(gap);
        }
        out
    }
}

/// `body`, with a `:\n\n` comment whenever it was silent for `every` (axum's SSE
/// keep-alive, as TGI sends it).
fn with_keep_alive<S>(
    body: S,
    every: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, Cut>>
where
    S: futures_util::Stream<Item = Result<Bytes, Cut>> + Send + 'static,
{
    use futures_util::StreamExt;
    futures_util::stream::unfold(Box::pin(body), move |mut body| async move {
        // `next` keeps its progress in the stream itself: dropping it loses nothing.
        tokio::select! {
            item = body.next() => item.map(|i| (i, body)),
            _ = tokio::time::sleep(every) => Some((Ok(Bytes::from_static(b":\n\n")), body)),
        }
    })
}

/// A body that is cut right after the headers (disconnect fault on a non-streamed answer).
pub(crate) fn cut_body() -> Body {
    // Pending once first, so the connection flushes the status line and headers before
    // the error aborts it.
    Body::from_stream(futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Err::<Bytes, Cut>(Cut)
    }))
}
