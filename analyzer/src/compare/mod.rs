//! `llmib compare`: is B really faster than A? Runs of one trace are paired by
//! construction (request `id` k of both had the same prompt, output length and arrival
//! offset), so a per-request paired comparison is far more sensitive than comparing two
//! distributions, and exact about what differs.
//!
//! Layout: [`comparison`] (the settings and the result, read by `gate` and `render`),
//! [`requests`] (each side's per-request numbers), [`rows`] (one metric's
//! statistic compared: interval, p-value, verdict), [`ranks`] (Wilcoxon
//! signed-rank, Mann–Whitney U), [`intervals`] (the seeded percentile bootstrap, Welch's
//! t-interval for run-level numbers), [`context`] (what makes the comparison fair,
//! checked), [`gate`] (`--fail-if` rules), [`render`] (table, JSON, CSV).

pub mod comparison;
pub mod context;
pub mod gate;
pub mod intervals;
pub mod ranks;
pub mod render;
pub mod requests;
pub mod rows;

use formats::{Outcome, RunLog};

pub use comparison::{CompareSpec, Comparison, DEFAULT_SEED, RunLevel, Sample, fmt_p, stat_name};
use intervals::{Welch, welch};
use requests::{Metric, side};
use rows::{RowSettings, row};

/// Why two sides cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "{side}: its runs replayed different traces ({a} and {b}); a side is runs of one trace"
    )]
    MixedSide {
        side: &'static str,
        a: String,
        b: String,
    },
    #[error(
        "--paired: A replayed trace {a} and B trace {b}; pairing needs the same trace (drop --paired to compare the distributions)"
    )]
    DifferentTraces { a: String, b: String },
    #[error("{0}: no ok request to compare")]
    NoOk(String),
}

fn trace_of(run: &RunLog) -> String {
    run.header.trace.sha256.clone()
}

/// One side's trace, refusing a side of several traces.
fn side_trace(side_name: &'static str, runs: &[&RunLog]) -> Result<String, CompareError> {
    let t = trace_of(runs[0]);
    if let Some(other) = runs.iter().map(|r| trace_of(r)).find(|s| *s != t) {
        return Err(CompareError::MixedSide {
            side: side_name,
            a: t,
            b: other,
        });
    }
    Ok(t)
}

/// Output tokens per second of a run's ok requests, from its first dispatch to its
/// last end.
pub fn output_tokens_per_s(run: &RunLog) -> Option<f64> {
    let ok = || {
        run.records
            .iter()
            .filter(|r| r.outcome == Outcome::Ok && !r.warmup)
    };
    let tokens: u64 = ok().map(|r| r.output_tokens.unwrap_or(0) as u64).sum();
    let start = run.records.iter().filter_map(|r| r.dispatched_ns).min()?;
    let end = ok().filter_map(|r| r.end_ns).max()?;
    (end > start).then(|| tokens as f64 / ((end - start) as f64 / 1e9))
}

/// Compares B against A (each one or more runs, named for messages).
pub fn compare(
    a: &[(&str, &RunLog)],
    b: &[(&str, &RunLog)],
    spec: &CompareSpec,
) -> Result<Comparison, CompareError> {
    for (name, run) in a.iter().chain(b) {
        if !run
            .records
            .iter()
            .any(|r| r.outcome == Outcome::Ok && !r.warmup)
        {
            return Err(CompareError::NoOk(name.to_string()));
        }
    }
    let runs_a: Vec<&RunLog> = a.iter().map(|x| x.1).collect();
    let runs_b: Vec<&RunLog> = b.iter().map(|x| x.1).collect();
    let (ta, tb) = (side_trace("A", &runs_a)?, side_trace("B", &runs_b)?);
    let paired = match spec.paired {
        Some(true) if ta != tb => return Err(CompareError::DifferentTraces { a: ta, b: tb }),
        Some(p) => p,
        None => ta == tb,
    };
    let (sa, sb) = (side(&runs_a, spec.from), side(&runs_b, spec.from));
    let settings = RowSettings {
        alpha: spec.alpha,
        resamples: spec.resamples,
        seed: spec.seed,
        paired,
    };
    let mut rows = Vec::new();
    let mut samples = Vec::new();
    let (mut n, mut left_out) = ([sa.by_id.len(), sb.by_id.len()], [sa.left_out, sb.left_out]);
    if paired {
        let both = sa
            .by_id
            .keys()
            .filter(|id| sb.by_id.contains_key(id))
            .count();
        left_out = [
            sa.left_out + sa.by_id.len() - both,
            sb.left_out + sb.by_id.len() - both,
        ];
        n = [both, both];
    }
    for (mi, metric) in Metric::ALL.into_iter().enumerate() {
        let (va, vb) = if paired {
            sa.by_id
                .iter()
                .filter_map(|(id, x)| Some((x[mi]?, sb.by_id.get(id)?[mi]?)))
                .unzip()
        } else {
            let col = |s: &requests::Side| -> Vec<f64> {
                s.by_id.values().filter_map(|x| x[mi]).collect()
            };
            (col(&sa), col(&sb))
        };
        for &stat in &spec.stats {
            rows.extend(row(metric, stat, &va, &vb, settings));
        }
        samples.push(Sample {
            metric,
            a: va,
            b: vb,
        });
    }
    let tput = |runs: &[&RunLog]| -> Vec<f64> {
        runs.iter().filter_map(|r| output_tokens_per_s(r)).collect()
    };
    let (ta_s, tb_s) = (tput(&runs_a), tput(&runs_b));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let throughput = RunLevel {
        relative: mean(&tb_s) / mean(&ta_s) - 1.0,
        welch: welch(&ta_s, &tb_s, spec.alpha).map(|w| {
            let m = mean(&ta_s);
            Welch {
                diff: w.diff / m,
                lo: w.lo / m,
                hi: w.hi / m,
                ..w
            }
        }),
        a: ta_s,
        b: tb_s,
    };
    Ok(Comparison {
        paired,
        n,
        left_out,
        rows,
        throughput,
        context: context::check(&runs_a, &runs_b),
        spec: spec.clone(),
        samples,
    })
}
