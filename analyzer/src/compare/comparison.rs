//! What a comparison is made of and gives: its settings ([`CompareSpec`]) and its result
//! ([`Comparison`]), apart from the code that computes them (`compare/mod.rs`) and the
//! code that reads them (`gate`, `render`), so that neither depends on the other.

use super::context::Context;
use super::intervals::Welch;
use super::requests::Metric;
use super::rows::Row;
use crate::metrics::options::LatencyFrom;
use crate::slo::Slo;
use crate::stats::Stat;

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
    /// The bootstrap's block length in requests; `None`: chosen from the runs (the
    /// requests A had in flight on average, see `compare/mod.rs`).
    pub block: Option<usize>,
    /// Per-request SLO for goodput (run level); `None`: no goodput.
    pub slo: Option<Slo>,
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
            block: None,
            slo: None,
        }
    }
}

/// A run-level number per run of each side (output tokens/s, or good requests/s), and,
/// with two or more runs a side, Welch's interval of the difference of their means.
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
    /// The bootstrap's block length used (requests).
    pub block: usize,
    pub throughput: RunLevel,
    /// Good requests per second (meeting `spec.slo`), when an SLO was given.
    pub goodput: Option<RunLevel>,
    pub context: Context,
    pub spec: CompareSpec,
    /// Per metric, the values compared (paired: `a[i]` and `b[i]` are one request's).
    pub samples: Vec<Sample>,
}

/// One metric's values on each side (seconds, or tokens).
#[derive(Debug, Clone)]
pub struct Sample {
    pub metric: Metric,
    pub a: Vec<f64>,
    pub b: Vec<f64>,
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
