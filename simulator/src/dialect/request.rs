//! The life of one request, whatever its dialect: what a dialect validated ([`Gen`]),
//! what will happen to it ([`Plan`]: output length, EOS, fault) and its truth record
//! ([`Ctx`]), written once when the request's life ends, including when the client goes
//! away (the response future or body is dropped).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::http::HeaderMap;
use axum::response::Response;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::dialect::state::AppState;
use crate::faults::{Fault, mix};
use crate::truth::{Msg, Outcome, TruthRecord};

/// A validated generation request, in engine terms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gen {
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub ignore_eos: bool,
    pub min_tokens: u32,
}

/// What will happen to a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// Tokens it will produce.
    pub target: u32,
    /// It ends on an EOS token (the last one) rather than at max_tokens.
    pub eos: bool,
    /// Its first `reasoning` tokens are reasoning (set by the OpenAI dialect).
    pub reasoning: u32,
    pub fault: Option<Fault>,
}

/// The life of one request: its truth record, written once when the request ends.
pub(crate) struct Ctx {
    pub state: Arc<AppState>,
    pub rec: TruthRecord,
    record_tokens: bool,
    done: bool,
    /// The prompt's block hashes for the engine's prefix cache (set by the dialect).
    pub prefix: Vec<u64>,
}

impl Ctx {
    pub(crate) fn begin(
        state: &Arc<AppState>,
        headers: &HeaderMap,
        route: &str,
        stream: bool,
    ) -> Ctx {
        let received_ns = state.clock.now_ns();
        let seq = state.next_seq.fetch_add(1, Ordering::Relaxed);
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ctx {
            prefix: Vec::new(),
            record_tokens: state.truth.is_some(),
            state: state.clone(),
            rec: TruthRecord {
                seq,
                request_id,
                dialect: state.dialect.as_str().to_owned(),
                route: route.to_owned(),
                stream,
                received_ns,
                speedup: Some(state.profile.speedup).filter(|&k| k != 1.0),
                ..Default::default()
            },
            done: false,
        }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.rec.seq
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.state.clock.now_ns()
    }

    pub(crate) fn push_token(&mut self, at_ns: u64, reasoning: bool) {
        if self.rec.first_token_ns.is_none() {
            self.rec.first_token_ns = Some(at_ns);
        }
        if reasoning {
            self.rec.reasoning_tokens += 1;
        } else if self.rec.first_answer_ns.is_none() {
            self.rec.first_answer_ns = Some(at_ns);
        }
        if self.record_tokens {
            self.rec.token_ns.push(at_ns);
        }
        self.rec.output_tokens += 1;
    }

    /// End the request's life with this outcome.
    pub(crate) fn finish(&mut self, outcome: Outcome, status: u16) {
        if self.done {
            return;
        }
        self.done = true;
        self.rec.outcome = Some(outcome);
        if self.rec.http_status == 0 {
            self.rec.http_status = status;
        }
        self.rec.finished_ns = self.state.clock.now_ns();
        if outcome == Outcome::Ok {
            let r = &self.rec;
            self.state.metrics.request_done(
                r.finish_reason.as_deref() == Some("eos"),
                r.first_token_ns.map(|t| t.saturating_sub(r.received_ns)),
                r.finished_ns.saturating_sub(r.received_ns),
            );
        }
        if let Some(truth) = &self.state.truth {
            let rec = std::mem::take(&mut self.rec);
            if let Ok(tx) = truth.lock() {
                let _ = tx.send(Msg::Record(Box::new(rec)));
            }
        }
    }

    /// Answer with an error response (validation, bad request, injected HTTP error).
    pub(crate) fn reject(mut self, outcome: Outcome, response: Response) -> Response {
        self.finish(outcome, response.status().as_u16());
        response
    }
}

impl Ctx {
    /// Like [`Ctx::reject`] for a context owned by a job (server shutting down).
    pub(crate) fn reject_ref(&mut self, response: Response) -> Response {
        self.finish(Outcome::Disconnect, response.status().as_u16());
        response
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::ClientGone, 0);
        }
    }
}

impl AppState {
    /// Decide the output length, finish reason and fault of a validated request.
    pub(crate) fn plan(&self, ctx: &mut Ctx, g: &Gen) -> Plan {
        let max = g.max_tokens.max(1);
        let p = self.profile.eos_probability;
        let (target, eos) = if g.ignore_eos || p <= 0.0 {
            (max, false)
        } else {
            // Geometric number of tokens up to and including the first EOS.
            let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, ctx.rec.seq, 2));
            let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
            let l = (u.ln() / (1.0 - p).ln()).floor() as u64 + 1;
            let l = l.max(g.min_tokens.max(1) as u64);
            if l < max as u64 {
                (l as u32, true)
            } else {
                (max, false)
            }
        };
        let fault = self.faults.pick(self.seed, ctx.rec.seq, target);
        ctx.rec.fault = fault.map(|f| f.name().to_string());
        ctx.rec.prompt_tokens = g.prompt_tokens;
        ctx.rec.max_tokens = max;
        Plan {
            prompt_tokens: g.prompt_tokens,
            max_tokens: max,
            target,
            eos,
            reasoning: 0,
            fault,
        }
    }
}
