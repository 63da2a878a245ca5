//! The latencies of a run's `ok` requests: TTFT, E2E and per-token latency from each
//! origin, TPOT, ITL (per gap and per token) and the send delay.

use crate::metrics::columns::ReqCols;
use crate::metrics::options::LatencyFrom;
use crate::metrics::origins::{ByOrigin, Origins};
use crate::metrics::time::secs;

/// One request's latencies from `--from`, what its goodput check reads.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) e2e: f64,
    /// Measured on streamed runs with a first token.
    pub(crate) ttft: Option<f64>,
    /// Measured on streamed runs, requests with at least 2 output tokens.
    pub(crate) tpot: Option<f64>,
}

/// Samples of the `ok` requests that were dispatched and ended.
#[derive(Debug, Default)]
pub(crate) struct Latencies {
    streamed: bool,
    from: LatencyFrom,
    pub(crate) ttft: ByOrigin,
    pub(crate) e2e: ByOrigin,
    /// E2E / output tokens used.
    pub(crate) per_token: ByOrigin,
    pub(crate) tpot: Vec<f64>,
    /// Gaps between consecutive token-carrying events.
    pub(crate) itl: Vec<f64>,
    /// Each gap over the token count of the event ending it.
    pub(crate) itl_per_token: Vec<f64>,
    pub(crate) send_delay: Vec<f64>,
    /// Requests without `sent_ns`.
    pub(crate) sent_missing: u64,
}

impl Latencies {
    /// For a run that `streamed` (or not) with `events` event rows, reporting
    /// latencies from `from`.
    pub(crate) fn new(streamed: bool, from: LatencyFrom, events: usize) -> Self {
        let cap = if streamed { events } else { 0 };
        Latencies {
            streamed,
            from,
            itl: Vec::with_capacity(cap),
            itl_per_token: Vec::with_capacity(cap),
            ..Latencies::default()
        }
    }

    /// Request `i`, `ok`, dispatched at `d` and ended at `e` (origins `o`), with
    /// `used` output tokens.
    pub(crate) fn observe(
        &mut self,
        rc: &ReqCols,
        i: usize,
        (d, e): (u64, u64),
        o: Origins,
        used: u64,
    ) -> Measured {
        match rc.sent[i] {
            Some(s) => self.send_delay.push(secs(s, d)),
            None => self.sent_missing += 1,
        }
        self.e2e.push(e, o, 1.0);
        if used > 0 {
            self.per_token.push(e, o, used as f64);
        }
        let mut here = Measured {
            e2e: secs(e, o.of(self.from)),
            ttft: None,
            tpot: None,
        };
        if let (true, Some(ft)) = (self.streamed, rc.first_token[i]) {
            self.ttft.push(ft, o, 1.0);
            here.ttft = Some(secs(ft, o.of(self.from)));
            if used >= 2 {
                // E2E - TTFT = end - first token, whatever the origin.
                let t = secs(e, ft) / (used - 1) as f64;
                self.tpot.push(t);
                here.tpot = Some(t);
            }
        }
        here
    }

    /// A streamed request's events (times `t`, token counts `k`): the gaps between
    /// consecutive events that carry tokens.
    pub(crate) fn observe_events(&mut self, t: &[u64], k: &[u32]) {
        let mut prev: Option<u64> = None;
        for (&t, &k) in t.iter().zip(k) {
            if k == 0 {
                continue;
            }
            if let Some(p) = prev {
                let gap = secs(t, p);
                self.itl.push(gap);
                self.itl_per_token.push(gap / k as f64);
            }
            prev = Some(t);
        }
    }
}
