//! Capacity: throughput-latency curves from runs of one trace at several offered rates
//! (an `llmib sweep` or `llmib search` directory, or any logs given to `llmib analyze`).
//!
//! Why the offered rate is read from the records and not from a manifest: a log must be
//! analysable alone, old logs included. A run's **offered rate** is its dispatched
//! records' count divided by the span of their scheduled times (`n / (max scheduled -
//! min scheduled)`): the trace's own rate definition (request count / arrival span)
//! applied to what was replayed, time scale included. Its **achieved rate** is the
//! completion rate of its `ok` records over the middle 80% of their end times
//! ([`completion_rate`]). Below saturation requests end as they arrive, shifted by a
//! stable latency, and the two agree; above it they end at the server's pace and the
//! achieved rate flattens at its capacity (the duration-based `request_s` also counts
//! the drain of the last requests, and so reads low on a server that kept up).
//!
//! Runs against the simulator sped up `K` times (`backend.simulated.speedup`) are in the
//! profile's time already: loading multiplied their times by `K` (see `load`), so their
//! rates are divided by `K` and their latencies multiplied by it with no scaling here.

pub mod export;
pub mod manifest;
pub mod slo;

use serde::Serialize;

use crate::load::Runs;
use crate::metrics::{ReqCols, secs};
use crate::report::{Report, RunReport};
use crate::stats::Stats;

pub use manifest::Manifest;
pub use slo::{SloMetric, SloTarget, SloTargets};

/// A run is saturated when its achieved rate is below this share of the offered rate.
pub const SATURATION_ACHIEVED: f64 = 0.9;
/// ... or when its TTFT p50 is above this many times the lowest rate's (queueing).
pub const SATURATION_TTFT_FACTOR: f64 = 10.0;

/// Offered and achieved request rates of a run, in the profile's time for a dilated
/// simulator run (see the module docs).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Rates {
    /// Dispatched records / span of their scheduled times, requests/s.
    pub offered: Option<f64>,
    /// Completion rate of the `ok` records ([`completion_rate`]), requests/s.
    pub achieved: Option<f64>,
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
pub(crate) fn rates(runs: &Runs) -> crate::Result<Vec<Rates>> {
    let rc = ReqCols::new(&runs.requests)?;
    Ok(runs
        .runs
        .iter()
        .map(|r| {
            let range = r.requests.clone();
            let offered = rate_of(
                range
                    .clone()
                    .filter(|&i| rc.dispatched[i].is_some())
                    .map(|i| rc.scheduled[i]),
            );
            let achieved = completion_rate(
                range
                    .filter(|&i| rc.outcome[i] == "ok")
                    .filter_map(|i| rc.end[i])
                    .collect(),
            );
            Rates { offered, achieved }
        })
        .collect())
}

/// One run on a curve, in profile time (see the module docs). Latencies in seconds from
/// the analysis' `--from` origin.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub run: String,
    pub log: String,
    /// Requests per second offered.
    pub offered_rate: f64,
    /// Requests per second completed (`ok`); `null` with fewer than two.
    pub achieved_rate: Option<f64>,
    pub requests: u64,
    pub ok: u64,
    pub ttft_s: Stats,
    pub tpot_s: Stats,
    pub e2e_s: Stats,
    pub itl_s: Stats,
    /// Share of requests meeting the analysis' per-request SLO (`--slo`), when given.
    pub goodput: Option<f64>,
    /// Why the run counts as saturated (see [`saturation`]); `null` when it does not.
    pub saturated: Option<String>,
}

impl Point {
    /// The latency `metric`'s statistics.
    pub fn stats(&self, metric: SloMetric) -> &Stats {
        match metric {
            SloMetric::Ttft => &self.ttft_s,
            SloMetric::Tpot => &self.tpot_s,
            SloMetric::E2e => &self.e2e_s,
            SloMetric::Itl => &self.itl_s,
        }
    }

    /// Whether every target holds (a missing statistic fails it); and the worst
    /// value / limit ratio (> 1 fails), for how far from the boundary the run was.
    pub fn meets(&self, slo: &SloTargets, min_goodput: Option<f64>) -> (bool, f64) {
        let mut ok = true;
        let mut worst = 0.0f64;
        for t in &slo.0 {
            match t.value(self.stats(t.metric)) {
                Some(v) => {
                    worst = worst.max(v / t.limit_s);
                    ok &= v <= t.limit_s;
                }
                None => ok = false,
            }
        }
        if let Some(g) = min_goodput {
            ok &= self.goodput.is_some_and(|v| v >= g);
        }
        (ok, worst)
    }
}

/// Whether a point is saturated against the curve's lowest-rate point `first`: its
/// achieved rate below [`SATURATION_ACHIEVED`] x offered, or its TTFT p50 above
/// [`SATURATION_TTFT_FACTOR`] x `first`'s. Returns the reason.
pub fn saturation(p: &Point, first: &Point) -> Option<String> {
    let achieved = p.achieved_rate.unwrap_or(0.0);
    if achieved < SATURATION_ACHIEVED * p.offered_rate {
        return Some(format!(
            "achieved {:.4} < {} x offered {:.4} req/s",
            achieved, SATURATION_ACHIEVED, p.offered_rate
        ));
    }
    if let (Some(t), Some(t0)) = (p.ttft_s.p50, first.ttft_s.p50)
        && t > SATURATION_TTFT_FACTOR * t0
    {
        return Some(format!(
            "TTFT p50 {t:.4} s > {SATURATION_TTFT_FACTOR} x {t0:.4} s at the lowest rate"
        ));
    }
    None
}

/// The knee of a curve: its last point before the first saturated one.
#[derive(Debug, Clone, Serialize)]
pub struct Knee {
    pub offered_rate: f64,
    pub run: String,
    /// The first saturated point's offered rate, when the curve reached saturation.
    pub saturated_at: Option<f64>,
}

/// One backend's runs of one trace, by offered rate.
#[derive(Debug, Clone, Serialize)]
pub struct Curve {
    /// Row label of the backend (`vLLM (simulated, tiny)`).
    pub label: String,
    pub backend: String,
    pub model: Option<String>,
    pub simulated: bool,
    /// Simulator speed-up of the runs (1 for real servers); their times are the
    /// profile's already.
    pub speedup: f64,
    pub trace_name: String,
    pub trace_sha256: String,
    /// Latencies measured from (`--from`).
    pub latency_from: &'static str,
    pub points: Vec<Point>,
    pub knee: Option<Knee>,
}

fn speedup_of(r: &RunReport) -> f64 {
    r.simulated.as_ref().and_then(|s| s.speedup).unwrap_or(1.0)
}

/// A run's point (no saturation mark); `None` without an offered rate.
pub fn point_of(r: &RunReport, from: crate::LatencyFrom) -> Option<Point> {
    let m = &r.metrics;
    Some(Point {
        run: r.run.clone(),
        log: r.log.clone(),
        offered_rate: r.rates.offered?,
        achieved_rate: r.rates.achieved,
        requests: m.requests,
        ok: m.ok,
        ttft_s: *m.ttft_from(from),
        tpot_s: m.tpot_s,
        e2e_s: *m.e2e_from(from),
        itl_s: m.itl_s,
        goodput: m.goodput.as_ref().and_then(|g| g.fraction),
        saturated: None,
    })
}

/// The curves of a report: one per (backend row, model, speed-up, trace), points
/// ordered by offered rate, each marked saturated or not and the knee found. Runs
/// without an offered rate (bursts) are left out; so is a curve of a single point.
pub fn curves(report: &Report) -> Vec<Curve> {
    let from = report.options.metrics.latency_from;
    let mut out: Vec<Curve> = Vec::new();
    for r in &report.runs {
        let Some(p) = point_of(r, from) else { continue };
        let k = speedup_of(r);
        let (label, model) = (r.row_label(), r.model.clone());
        let found = out.iter_mut().find(|c| {
            c.label == label
                && c.model == model
                && c.speedup == k
                && c.trace_sha256 == r.trace_sha256
        });
        match found {
            Some(c) => c.points.push(p),
            None => out.push(Curve {
                label,
                backend: r.backend.clone(),
                model,
                simulated: r.simulated.is_some(),
                speedup: k,
                trace_name: r.trace_name.clone(),
                trace_sha256: r.trace_sha256.clone(),
                latency_from: from.name(),
                points: vec![p],
                knee: None,
            }),
        }
    }
    out.retain(|c| c.points.len() >= 2);
    for c in &mut out {
        c.points.sort_by(|a, b| {
            a.offered_rate
                .total_cmp(&b.offered_rate)
                .then(a.run.cmp(&b.run))
        });
        mark(c);
    }
    out
}

/// Marks saturated points and finds the knee.
fn mark(c: &mut Curve) {
    c.knee = knee_of(&mut c.points);
}

/// Orders `points` by offered rate, marks the saturated ones against the lowest-rate
/// point and returns the knee: the last point before the first saturated one (none
/// when the first is saturated already).
pub fn knee_of(points: &mut [Point]) -> Option<Knee> {
    points.sort_by(|a, b| {
        a.offered_rate
            .total_cmp(&b.offered_rate)
            .then(a.run.cmp(&b.run))
    });
    let first = points.first()?.clone();
    for p in points.iter_mut() {
        p.saturated = saturation(p, &first);
    }
    let cut = points.iter().position(|p| p.saturated.is_some());
    let last_ok = match cut {
        Some(0) => return None,
        Some(i) => i - 1,
        None => points.len() - 1,
    };
    Some(Knee {
        offered_rate: points[last_ok].offered_rate,
        run: points[last_ok].run.clone(),
        saturated_at: cut.map(|j| points[j].offered_rate),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pt(offered: f64, achieved: f64, ttft: f64) -> Point {
        Point {
            run: format!("r{offered}"),
            log: String::new(),
            offered_rate: offered,
            achieved_rate: Some(achieved),
            requests: 10,
            ok: 10,
            ttft_s: Stats {
                p50: Some(ttft),
                ..Stats::default()
            },
            tpot_s: Stats::default(),
            e2e_s: Stats::default(),
            itl_s: Stats::default(),
            goodput: None,
            saturated: None,
        }
    }

    #[test]
    fn completion_rate_leaves_out_the_tails() {
        // 11 ends 1 s apart, but the first came early and the last drained late.
        let mut ends: Vec<u64> = (0..11)
            .map(|i| 10_000_000_000 + i * 1_000_000_000)
            .collect();
        ends[0] = 0;
        ends[10] = 60_000_000_000;
        // Ranks 1 and 9: 8 completions in 8 s.
        assert_eq!(completion_rate(ends), Some(1.0));
        assert_eq!(completion_rate(vec![5, 5]), None);
        assert_eq!(completion_rate(vec![0, 1_000_000_000]), Some(1.0));
    }

    #[test]
    fn rate_is_count_over_span() {
        assert_eq!(
            rate_of([0, 1_000_000_000, 2_000_000_000, 4_000_000_000]),
            Some(1.0)
        );
        assert_eq!(rate_of([5, 5, 5]), None);
        assert_eq!(rate_of([5]), None);
        assert_eq!(rate_of(Vec::<u64>::new()), None);
    }

    fn curve(points: Vec<Point>) -> Curve {
        let mut c = Curve {
            label: "x".into(),
            backend: "vllm".into(),
            model: None,
            simulated: true,
            speedup: 1.0,
            trace_name: "t".into(),
            trace_sha256: "s".into(),
            latency_from: "dispatch",
            points,
            knee: None,
        };
        mark(&mut c);
        c
    }

    #[test]
    fn knee_is_the_last_point_before_saturation() {
        let c = curve(vec![
            pt(1.0, 1.0, 0.1),
            pt(2.0, 1.95, 0.12),
            pt(4.0, 3.9, 0.2),
            pt(8.0, 5.0, 3.0),
            pt(16.0, 15.0, 0.3),
        ]);
        let k = c.knee.unwrap();
        assert_eq!(k.offered_rate, 4.0);
        assert_eq!(k.saturated_at, Some(8.0));
        assert!(
            c.points[3]
                .saturated
                .as_deref()
                .unwrap()
                .contains("achieved")
        );
        // TTFT growth alone saturates too.
        let c = curve(vec![pt(1.0, 1.0, 0.1), pt(2.0, 2.0, 1.5)]);
        assert!(c.points[1].saturated.as_deref().unwrap().contains("TTFT"));
        assert_eq!(c.knee.unwrap().offered_rate, 1.0);
        // Never saturated: the knee is the highest rate, and says so.
        let c = curve(vec![pt(1.0, 1.0, 0.1), pt(2.0, 2.0, 0.1)]);
        let k = c.knee.unwrap();
        assert_eq!((k.offered_rate, k.saturated_at), (2.0, None));
        // Saturated from the start: no knee.
        let c = curve(vec![pt(1.0, 0.5, 0.1), pt(2.0, 0.5, 0.1)]);
        assert!(c.knee.is_none());
    }

    #[test]
    fn meets_checks_every_target_and_goodput() {
        let mut p = pt(1.0, 1.0, 0.1);
        p.ttft_s.p99 = Some(0.4);
        p.tpot_s.p99 = Some(0.06);
        let slo = SloTargets::parse("ttft_p99=0.5").unwrap();
        assert_eq!(p.meets(&slo, None), (true, 0.8));
        let slo = SloTargets::parse("ttft_p99=0.5,tpot_p99=0.05").unwrap();
        let (ok, worst) = p.meets(&slo, None);
        assert!(!ok && (worst - 1.2).abs() < 1e-9);
        let slo = SloTargets::parse("e2e_p50=1").unwrap();
        assert!(!p.meets(&slo, None).0, "a missing statistic fails");
        let slo = SloTargets::parse("ttft_p99=0.5").unwrap();
        assert!(!p.meets(&slo, Some(0.9)).0, "no goodput measured fails");
        p.goodput = Some(0.95);
        assert!(p.meets(&slo, Some(0.9)).0);
        assert!(!p.meets(&slo, Some(0.99)).0);
    }
}
