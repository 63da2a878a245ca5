//! What flows between the phases of a run and its request tasks: a trace request
//! made ready before the clock starts ([`Prepared`], built by `prepare.rs`, held by
//! the schedule, run by a request task), and a request task's word that its record is
//! final ([`Release`], which frees its session's next turn in the schedule). Apart so
//! that the schedule and the request task each depend on it, not on each other.

use bytes::Bytes;
use formats::LogRecord;

/// A trace request made ready to send before the run starts: the body is serialized
/// ahead of time so dispatching costs a task spawn and nothing else.
#[derive(Debug)]
pub(crate) struct Prepared {
    pub id: u64,
    pub scheduled_ns: u64,
    pub body: Bytes,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// The output an assumed count may claim: `max_tokens`, or less when the server's
    /// known limit caps it (`ReplayConfig::max_model_len`).
    pub contract_tokens: u32,
    pub prompt_bytes: usize,
    pub ignore_eos_sent: bool,
    pub warmup: bool,
    /// When the dispatcher handed the request to the runtime (set at spawn).
    pub handoff_ns: u64,
    /// How long before `scheduled_ns` it was handed over (see `dispatch::handoff_lead`).
    pub lead_ns: u64,
    /// The trace's session and turn, copied to the record.
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
    /// A session's later turn not yet released: its think time scaled to the run (due
    /// that long after the previous turn ends; `scheduled_ns` is until then the trace's
    /// lower bound). `None` for other requests, and once released (`schedule.rs`).
    pub think_ns: Option<u64>,
    /// The waiting slot of the next turn of this request's session, released when this
    /// request has its record (see `crate::run::schedule`).
    pub next_turn: Option<u32>,
}

impl Prepared {
    pub fn not_sent(&self) -> LogRecord {
        let mut rec = LogRecord::not_sent(
            self.id,
            self.scheduled_ns,
            self.prompt_tokens,
            self.max_tokens,
            self.warmup,
        );
        rec.session_id = self.session_id;
        rec.turn = self.turn;
        rec
    }

    /// A request with an empty body due at `scheduled_ns`, for unit tests.
    #[cfg(test)]
    pub fn for_tests(id: u64, scheduled_ns: u64) -> Prepared {
        Prepared {
            id,
            scheduled_ns,
            body: Bytes::new(),
            prompt_tokens: 1,
            max_tokens: 1,
            contract_tokens: 1,
            prompt_bytes: 0,
            ignore_eos_sent: false,
            warmup: false,
            handoff_ns: 0,
            lead_ns: 0,
            session_id: None,
            turn: None,
            think_ns: None,
            next_turn: None,
        }
    }
}

/// A request task's word to the dispatcher that it has its record: the next turn of its
/// session (in waiting slot `slot`) is due `think` after `ended_ns`, or, when `None`
/// (the request was not sent), will not be sent either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Release {
    pub slot: u32,
    pub ended_ns: Option<u64>,
}
