//! Reasoning models: what the `ok` requests' responses said about reasoning, and the
//! time to first answer token (after the reasoning).

use serde::Serialize;

use crate::metrics::columns::ReqCols;
use crate::metrics::origins::{ByOrigin, Origins};

/// Reasoning models: what the `ok` requests' responses said about reasoning (records of
/// streams that told reasoning text from answer text, see `formats/README.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReasoningTotals {
    /// `ok` requests whose response carried reasoning text.
    pub requests: u64,
    /// Of those, requests whose answer never came (no answer text: typically the
    /// length limit hit while reasoning); they have no time to first answer token.
    pub without_answer: u64,
    /// Reasoning tokens counted by the client (part of the output tokens).
    pub tokens_client: u64,
    /// Reasoning tokens the server reported, over the requests where it reported any.
    pub tokens_server: u64,
    /// `ok` requests with a server-reported reasoning count.
    pub server_reported: u64,
}

/// What the `ok` requests of a run said about reasoning, as they are counted.
#[derive(Debug, Default)]
pub(crate) struct Reasoning {
    pub(crate) ttfat: ByOrigin,
    pub(crate) totals: ReasoningTotals,
}

impl Reasoning {
    /// Request `i`, `ok`; `o` its origins when it was dispatched and ended, `streamed`
    /// whether times to first tokens are measured at all.
    pub(crate) fn observe(&mut self, rc: &ReqCols, i: usize, o: Option<Origins>, streamed: bool) {
        let t = &mut self.totals;
        let reasoned = rc.first_reasoning[i].is_some() || rc.reasoning_client[i].is_some();
        if reasoned {
            t.requests += 1;
            t.without_answer += u64::from(rc.first_answer[i].is_none() && streamed);
        }
        t.tokens_client += rc.reasoning_client[i].unwrap_or(0) as u64;
        if let Some(r) = rc.reasoning_server[i] {
            t.tokens_server += r as u64;
            t.server_reported += 1;
        }
        if let (true, Some(o), Some(fa)) = (streamed, o, rc.first_answer[i]) {
            self.ttfat.push(fa, o, 1.0);
        }
    }
}
