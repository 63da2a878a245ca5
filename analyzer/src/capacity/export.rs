//! The curves' points as `capacity.csv` (one row per run) and `capacity.json`
//! (curves, knees and the SLO), for plotting elsewhere.

use serde::Serialize;

use super::Curve;
use crate::slo::SloTargets;
use crate::stats::Stats;
use crate::tables::csv::field;

/// CSV header of `capacity.csv`.
pub const CSV_COLUMNS: [&str; 29] = [
    "trace",
    "trace_sha256",
    "backend",
    "label",
    "model",
    "speedup",
    "run",
    "offered_rate",
    "achieved_rate",
    "requests",
    "ok",
    "ttft_p50",
    "ttft_p90",
    "ttft_p99",
    "tpot_p50",
    "tpot_p90",
    "tpot_p99",
    "e2e_p50",
    "e2e_p90",
    "e2e_p99",
    "itl_p50",
    "itl_p99",
    "goodput",
    "saturated",
    "knee",
    "latency_from",
    "offered_window_rate",
    "failed",
    "unconnected",
];

fn num(v: Option<f64>) -> String {
    v.map(|v| format!("{v}")).unwrap_or_default()
}

fn stats3(s: &Stats) -> [String; 3] {
    [num(s.p50), num(s.p90), num(s.p99)]
}

/// `capacity.csv`: one row per point of every curve (empty cell = not measured).
pub fn csv(curves: &[Curve]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for c in curves {
        for p in &c.points {
            let knee = c.knee.as_ref().is_some_and(|k| k.run == p.run);
            let mut cells = vec![
                field(&c.trace_name),
                c.trace_sha256.clone(),
                c.backend.clone(),
                field(&c.label),
                field(c.model.as_deref().unwrap_or("")),
                format!("{}", c.speedup),
                field(&p.run),
                format!("{}", p.offered_rate),
                num(p.achieved_rate),
                p.requests.to_string(),
                p.ok.to_string(),
            ];
            for s in [&p.ttft_s, &p.tpot_s, &p.e2e_s] {
                cells.extend(stats3(s));
            }
            cells.extend([num(p.itl_s.p50), num(p.itl_s.p99), num(p.goodput)]);
            cells.push(field(p.saturated.as_deref().unwrap_or("")));
            cells.push(knee.to_string());
            cells.push(c.latency_from.to_string());
            cells.push(num(p.offered_window_rate));
            cells.push(p.failed.to_string());
            cells.push(p.unconnected.to_string());
            out.push_str(&cells.join(","));
            out.push('\n');
        }
    }
    out
}

#[derive(Serialize)]
struct CapacityJson<'a> {
    saturation: Saturation,
    #[serde(skip_serializing_if = "Option::is_none")]
    slo: Option<&'a SloTargets>,
    curves: &'a [Curve],
}

#[derive(Serialize)]
struct Saturation {
    achieved_below: f64,
    ttft_p50_factor: f64,
}

/// `capacity.json`: the saturation rule, the SLO when known, and every curve.
pub fn json(curves: &[Curve], slo: Option<&SloTargets>) -> String {
    let doc = CapacityJson {
        saturation: Saturation {
            achieved_below: super::SATURATION_ACHIEVED,
            ttft_p50_factor: super::SATURATION_TTFT_FACTOR,
        },
        slo,
        curves,
    };
    let mut s = serde_json::to_string_pretty(&doc).expect("curves serialize");
    s.push('\n');
    s
}
