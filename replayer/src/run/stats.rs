//! Live counters for the progress bar and exact percentiles for the summary.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters updated by request tasks, read by the progress bar.
#[derive(Debug, Default)]
pub(crate) struct LiveStats {
    pub sent: AtomicU64,
    pub done: AtomicU64,
    pub errors: AtomicU64,
    pub in_flight: AtomicU64,
    pub tokens: AtomicU64,
    /// Dispatch lateness histogram (see [`bucket`]).
    lateness: Box<[AtomicU64]>,
}

const SUB: u32 = 16;
const BUCKETS: usize = 64 * SUB as usize;

/// Log-linear bucket of a nanosecond value: 16 sub-buckets per power of two, so a
/// percentile read from the histogram is within about 6% of the true value.
fn bucket(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= 4
    let sub = (v >> (exp - 4)) & (SUB as u64 - 1);
    ((exp - 3) * SUB) as usize + sub as usize
}

fn bucket_high(i: usize) -> u64 {
    if i < SUB as usize {
        return i as u64;
    }
    let exp = (i as u32 / SUB) + 3;
    let sub = (i as u32 % SUB) as u64;
    ((SUB as u64 + sub + 1) << (exp - 4)) - 1
}

impl LiveStats {
    pub fn new() -> Self {
        LiveStats {
            lateness: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            ..LiveStats::default()
        }
    }

    pub fn record_lateness(&self, ns: u64) {
        if let Some(b) = self.lateness.get(bucket(ns)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Approximate percentile (upper bucket bound) of the lateness so far.
    pub fn lateness_quantile(&self, q: f64) -> Option<u64> {
        let counts: Vec<u64> = self
            .lateness
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_high(i));
            }
        }
        None
    }
}

/// Nearest-rank percentile of sorted values.
pub(crate) fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Human form of a nanosecond duration.
pub fn fmt_ns(ns: u64) -> String {
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} us", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_and_bound() {
        let mut last = 0;
        for v in [
            0u64,
            1,
            15,
            16,
            17,
            100,
            1_000,
            123_456,
            10_000_000_000,
            u64::MAX / 2,
        ] {
            let b = bucket(v);
            assert!(b < BUCKETS);
            assert!(b >= last);
            last = b;
            assert!(bucket_high(b) >= v, "{v}");
            assert!(bucket_high(b) as f64 <= v as f64 * 1.07 + 1.0, "{v}");
        }
        let s = LiveStats::new();
        for v in 1..=100u64 {
            s.record_lateness(v * 1000);
        }
        let p50 = s.lateness_quantile(0.5).unwrap();
        assert!((50_000..=54_000).contains(&p50), "{p50}");
    }

    #[test]
    fn nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 50);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&v, 1.0), 100);
        assert_eq!(percentile(&[], 0.5), 0);
    }
}
