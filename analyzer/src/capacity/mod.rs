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
//! **Saturation compares like with like**: the achieved rate is set against the offered
//! rate over the same middle 80% of the dispatched records' scheduled times
//! (`offered_window`, the same [`completion_rate`] of the arrivals), never against the
//! whole span's. A trace's arrivals are not evenly spread (Poisson, or a production
//! trace's bursts): the middle of a run can be 15% sparser than its whole, and an idle
//! server that completed every request as it arrived was flagged saturated for it.
//!
//! **Failed requests count against every SLO**: a request that was sent and did not
//! succeed (`http_error`, `timeout`, `connect_error`, `stream_error`) never met a
//! latency target, so the statistics an SLO is checked against
//! ([`Point::slo_stats`]) take it as infinitely slow: a p99 target fails once more than
//! 1% of the requests failed, a mean target with any failure. The latencies shown
//! (`ttft_s`...) stay those of the `ok` requests.
//!
//! Runs against the simulator sped up `K` times (`backend.simulated.speedup`) are in the
//! profile's time already: loading multiplied their times by `K` (see `load`), so their
//! rates are divided by `K` and their latencies multiplied by it with no scaling here.

pub mod export;
pub mod manifest;

use serde::Serialize;

use crate::metrics::options::LatencyFrom;
use crate::report::Report;
use crate::report::run::RunReport;
use crate::stats::{Stats, summarize};

pub use crate::metrics::rates::{Rates, completion_rate, rate_of};
pub use crate::slo::{SloMetric, SloTarget, SloTargets};
pub use manifest::Manifest;

/// A run is saturated when its achieved rate is below this share of the offered rate.
pub const SATURATION_ACHIEVED: f64 = 0.9;
/// ... or when its TTFT p50 is above this many times the lowest rate's (queueing).
pub const SATURATION_TTFT_FACTOR: f64 = 10.0;

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
    /// Requests per second offered over the window `achieved_rate` is measured on (the
    /// middle 80% of the scheduled times): what saturation compares it with.
    pub offered_window_rate: Option<f64>,
    pub requests: u64,
    pub ok: u64,
    /// Requests sent that did not succeed (`http_error`, `timeout`, `connect_error`,
    /// `stream_error`): each counts against every SLO target as infinitely slow.
    pub failed: u64,
    /// Of them, requests that never connected (`connect_error`).
    pub unconnected: u64,
    pub ttft_s: Stats,
    pub tpot_s: Stats,
    pub e2e_s: Stats,
    pub itl_s: Stats,
    /// Share of requests meeting the analysis' per-request SLO (`--slo`), when given.
    pub goodput: Option<f64>,
    /// Why the run counts as saturated (see [`saturation`]); `null` when it does not.
    pub saturated: Option<String>,
    /// The statistics SLO targets are checked against: the latencies' over every
    /// request sent, failed ones counted infinitely slow (the module docs).
    #[serde(skip)]
    pub slo_stats: [Stats; 4],
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

    /// The `metric`'s statistics an SLO target is checked against: over every
    /// request sent, a failed one counting as infinitely slow.
    pub fn slo_stats(&self, metric: SloMetric) -> &Stats {
        let i = match metric {
            SloMetric::Ttft => 0,
            SloMetric::Tpot => 1,
            SloMetric::E2e => 2,
            SloMetric::Itl => 3,
        };
        &self.slo_stats[i]
    }

    /// Whether every target holds (a missing statistic fails it, and so does a failed
    /// request: [`Point::slo_stats`]); and the worst value / limit ratio (> 1 fails,
    /// infinite when failures decide), for how far from the boundary the run was.
    pub fn meets(&self, slo: &SloTargets, min_goodput: Option<f64>) -> (bool, f64) {
        let mut ok = true;
        let mut worst = 0.0f64;
        for t in &slo.0 {
            match t.value(self.slo_stats(t.metric)) {
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
    // Like with like: both rates over the middle 80% of the run (the module docs).
    let offered = p.offered_window_rate.unwrap_or(p.offered_rate);
    if achieved < SATURATION_ACHIEVED * offered {
        return Some(format!(
            "achieved {achieved:.4} < {SATURATION_ACHIEVED} x offered {offered:.4} req/s (middle 80% of the run)"
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

/// Outcomes of a request sent that did not succeed.
pub const FAILED_OUTCOMES: [&str; 4] = ["http_error", "timeout", "connect_error", "stream_error"];

/// A run's point (no saturation mark); `None` without an offered rate.
pub fn point_of(r: &RunReport, from: LatencyFrom) -> Option<Point> {
    let m = &r.metrics;
    let count = |k: &str| m.outcomes.get(k).copied().unwrap_or(0);
    let failed: u64 = FAILED_OUTCOMES.iter().map(|k| count(k)).sum();
    let (ttft_s, tpot_s, e2e_s, itl_s) = (*m.ttft_from(from), m.tpot_s, *m.e2e_from(from), m.itl_s);
    let slo_stats = if failed == 0 {
        [ttft_s, tpot_s, e2e_s, itl_s]
    } else {
        let s = &r.samples;
        // ITL has a value per gap: a failed request weighs as many as an `ok` one has.
        let gaps = (s.itl_s.len() as f64 / m.ok.max(1) as f64).round().max(1.0) as u64;
        [
            with_failures(&s.ttft_s, failed),
            with_failures(&s.tpot_s, failed),
            with_failures(&s.e2e_s, failed),
            with_failures(&s.itl_s, failed.saturating_mul(gaps)),
        ]
    };
    Some(Point {
        run: r.run.clone(),
        log: r.log.clone(),
        offered_rate: r.rates.offered?,
        achieved_rate: r.rates.achieved,
        offered_window_rate: r.rates.offered_window,
        requests: m.requests,
        ok: m.ok,
        failed,
        unconnected: count("connect_error"),
        ttft_s,
        tpot_s,
        e2e_s,
        itl_s,
        goodput: m.goodput.as_ref().and_then(|g| g.fraction),
        saturated: None,
        slo_stats,
    })
}

/// Statistics of `sample` with `failed` more values at +infinity (failed requests):
/// a quantile whose rank reaches them is infinite, the mean and max are.
pub fn with_failures(sample: &[f64], failed: u64) -> Stats {
    let mut v = sample.to_vec();
    if failed == 0 {
        return summarize(&mut v);
    }
    v.sort_unstable_by(f64::total_cmp);
    let n = v.len() as u64 + failed;
    let at = |i: u64| v.get(i as usize).copied().unwrap_or(f64::INFINITY);
    let q = |p: f64| {
        let h = (n - 1) as f64 * p;
        let lo = h.floor() as u64;
        let frac = h - lo as f64;
        let (a, b) = (at(lo), at((lo + 1).min(n - 1)));
        Some(if frac == 0.0 || a.is_infinite() {
            a
        } else if b.is_infinite() {
            f64::INFINITY
        } else {
            a + frac * (b - a)
        })
    };
    Stats {
        count: n,
        mean: Some(f64::INFINITY),
        min: Some(at(0)),
        max: Some(f64::INFINITY),
        p50: q(0.50),
        p90: q(0.90),
        p95: q(0.95),
        p99: q(0.99),
        p99_9: q(0.999),
    }
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
        let ttft_s = Stats {
            p50: Some(ttft),
            ..Stats::default()
        };
        Point {
            run: format!("r{offered}"),
            log: String::new(),
            offered_rate: offered,
            achieved_rate: Some(achieved),
            offered_window_rate: None,
            requests: 10,
            ok: 10,
            failed: 0,
            unconnected: 0,
            ttft_s,
            tpot_s: Stats::default(),
            e2e_s: Stats::default(),
            itl_s: Stats::default(),
            goodput: None,
            saturated: None,
            slo_stats: [ttft_s, Stats::default(), Stats::default(), Stats::default()],
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
        p.slo_stats[0].p99 = Some(0.4);
        p.slo_stats[1].p99 = Some(0.06);
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

    #[test]
    fn failed_requests_count_as_infinitely_slow() {
        let ok: Vec<f64> = (1..=5).map(|i| i as f64 * 0.01).collect();
        // No failure: the ok statistics unchanged.
        assert_eq!(
            with_failures(&ok, 0),
            crate::stats::summarize(&mut ok.clone())
        );
        // 35 of 40 failed: every percentile from p50 up is infinite.
        let s = with_failures(&ok, 35);
        assert_eq!(s.count, 40);
        assert_eq!(s.p50, Some(f64::INFINITY));
        assert_eq!(s.min, Some(0.01));
        // 1 of 200 failed: p50 and p99 finite (rank 197.01 of 0..199 interpolates
        // between two ok values), p99.9 not.
        let ok: Vec<f64> = (0..199).map(|i| i as f64).collect();
        let s = with_failures(&ok, 1);
        assert_eq!(s.p50, Some(99.5));
        assert!((s.p99.unwrap() - 197.01).abs() < 1e-9);
        assert_eq!(s.p99_9, Some(f64::INFINITY));
        assert_eq!(s.mean, Some(f64::INFINITY));
        // With nothing ok at all, every statistic is infinite (and fails any target).
        assert_eq!(with_failures(&[], 3).p50, Some(f64::INFINITY));
    }

    #[test]
    fn saturation_compares_rates_over_the_same_window() {
        // An idle server at 4 req/s whose run's middle 80% offered 3.45 req/s (sparser
        // arrivals there) and completed as they arrived: not saturated.
        let first = pt(2.0, 2.0, 0.015);
        let mut p = pt(4.0, 3.45, 0.015);
        p.offered_window_rate = Some(3.46);
        assert_eq!(saturation(&p, &first), None);
        // A saturated one completes at its pace whatever the window offered.
        p.achieved_rate = Some(2.5);
        let why = saturation(&p, &first).unwrap();
        assert!(why.contains("offered 3.4600"), "{why}");
    }
}
