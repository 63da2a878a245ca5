//! The instants a request's latencies are measured from (`--from`: dispatch, send or
//! scheduled time), and one latency's samples from each of them.

use crate::metrics::columns::ReqCols;
use crate::metrics::options::LatencyFrom;
use crate::metrics::time::secs;

/// The instants a request's latencies can be measured from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origins {
    scheduled: u64,
    dispatched: u64,
    /// `sent_ns`, or the dispatch time when the record has none.
    sent: u64,
}

impl Origins {
    /// Request `i`'s origins, when it was dispatched (`sent` falls back to dispatch).
    pub(crate) fn of_request(rc: &ReqCols, i: usize) -> Option<Origins> {
        let d = rc.dispatched[i]?;
        Some(Origins {
            scheduled: rc.scheduled[i],
            dispatched: d,
            sent: rc.sent[i].unwrap_or(d),
        })
    }

    pub(crate) fn of(&self, from: LatencyFrom) -> u64 {
        match from {
            LatencyFrom::Dispatch => self.dispatched,
            LatencyFrom::Sent => self.sent,
            LatencyFrom::Scheduled => self.scheduled,
        }
    }
}

/// One latency's samples measured from each origin.
#[derive(Debug, Default)]
pub(crate) struct ByOrigin {
    pub(crate) dispatch: Vec<f64>,
    pub(crate) sent: Vec<f64>,
    pub(crate) scheduled: Vec<f64>,
}

impl ByOrigin {
    /// Adds `(t - origin) / per` for each origin.
    pub(crate) fn push(&mut self, t: u64, o: Origins, per: f64) {
        self.dispatch.push(secs(t, o.dispatched) / per);
        self.sent.push(secs(t, o.sent) / per);
        self.scheduled.push(secs(t, o.scheduled) / per);
    }

    pub(crate) fn chosen(&self, from: LatencyFrom) -> Vec<f64> {
        match from {
            LatencyFrom::Dispatch => self.dispatch.clone(),
            LatencyFrom::Sent => self.sent.clone(),
            LatencyFrom::Scheduled => self.scheduled.clone(),
        }
    }
}
