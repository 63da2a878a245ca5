//! Where a request's tokens come from: the engine (its events, in real time) or the
//! null profile's fixed schedule, and the token each one is ([`Tok`]: id, text, time).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::dialect::request::{Ctx, Plan};
use crate::engine::realtime::{EngineEvent, EngineInput, Submission};
use crate::engine::scheduler::EngineRequest;
use crate::faults::Fault;

enum Source {
    Engine(mpsc::UnboundedReceiver<EngineEvent>),
    Null {
        next_index: u32,
        next_at: Option<Instant>,
        /// Before the first token.
        first: Duration,
        /// Between two tokens.
        interval: Duration,
    },
    Closed,
}

/// A token as a dialect writes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tok {
    pub seq: u64,
    pub index: u32,
    pub last: bool,
    /// This is the end-of-sequence token (last of a request that stops on EOS).
    pub eos: bool,
    pub at_ns: u64,
    /// The request's prompt tokens found in the prefix cache (known once admitted).
    pub cached: u32,
}

impl Tok {
    /// (id, text with leading space): EOS shows as id 2 and empty text.
    pub(crate) fn text(&self) -> (u32, &'static str) {
        if self.eos {
            (crate::words::EOS_ID, "")
        } else {
            let (id, spaced, _) = crate::words::token(self.seq, self.index);
            (id, spaced)
        }
    }
}

/// A request being generated.
pub(crate) struct Job {
    pub ctx: Ctx,
    pub plan: Plan,
    source: Source,
}

impl Job {
    /// Submit to the engine (or start the null source).
    pub(crate) fn start(ctx: Ctx, plan: Plan) -> Job {
        let mut ctx = ctx;
        let source = match &ctx.state.engine {
            Some(engine) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let sub = Submission {
                    hashes: std::mem::take(&mut ctx.prefix),
                    req: EngineRequest {
                        key: ctx.rec.seq,
                        prompt_tokens: plan.prompt_tokens,
                        max_tokens: plan.max_tokens,
                        target_tokens: plan.target,
                    },
                    events: tx,
                };
                match engine.tx.send(EngineInput::Submit(sub)) {
                    Ok(()) => Source::Engine(rx),
                    Err(_) => Source::Closed,
                }
            }
            None => {
                ctx.rec.admitted_ns = Some(ctx.rec.received_ns);
                Source::Null {
                    next_index: 0,
                    next_at: None,
                    first: ctx.state.null_first,
                    interval: ctx.state.null_interval,
                }
            }
        };
        Job { ctx, plan, source }
    }

    /// Sleep before the response headers if the fault says so.
    pub(crate) async fn before_headers(&mut self) {
        if let Some(Fault::SlowFirstByte { ms }) = self.plan.fault {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    fn make_tok(&self, index: u32, last: bool, at_ns: u64) -> Tok {
        Tok {
            seq: self.ctx.rec.seq,
            index,
            last,
            eos: last && self.plan.eos,
            at_ns,
            cached: self.ctx.rec.cached_tokens,
        }
    }

    /// The next token; `None` when the engine is gone (server shutting down).
    pub(crate) async fn next(&mut self) -> Option<Tok> {
        match &mut self.source {
            Source::Engine(rx) => loop {
                match rx.recv().await? {
                    EngineEvent::Admitted { at_ns, cached } => {
                        self.ctx.rec.admitted_ns = Some(at_ns);
                        self.ctx.rec.cached_tokens = cached;
                    }
                    EngineEvent::Preempted => self.ctx.rec.preemptions += 1,
                    EngineEvent::Token { index, last, at_ns } => {
                        return Some(self.make_tok(index, last, at_ns));
                    }
                }
            },
            Source::Null {
                next_index,
                next_at,
                first,
                interval,
            } => {
                if *next_index >= self.plan.target {
                    return None;
                }
                let wait = if next_at.is_none() { *first } else { *interval };
                let at = next_at.unwrap_or_else(Instant::now) + wait;
                *next_at = Some(at);
                if !wait.is_zero() {
                    tokio::time::sleep_until(at).await;
                }
                let index = *next_index;
                *next_index += 1;
                let at = self.ctx.state.clock.now_ns();
                Some(self.make_tok(index, index + 1 >= self.plan.target, at))
            }
            Source::Closed => None,
        }
    }

    /// The next token if it is ready now (no waiting).
    pub(crate) fn try_next(&mut self) -> Option<Tok> {
        match &mut self.source {
            Source::Engine(rx) => loop {
                match rx.try_recv().ok()? {
                    EngineEvent::Admitted { at_ns, cached } => {
                        self.ctx.rec.admitted_ns = Some(at_ns);
                        self.ctx.rec.cached_tokens = cached;
                    }
                    EngineEvent::Preempted => self.ctx.rec.preemptions += 1,
                    EngineEvent::Token { index, last, at_ns } => {
                        return Some(self.make_tok(index, last, at_ns));
                    }
                }
            },
            Source::Null {
                next_index,
                next_at,
                interval,
                ..
            } if interval.is_zero() && next_at.is_some() => {
                if *next_index >= self.plan.target {
                    return None;
                }
                let index = *next_index;
                *next_index += 1;
                let at = self.ctx.state.clock.now_ns();
                Some(self.make_tok(index, index + 1 >= self.plan.target, at))
            }
            _ => None,
        }
    }

    /// Await every token (non-streamed responses). Token times are the engine's.
    /// `Err(())` when the engine went away.
    pub(crate) async fn collect(&mut self) -> Result<Vec<Tok>, ()> {
        let mut toks = Vec::with_capacity(self.plan.target as usize);
        loop {
            let Some(t) = self.next().await else {
                return Err(());
            };
            if let Some(Fault::Stall { before_token, ms }) = self.plan.fault
                && t.index == before_token
            {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            self.ctx.push_token(t.at_ns, t.index < self.plan.reasoning);
            toks.push(t);
            if t.last {
                self.ctx.rec.finish_reason = Some(if t.eos { "eos" } else { "length" }.into());
                return Ok(toks);
            }
        }
    }
}
