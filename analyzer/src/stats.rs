//! Summary statistics of a sample: count, mean, min, max and percentiles.
//!
//! Percentile definition: linear interpolation between closest ranks (Hyndman and
//! Fan's type 7, numpy's and polars' default `linear`). For a sorted sample
//! `x[0..n]` and a fraction `q` in [0, 1], with `h = (n - 1) q`:
//! `P(q) = x[floor h] + (h - floor h) (x[floor h + 1] - x[floor h])`.
//! So p50 of an even-sized sample is the mean of the two middle values, p0 is the
//! minimum and p100 the maximum. An empty sample has no statistics (`null` in JSON).

use serde::Serialize;

/// Statistics of one metric over one sample, in the metric's unit (seconds for every
/// latency). Every value but `count` is `None` for an empty sample.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Stats {
    pub count: u64,
    pub mean: Option<f64>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p95: Option<f64>,
    pub p99: Option<f64>,
    #[serde(rename = "p99_9")]
    pub p99_9: Option<f64>,
}

/// Which statistic a table cell shows (`--stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stat {
    Mean,
    Median,
    P90,
    P95,
    P99,
}

impl Stat {
    pub fn parse(s: &str) -> Option<Stat> {
        Some(match s {
            "mean" => Stat::Mean,
            "median" | "p50" => Stat::Median,
            "p90" => Stat::P90,
            "p95" => Stat::P95,
            "p99" => Stat::P99,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Stat::Mean => "mean",
            Stat::Median => "median",
            Stat::P90 => "p90",
            Stat::P95 => "p95",
            Stat::P99 => "p99",
        }
    }

    pub fn of(self, s: &Stats) -> Option<f64> {
        match self {
            Stat::Mean => s.mean,
            Stat::Median => s.p50,
            Stat::P90 => s.p90,
            Stat::P95 => s.p95,
            Stat::P99 => s.p99,
        }
    }
}

/// The `q` quantile (0..=1) of an ascending sample, by linear interpolation.
pub fn quantile_sorted(sorted: &[f64], q: f64) -> Option<f64> {
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let h = (n - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(n - 1);
    Some(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
}

/// Quantile fractions reported by [`Stats`].
const QS: [f64; 5] = [0.50, 0.90, 0.95, 0.99, 0.999];

/// Above this size, [`summarize`] selects the needed ranks instead of sorting.
const SELECT_ABOVE: usize = 1 << 16;

/// Statistics of a sample, reordering it in place (sorted for small samples,
/// partitioned around the percentile ranks for large ones: a 13M-value ITL sample is
/// summarised several times faster than a full sort). NaN values must not be present.
pub fn summarize(values: &mut [f64]) -> Stats {
    let n = values.len();
    if n == 0 {
        return Stats::default();
    }
    if n <= SELECT_ABOVE {
        values.sort_unstable_by(f64::total_cmp);
        return summarize_sorted(values);
    }
    let (mut min, mut max, mut sum) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for &v in values.iter() {
        min = min.min(v);
        max = max.max(v);
        sum += v;
    }
    // Every rank the interpolation reads, ascending; each selection then only searches
    // the part of the slice above the previous rank.
    let mut ranks: Vec<usize> = Vec::with_capacity(2 * QS.len());
    for q in QS {
        let lo = ((n - 1) as f64 * q).floor() as usize;
        ranks.push(lo);
        ranks.push((lo + 1).min(n - 1));
    }
    ranks.sort_unstable();
    ranks.dedup();
    let mut at: Vec<(usize, f64)> = Vec::with_capacity(ranks.len());
    let mut start = 0;
    for &r in &ranks {
        let (_, v, _) = values[start..].select_nth_unstable_by(r - start, f64::total_cmp);
        at.push((r, *v));
        start = r + 1;
    }
    let value = |r: usize| at.iter().find(|(k, _)| *k == r).expect("rank selected").1;
    let quantile = |q: f64| {
        let h = (n - 1) as f64 * q;
        let lo = h.floor() as usize;
        let hi = (lo + 1).min(n - 1);
        value(lo) + (h - lo as f64) * (value(hi) - value(lo))
    };
    Stats {
        count: n as u64,
        mean: Some(sum / n as f64),
        min: Some(min),
        max: Some(max),
        p50: Some(quantile(QS[0])),
        p90: Some(quantile(QS[1])),
        p95: Some(quantile(QS[2])),
        p99: Some(quantile(QS[3])),
        p99_9: Some(quantile(QS[4])),
    }
}

/// Statistics of an ascending sample.
pub fn summarize_sorted(sorted: &[f64]) -> Stats {
    let n = sorted.len();
    if n == 0 {
        return Stats::default();
    }
    let mean = sorted.iter().sum::<f64>() / n as f64;
    Stats {
        count: n as u64,
        mean: Some(mean),
        min: Some(sorted[0]),
        max: Some(sorted[n - 1]),
        p50: quantile_sorted(sorted, 0.50),
        p90: quantile_sorted(sorted, 0.90),
        p95: quantile_sorted(sorted, 0.95),
        p99: quantile_sorted(sorted, 0.99),
        p99_9: quantile_sorted(sorted, 0.999),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linear_interpolation() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), Some(2.5));
        assert_eq!(quantile_sorted(&v, 0.0), Some(1.0));
        assert_eq!(quantile_sorted(&v, 1.0), Some(4.0));
        // h = 3 * 0.9 = 2.7 -> 3 + 0.7 * 1
        assert!((quantile_sorted(&v, 0.9).unwrap() - 3.7).abs() < 1e-12);
        assert_eq!(quantile_sorted(&[], 0.5), None);
        assert_eq!(quantile_sorted(&[7.0], 0.99), Some(7.0));
    }

    #[test]
    fn summary() {
        let mut v: Vec<f64> = (1..=101).rev().map(f64::from).collect();
        let s = summarize(&mut v);
        assert_eq!(s.count, 101);
        assert_eq!(s.mean, Some(51.0));
        assert_eq!(s.min, Some(1.0));
        assert_eq!(s.max, Some(101.0));
        assert_eq!(s.p50, Some(51.0));
        assert_eq!(s.p90, Some(91.0));
        assert_eq!(s.p99, Some(100.0));
        assert!((s.p99_9.unwrap() - 100.9).abs() < 1e-9);
        assert_eq!(summarize(&mut []), Stats::default());
    }

    #[test]
    fn selection_matches_sorting_on_large_samples() {
        // A scrambled sample larger than the selection threshold, with ties.
        let n = SELECT_ABOVE * 3 + 17;
        let mut v: Vec<f64> = (0..n as u64)
            .map(|i| ((i * 2_654_435_761) % 100_003) as f64 / 7.0)
            .collect();
        let mut sorted = v.clone();
        sorted.sort_unstable_by(f64::total_cmp);
        let want = summarize_sorted(&sorted);
        let got = summarize(&mut v);
        assert_eq!(got.count, want.count);
        for (a, b) in [
            (got.p50, want.p50),
            (got.p90, want.p90),
            (got.p95, want.p95),
            (got.p99, want.p99),
            (got.p99_9, want.p99_9),
            (got.min, want.min),
            (got.max, want.max),
        ] {
            assert_eq!(a, b);
        }
        assert!((got.mean.unwrap() - want.mean.unwrap()).abs() < 1e-6);
    }
}
