//! `llmib compare`: is B really faster than A? Runs of one trace are paired by
//! construction (request `id` k of both had the same prompt, output length and arrival
//! offset), so a per-request paired comparison is far more sensitive than comparing two
//! distributions, and exact about what differs.
//!
//! Layout: [`requests`] (each side's per-request numbers), [`rows`] (one metric's
//! statistic compared: interval, p-value, verdict), [`rank_tests`] (Wilcoxon
//! signed-rank, Mann–Whitney U), [`intervals`] (the seeded percentile bootstrap, Welch's
//! t-interval for run-level numbers), [`context`] (what makes the comparison fair,
//! checked), [`gate`] (`--fail-if` rules), [`render`] (table, JSON, CSV).

pub mod context;
pub mod gate;
pub mod intervals;
pub mod rank_tests;
pub mod render;
pub mod requests;
pub mod rows;

use formats::{Outcome, RunLog};

use crate::metrics::options::LatencyFrom;
use crate::stats::Stat;
use intervals::{Welch, welch};
use requests::{Metric, side};
use rows::{Row, RowSettings, row};

/// The bootstrap's seed unless `--seed` gives one ("llmib" in ASCII).
pub const DEFAULT_SEED: u64 = 0x006c_6c6d_6962;

/// What to compare and how.
#[derive(Debug, Clone)]
pub struct CompareSpec {
    /// Level of the intervals and verdicts (default 0.05).
    pub alpha: f64,
    /// Statistics per metric (default p50 and p90).
    pub stats: Vec<Stat>,
    /// Bootstrap resamples (default 2000).
    pub resamples: u32,
    pub seed: u64,
    /// Pairing: `Some(true)` demands it (same trace), `Some(false)` refuses it, `None`
    /// pairs when both sides replayed the same trace.
    pub paired: Option<bool>,
    pub from: LatencyFrom,
}

impl Default for CompareSpec {
    fn default() -> Self {
        CompareSpec {
            alpha: 0.05,
            stats: vec![Stat::Median, Stat::P90],
            resamples: 2000,
            seed: DEFAULT_SEED,
            paired: None,
            from: LatencyFrom::Dispatch,
        }
    }
}

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

/// A run-level number per run of each side (output tokens/s), and, with two or more runs
/// a side, Welch's interval of the difference of their means.
#[derive(Debug, Clone, PartialEq)]
pub struct RunLevel {
    pub a: Vec<f64>,
    pub b: Vec<f64>,
    /// mean(b) / mean(a) - 1.
    pub relative: f64,
    /// The interval of `mean(b) - mean(a)`, divided by `mean(a)` (relative).
    pub welch: Option<Welch>,
}

/// The comparison of B against A.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub paired: bool,
    /// Requests compared: pairs (ok on both sides) when paired, else per side.
    pub n: [usize; 2],
    /// Requests left out of each side (not ok in a run, or unmatched on the other side
    /// when paired).
    pub left_out: [usize; 2],
    pub rows: Vec<Row>,
    pub throughput: RunLevel,
    pub context: context::Context,
    pub spec: CompareSpec,
}

/// A p-value for reading: three decimals, or scientific below 0.001.
pub fn fmt_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

/// A statistic's name in a comparison (`p50` for the median, as in the rules).
pub fn stat_name(stat: Stat) -> &'static str {
    match stat {
        Stat::Median => "p50",
        s => s.name(),
    }
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
    })
}
