//! The demo's tables next to the original's published 13B numbers: simulated /
//! published and their ratio per cell, the worst deviation, and which of the original's
//! conclusions (pairs of servers more than 10% apart in a column) the demo reproduces.
//!
//! The published numbers and the ranking rule are the simulator's calibration ones
//! (`simulator::calibration`), so the demo is judged exactly as the profile was fitted.

use analyzer::Report;
use simulator::Policy;
use simulator::calibration::{self, Row};

fn policy_of(backend: &str) -> Option<Policy> {
    backend.parse().ok()
}

/// One row per published number found in the report's simulated tables (caps 32 to
/// 1536; QPS 2, 4, 8), in the shape of the calibration rows.
pub fn rows(report: &Report) -> Vec<Row> {
    let mut out = Vec::new();
    for t in report.throughput_tables.iter().take(1) {
        for row in t.rows.iter().filter(|r| r.simulated) {
            let Some(policy) = policy_of(&row.backend) else {
                continue;
            };
            let published = published_throughput(policy);
            for (col, cell) in t.columns.iter().zip(&row.cells) {
                let i = calibration::CAPS.iter().position(|c| *c as f64 == col.key);
                if let (Some(i), Some(cell)) = (i, cell) {
                    out.push(Row {
                        policy,
                        metric: format!("throughput cap {} (tok/s)", calibration::CAPS[i]),
                        simulated: cell.tok_s,
                        published: published[i],
                    });
                }
            }
        }
    }
    for t in report.latency_tables.iter().take(1) {
        for row in t.rows.iter().filter(|r| r.simulated) {
            let Some(policy) = policy_of(&row.backend) else {
                continue;
            };
            let published = published_latency(policy);
            for (col, cell) in t.columns.iter().zip(&row.cells) {
                let i = calibration::QPS
                    .iter()
                    .position(|q| (*q - col.key).abs() < 1e-6);
                if let (Some(i), Some(cell)) = (i, cell) {
                    let qps = calibration::QPS[i];
                    out.push(Row {
                        policy,
                        metric: format!("QPS {qps} s/token"),
                        simulated: cell.per_token_s,
                        published: published[i].0,
                    });
                    out.push(Row {
                        policy,
                        metric: format!("QPS {qps} request s"),
                        simulated: cell.request_s,
                        published: published[i].1,
                    });
                }
            }
        }
    }
    out
}

fn published_throughput(p: Policy) -> [f64; 4] {
    calibration::PUBLISHED_THROUGHPUT
        .iter()
        .find(|(q, _)| *q == p)
        .expect("three policies")
        .1
}

fn published_latency(p: Policy) -> [(f64, f64); 3] {
    calibration::PUBLISHED_LATENCY
        .iter()
        .find(|(q, _)| *q == p)
        .expect("three policies")
        .1
}

fn name(p: Policy) -> &'static str {
    match p {
        Policy::Tgi => "TGI",
        Policy::Vllm => "vLLM",
        Policy::Lightllm => "LightLLM",
        Policy::VllmV1 => "vLLM (V1)",
    }
}

/// Markdown: the comparison table (with the engine model's virtual-time value of each
/// cell when `exact` has it), the worst deviation and the conclusions.
pub fn markdown(rows: &[Row], exact: &[Row]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "| simulated vs published (13B, A800) | simulated | published | simulated / published | virtual time |\n|:--|--:|--:|--:|--:|\n",
    );
    for r in rows {
        let digits = if r.published < 1.0 { 4 } else { 2 };
        let v = exact
            .iter()
            .find(|v| v.policy == r.policy && v.metric == r.metric)
            .map_or("-".to_string(), |v| {
                format!("{:.d$}", v.simulated, d = digits)
            });
        s.push_str(&format!(
            "| {} {} | {:.d$} | {:.d$} | {:.2} | {v} |\n",
            name(r.policy),
            r.metric,
            r.simulated,
            r.published,
            r.ratio(),
            d = digits
        ));
    }
    let worst = rows
        .iter()
        .max_by(|a, b| (a.ratio() - 1.0).abs().total_cmp(&(b.ratio() - 1.0).abs()))
        .expect("not empty");
    s.push_str(&format!(
        "\n- worst deviation: {:+.1}% ({} {})\n",
        (worst.ratio() - 1.0) * 100.0,
        name(worst.policy),
        worst.metric
    ));
    let ranks = calibration::rankings(rows);
    let wrong: Vec<String> = ranks
        .iter()
        .filter(|k| !k.holds())
        .map(|k| format!("{} {} > {}", k.metric, name(k.higher), name(k.lower)))
        .collect();
    let closest = ranks
        .iter()
        .min_by(|a, b| a.simulated_ratio.total_cmp(&b.simulated_ratio));
    s.push_str(&format!(
        "- the original's conclusions (pairs of servers more than 10% apart in a column): {} of {} reproduced{}{}\n",
        ranks.len() - wrong.len(),
        ranks.len(),
        if wrong.is_empty() {
            String::new()
        } else {
            format!("; reversed: {}", wrong.join(", "))
        },
        closest.map_or(String::new(), |k| format!(
            " (closest: {} {} / {} = {:.2})",
            k.metric,
            name(k.higher),
            name(k.lower),
            k.simulated_ratio
        ))
    ));
    s
}

/// The worst |simulated / published - 1| and the conclusions not reproduced.
pub fn verdict(rows: &[Row]) -> (f64, usize) {
    let worst = rows
        .iter()
        .map(|r| (r.ratio() - 1.0).abs())
        .fold(0.0, f64::max);
    let wrong = calibration::rankings(rows)
        .iter()
        .filter(|k| !k.holds())
        .count();
    (worst, wrong)
}

/// The same cells computed by the engine model in virtual time on the same traces (no
/// client, no HTTP, no timer): what the replayed cells would be with a perfect clock.
/// `traces`: (output cap or None, rate or None, requests) per trace.
pub fn virtual_rows(profile: &simulator::Profile, traces: &[super::VirtualTrace]) -> Vec<Row> {
    let mut out = Vec::new();
    for policy in calibration::POLICIES {
        let Some(params) = profile.engine(policy) else {
            continue;
        };
        for (cap, rate, reqs) in traces {
            if let (Some(cap), None) = (cap, rate)
                && let Some(i) = calibration::CAPS.iter().position(|c| c == cap)
            {
                out.push(Row {
                    policy,
                    metric: format!("throughput cap {cap} (tok/s)"),
                    simulated: calibration::throughput(params, policy, reqs),
                    published: published_throughput(policy)[i],
                });
            }
            if let Some(q) = rate
                && let Some(i) = calibration::QPS.iter().position(|x| (x - q).abs() < 1e-6)
            {
                let (per_tok, req) = calibration::latency(params, policy, reqs);
                let p = published_latency(policy)[i];
                out.push(Row {
                    policy,
                    metric: format!("QPS {q} s/token"),
                    simulated: per_tok,
                    published: p.0,
                });
                out.push(Row {
                    policy,
                    metric: format!("QPS {q} request s"),
                    simulated: req,
                    published: p.1,
                });
            }
        }
    }
    out
}
