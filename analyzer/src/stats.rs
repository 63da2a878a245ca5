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

/// Statistics of a sample (sorted in place). NaN values must not be present.
pub fn summarize(values: &mut [f64]) -> Stats {
    if values.is_empty() {
        return Stats::default();
    }
    values.sort_unstable_by(f64::total_cmp);
    summarize_sorted(values)
}

/// Statistics of an ascending sample.
pub fn summarize_sorted(sorted: &[f64]) -> Stats {
    let n = sorted.len();
    if n == 0 {
        return Stats::default();
    }
    // Kahan-free but pairwise-stable enough: f64 sum of up to 1e8 values of similar size.
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
}
