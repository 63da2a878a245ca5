//! How the client dispatched a run's measured requests: lateness against the schedule,
//! new connections, and the run's duration (first dispatch to last completion), which
//! every throughput divides by.

use crate::metrics::columns::ReqCols;
use crate::metrics::time::secs;

/// The dispatched measured requests, any outcome.
#[derive(Debug, Default)]
pub(crate) struct Dispatches {
    /// Dispatch minus scheduled time, seconds.
    pub(crate) lateness: Vec<f64>,
    pub(crate) new_connections: u64,
    first_dispatch: Option<u64>,
    last_end: Option<u64>,
}

impl Dispatches {
    /// Measured request `i`, any outcome (nothing when it was never dispatched).
    pub(crate) fn observe(&mut self, rc: &ReqCols, i: usize) {
        let Some(d) = rc.dispatched[i] else { return };
        self.lateness.push(secs(d, rc.scheduled[i]));
        self.new_connections += u64::from(rc.connect_start[i].is_some());
        self.first_dispatch = Some(self.first_dispatch.map_or(d, |f| f.min(d)));
        if let Some(e) = rc.end[i] {
            self.last_end = Some(self.last_end.map_or(e, |l| l.max(e)));
        }
    }

    /// First dispatch to last completion, seconds; `None` when not positive.
    pub(crate) fn duration_s(&self) -> Option<f64> {
        match (self.first_dispatch, self.last_end) {
            (Some(a), Some(b)) if b > a => Some(secs(b, a)),
            _ => None,
        }
    }
}
