//! A run's offered and achieved request rates, read from its records (definitions and
//! why in the [`crate::capacity`] docs): the report keeps them per run, the capacity
//! curves and the searches compare them.

use crate::error::Result;
use crate::load::runs::Runs;
use crate::metrics::columns::ReqCols;
use crate::metrics::time::secs;

/// Offered and achieved request rates of a run, in the profile's time for a dilated
/// simulator run (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Dispatched records / span of their scheduled times, requests/s.
    pub offered: Option<f64>,
    /// Completion rate of the `ok` records ([`completion_rate`]), requests/s.
    pub achieved: Option<f64>,
    /// The same rate of the dispatched records' scheduled times: the offered rate over
    /// the window the achieved rate is measured on (saturation compares the two).
    pub offered_window: Option<f64>,
}

/// `n / span` of a set of instants in ns (the rate of a trace: its request count over
/// its arrival span); `None` for fewer than two instants or a zero span (a burst).
pub fn rate_of(times_ns: impl IntoIterator<Item = u64>) -> Option<f64> {
    let (mut n, mut lo, mut hi) = (0u64, u64::MAX, 0u64);
    for t in times_ns {
        n += 1;
        lo = lo.min(t);
        hi = hi.max(t);
    }
    (n >= 2 && hi > lo).then(|| n as f64 / secs(hi, lo))
}

/// The completion rate of a run from its `ok` end times: completions between the 10th
/// and the 90th percentile of the end times over their span, `(k90 - k10) / (t[k90] -
/// t[k10])` (ranks `floor(0.1 (n-1))` and `ceil(0.9 (n-1))` of the sorted times). The
/// tails are left out because below saturation they hold the latency spread, not the
/// server's pace: a run's first requests end fast on an idle server and its last ones
/// drain slowly, which over the whole span would lower the rate of a server that kept
/// up by (latency spread / run span). `None` with fewer than two ends or a zero span.
pub fn completion_rate(mut ends_ns: Vec<u64>) -> Option<f64> {
    ends_ns.sort_unstable();
    let n = ends_ns.len();
    if n < 2 {
        return None;
    }
    let lo = ((n - 1) as f64 * 0.1).floor() as usize;
    let hi = ((n - 1) as f64 * 0.9).ceil() as usize;
    let (a, b) = (ends_ns[lo], ends_ns[hi]);
    (b > a).then(|| (hi - lo) as f64 / secs(b, a))
}

/// Every run's rates, in [`Runs::runs`] order.
pub(crate) fn rates(runs: &Runs) -> Result<Vec<Rates>> {
    let rc = ReqCols::new(&runs.requests)?;
    Ok(runs
        .runs
        .iter()
        .map(|r| {
            let range = r.requests.clone();
            let scheduled: Vec<u64> = range
                .clone()
                .filter(|&i| rc.dispatched[i].is_some())
                .map(|i| rc.scheduled[i])
                .collect();
            let offered = rate_of(scheduled.iter().copied());
            let achieved = completion_rate(
                range
                    .filter(|&i| rc.outcome[i] == "ok")
                    .filter_map(|i| rc.end[i])
                    .collect(),
            );
            Rates {
                offered,
                achieved,
                offered_window: completion_rate(scheduled),
            }
        })
        .collect())
}
