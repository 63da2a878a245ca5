//! One row of a comparison: a metric's statistic on both sides, the relative difference
//! `B / A - 1`, its bootstrap interval, the rank test's p-value, and the verdict.
//!
//! The verdict is the interval's: a statistic differs at level `alpha` when its
//! `1 - alpha` interval excludes 0 (the bootstrap tests the statistic itself: a p90 can
//! move while the median does not). The p-value is the rank test's (signed-rank when
//! paired, Mann–Whitney otherwise): whether B's requests are systematically shifted, one
//! number per metric. The smallest detectable difference is the relative difference
//! runs of this size and noise would detect at `alpha` with 80% power: `(z(1 - alpha/2)
//! + z(0.8)) x` the bootstrap's standard error.

use statrs::distribution::{ContinuousCDF, Normal};

use super::intervals::{Interval, Resampling, bootstrap};
use super::ranks::{Method, RankTest, mann_whitney, signed_rank};
use super::requests::Metric;
use crate::stats::{Stat, quantile_sorted};

/// What was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// B's statistic is higher (slower, for a latency).
    Higher,
    /// B's statistic is lower (faster, for a latency).
    Lower,
    /// The interval holds 0.
    NoDifference,
}

impl Verdict {
    /// The verdict's word for `metric`: `slower`/`faster` for latencies.
    pub fn word(self, metric: Metric) -> &'static str {
        match (self, metric) {
            (Verdict::NoDifference, _) => "no detectable difference",
            (Verdict::Higher, Metric::OutputTokens) => "more",
            (Verdict::Lower, Metric::OutputTokens) => "fewer",
            (Verdict::Higher, _) => "slower",
            (Verdict::Lower, _) => "faster",
        }
    }
}

/// One metric's statistic compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: Metric,
    pub stat: Stat,
    pub a: f64,
    pub b: f64,
    /// `b / a - 1`.
    pub relative: f64,
    pub interval: Interval,
    pub p_value: f64,
    /// `wilcoxon` (paired) or `mann-whitney`.
    pub test: &'static str,
    pub method: Method,
    pub verdict: Verdict,
    /// Smallest relative difference detectable at `alpha` with 80% power.
    pub detectable: f64,
    /// Values compared on each side (pairs when paired).
    pub n: [usize; 2],
}

/// The settings of every row.
#[derive(Debug, Clone, Copy)]
pub struct RowSettings {
    pub alpha: f64,
    pub resamples: u32,
    pub seed: u64,
    pub paired: bool,
    /// The bootstrap's block length in requests (values in arrival order).
    pub block: usize,
}

/// The statistic `stat` of a sample (reordered).
pub fn statistic(stat: Stat) -> fn(&mut [f64]) -> Option<f64> {
    fn sorted(v: &mut [f64], q: f64) -> Option<f64> {
        v.sort_by(f64::total_cmp);
        quantile_sorted(v, q)
    }
    match stat {
        Stat::Mean => |v| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64),
        Stat::Median => |v| sorted(v, 0.50),
        Stat::P90 => |v| sorted(v, 0.90),
        Stat::P95 => |v| sorted(v, 0.95),
        Stat::P99 => |v| sorted(v, 0.99),
    }
}

/// The row of `metric`'s `stat` over `a` and `b` (paired: same length, pair `i` is
/// `(a[i], b[i])`). `None` when a side has no value or A's statistic is 0.
pub fn row(metric: Metric, stat: Stat, a: &[f64], b: &[f64], s: RowSettings) -> Option<Row> {
    let f = statistic(stat);
    let sa = f(&mut a.to_vec())?;
    let sb = f(&mut b.to_vec())?;
    if sa == 0.0 {
        return None;
    }
    // One stream of draws per (metric, statistic): rows do not share their resamples.
    let seed = s.seed ^ ((metric as u64) << 8 | stat as u64);
    let how = Resampling {
        paired: s.paired,
        block: s.block,
        resamples: s.resamples,
        alpha: s.alpha,
        seed,
    };
    let boot = bootstrap(a, b, f, how)?;
    let test: RankTest = if s.paired {
        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| y - x).collect();
        signed_rank(&d).unwrap_or(RankTest {
            statistic: 0.0,
            p_value: 1.0,
            method: Method::Exact,
            n: 0,
        })
    } else {
        mann_whitney(a, b)?
    };
    let relative = sb / sa - 1.0;
    let verdict = match (boot.interval.holds_zero(), relative > 0.0) {
        (true, _) => Verdict::NoDifference,
        (false, true) => Verdict::Higher,
        (false, false) => Verdict::Lower,
    };
    let z = Normal::standard();
    let detectable = (z.inverse_cdf(1.0 - s.alpha / 2.0) + z.inverse_cdf(0.8)) * boot.std_error;
    Some(Row {
        metric,
        stat,
        a: sa,
        b: sb,
        relative,
        interval: boot.interval,
        p_value: test.p_value,
        test: if s.paired { "wilcoxon" } else { "mann-whitney" },
        method: test.method,
        verdict,
        detectable,
        n: [a.len(), b.len()],
    })
}
