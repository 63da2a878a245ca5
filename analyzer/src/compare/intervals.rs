//! Confidence intervals of a difference between two sides: the bootstrap over requests
//! (paired: pairs resampled together; unpaired: each side on its own) for a statistic
//! of per-request values, and Welch's t-interval for run-level numbers (throughput,
//! goodput) with several runs per side.
//!
//! The bootstrap is the **percentile** method (the interval is the alpha/2 and 1 - alpha/2
//! quantiles of the resampled relative differences): simple, transformation-respecting
//! (a relative difference is a ratio), and honest about skewed latency tails; BCa would
//! correct its bias at the cost of a jackknife over hundreds of requests per statistic.
//! Seeded (ChaCha8, `seed`), so the same logs give the same interval everywhere.
//!
//! Requests of one run are not independent: those in flight together share the
//! engine's batches, so a slow step slows all of them, and their differences move
//! together. Resampling requests one by one then under-states the noise (measured
//! against `llmib sim`: the spread of A/A differences across pairs of runs was 1.4 times
//! the bootstrap's standard error). The bootstrap therefore resamples **blocks** of
//! requests consecutive in arrival order (the circular block bootstrap of Politis and
//! Romano, 1992: a block starts at any request with equal probability and wraps around
//! the end, so every request is drawn equally often), `block` requests long; `block` 1
//! is the ordinary bootstrap. How `llmib compare` chooses the length: `compare/mod.rs`.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::stats::quantile_sorted;

/// A statistic of a sample (the sample may be reordered).
pub type Statistic = fn(&mut [f64]) -> Option<f64>;

/// An interval of a relative difference `B / A - 1`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    /// The interval holds 0: no difference detected at its level.
    pub fn holds_zero(&self) -> bool {
        self.lo <= 0.0 && 0.0 <= self.hi
    }
}

/// The bootstrap's outcome: the percentile interval and the resamples' standard
/// deviation of the relative difference (what the smallest detectable difference is
/// made of).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    pub interval: Interval,
    pub std_error: f64,
    pub resamples: u32,
}

/// How the bootstrap draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resampling {
    /// Resample the index `i` of `(a[i], b[i])` (same length), else each side alone.
    pub paired: bool,
    /// Block length in requests (1: requests one by one); values are in arrival order.
    pub block: usize,
    pub resamples: u32,
    /// The interval's level is `1 - alpha`.
    pub alpha: f64,
    pub seed: u64,
}

/// Fills `idx` with `n` indices of a circular block resample: blocks of `block`
/// consecutive indices (wrapping past `n - 1` to 0), each starting anywhere.
fn draw_blocks(rng: &mut ChaCha8Rng, n: usize, block: usize, idx: &mut Vec<usize>) {
    idx.clear();
    let block = block.clamp(1, n);
    while idx.len() < n {
        let start = rng.random_range(0..n);
        let len = block.min(n - idx.len());
        idx.extend((start..start + len).map(|i| i % n));
    }
}

/// Percentile bootstrap of `stat(b) / stat(a) - 1` over `how.resamples` resamples.
/// `None` when a side is empty or its statistic is 0 or undefined in too many resamples.
pub fn bootstrap(a: &[f64], b: &[f64], stat: Statistic, how: Resampling) -> Option<Bootstrap> {
    let Resampling {
        paired,
        block,
        resamples,
        alpha,
        seed,
    } = how;
    if a.is_empty() || b.is_empty() || (paired && a.len() != b.len()) || resamples == 0 {
        return None;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let (mut ra, mut rb) = (vec![0.0; a.len()], vec![0.0; b.len()]);
    let (mut ia, mut ib) = (Vec::with_capacity(a.len()), Vec::with_capacity(b.len()));
    let mut diffs = Vec::with_capacity(resamples as usize);
    for _ in 0..resamples {
        draw_blocks(&mut rng, a.len(), block, &mut ia);
        if paired {
            for (k, &i) in ia.iter().enumerate() {
                (ra[k], rb[k]) = (a[i], b[i]);
            }
        } else {
            draw_blocks(&mut rng, b.len(), block, &mut ib);
            ra.iter_mut().zip(&ia).for_each(|(x, &i)| *x = a[i]);
            rb.iter_mut().zip(&ib).for_each(|(x, &i)| *x = b[i]);
        }
        if let (Some(sa), Some(sb)) = (stat(&mut ra), stat(&mut rb))
            && sa != 0.0
        {
            diffs.push(sb / sa - 1.0);
        }
    }
    if diffs.len() < resamples as usize / 2 {
        return None;
    }
    diffs.sort_by(f64::total_cmp);
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let var =
        diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (diffs.len() - 1).max(1) as f64;
    Some(Bootstrap {
        interval: Interval {
            lo: quantile_sorted(&diffs, alpha / 2.0)?,
            hi: quantile_sorted(&diffs, 1.0 - alpha / 2.0)?,
        },
        std_error: var.sqrt(),
        resamples,
    })
}

/// Welch's t-interval of `mean(b) - mean(a)` at level `1 - alpha` (unequal variances,
/// Welch–Satterthwaite degrees of freedom), and its two-sided p-value. `None` with fewer
/// than two runs on a side or no spread at all.
pub fn welch(a: &[f64], b: &[f64], alpha: f64) -> Option<Welch> {
    let (na, nb) = (a.len() as f64, b.len() as f64);
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let var =
        |v: &[f64], m: f64| v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64;
    let (ma, mb) = (mean(a), mean(b));
    let (va, vb) = (var(a, ma) / na, var(b, mb) / nb);
    let se = (va + vb).sqrt();
    if se == 0.0 {
        return None;
    }
    let df = (va + vb).powi(2) / (va * va / (na - 1.0) + vb * vb / (nb - 1.0));
    let t = StudentsT::new(0.0, 1.0, df).ok()?;
    let q = t.inverse_cdf(1.0 - alpha / 2.0);
    let diff = mb - ma;
    Some(Welch {
        diff,
        lo: diff - q * se,
        hi: diff + q * se,
        df,
        p_value: (2.0 * t.cdf(-(diff / se).abs())).min(1.0),
    })
}

/// Welch's interval of a difference of means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Welch {
    /// mean(b) - mean(a).
    pub diff: f64,
    pub lo: f64,
    pub hi: f64,
    pub df: f64,
    pub p_value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn median(v: &mut [f64]) -> Option<f64> {
        v.sort_by(f64::total_cmp);
        quantile_sorted(v, 0.5)
    }

    fn how(paired: bool, block: usize, resamples: u32, seed: u64) -> Resampling {
        Resampling {
            paired,
            block,
            resamples,
            alpha: 0.05,
            seed,
        }
    }

    /// SciPy 1.17: `ttest_ind(b, a, equal_var=False)`: p 0.014427847227658639, 95%
    /// interval (3.2290689083608193, 16.104264424972495), df 3.8585152838427943.
    #[test]
    fn welch_matches_scipy() {
        let w = welch(&[100.0, 104.0, 98.0], &[110.0, 108.0, 113.0], 0.05).unwrap();
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9 * b.abs();
        assert!(close(w.diff, 29.0 / 3.0), "{w:?}");
        assert!(close(w.df, 3.8585152838427943), "{w:?}");
        assert!(close(w.lo, 3.2290689083608193), "{w:?}");
        assert!(close(w.hi, 16.104264424972495), "{w:?}");
        assert!(close(w.p_value, 0.014427847227658639), "{w:?}");
        assert_eq!(welch(&[1.0], &[2.0, 3.0], 0.05), None);
    }

    /// B is A slowed by 10% plus noise shared by the pair: the paired interval holds
    /// +10% and is much narrower than the unpaired one, which resamples the shared
    /// noise too. Seeded: the same interval twice.
    #[test]
    fn the_paired_bootstrap_is_tight_around_a_true_difference() {
        let a: Vec<f64> = (0..400)
            .map(|i| 1.0 + ((i * 7919) % 1000) as f64 / 250.0)
            .collect();
        let b: Vec<f64> = a
            .iter()
            .enumerate()
            .map(|(i, x)| x * 1.10 + ((i % 7) as f64 - 3.0) * 1e-3)
            .collect();
        let paired = bootstrap(&a, &b, median, how(true, 1, 1000, 1)).unwrap();
        let unpaired = bootstrap(&a, &b, median, how(false, 1, 1000, 1)).unwrap();
        assert!(
            paired.interval.lo < 0.10 && 0.10 < paired.interval.hi,
            "{paired:?}"
        );
        assert!(!paired.interval.holds_zero());
        let width = |b: &Bootstrap| b.interval.hi - b.interval.lo;
        assert!(
            width(&paired) * 5.0 < width(&unpaired),
            "{paired:?} {unpaired:?}"
        );
        assert_eq!(
            bootstrap(&a, &b, median, how(true, 1, 1000, 1)),
            Some(paired)
        );
        assert_eq!(bootstrap(&[], &b, median, how(false, 1, 10, 1)), None);
    }

    /// A and B drawn alike: the interval holds 0.
    #[test]
    fn alike_sides_give_an_interval_around_zero() {
        let a: Vec<f64> = (0..300).map(|i| ((i * 7919) % 1000) as f64).collect();
        let b: Vec<f64> = (0..300).map(|i| ((i * 104729) % 1000) as f64).collect();
        let u = bootstrap(&a, &b, median, how(false, 1, 1000, 3)).unwrap();
        assert!(u.interval.holds_zero(), "{u:?}");
        assert!(u.std_error > 0.0);
    }

    /// Blocks are runs of consecutive indices that wrap around the end, the last one cut
    /// to fill exactly `n`.
    #[test]
    fn blocks_are_consecutive_and_wrap() {
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut idx = Vec::new();
        for _ in 0..50 {
            draw_blocks(&mut rng, 10, 4, &mut idx);
            assert_eq!(idx.len(), 10);
            for start in [0, 4, 8] {
                let end = (start + 4).min(10);
                for k in start + 1..end {
                    assert_eq!(idx[k], (idx[k - 1] + 1) % 10, "{idx:?}");
                }
            }
        }
        draw_blocks(&mut rng, 3, 100, &mut idx);
        assert_eq!(idx.len(), 3);
    }

    /// Differences that move together in runs of 25 requests (as requests sharing an
    /// engine's batches do): the ordinary bootstrap under-states their noise; blocks of
    /// 25 find the spread of the means of independent runs.
    #[test]
    fn blocks_find_the_noise_of_correlated_requests() {
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let run = |rng: &mut ChaCha8Rng| -> (Vec<f64>, Vec<f64>) {
            let a: Vec<f64> = (0..500).map(|_| 1.0 + rng.random::<f64>()).collect();
            let mut shared = 0.0;
            let b = a
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    if i % 25 == 0 {
                        shared = rng.random::<f64>() - 0.5;
                    }
                    x + 0.2 * shared + 0.01 * (rng.random::<f64>() - 0.5)
                })
                .collect();
            (a, b)
        };
        let mean = |v: &mut [f64]| Some(v.iter().sum::<f64>() / v.len() as f64);
        // The true standard error: the spread of the statistic over independent runs.
        let rels: Vec<f64> = (0..200)
            .map(|_| {
                let (mut a, mut b) = run(&mut rng);
                mean(&mut b).unwrap() / mean(&mut a).unwrap() - 1.0
            })
            .collect();
        let m = rels.iter().sum::<f64>() / rels.len() as f64;
        let true_se =
            (rels.iter().map(|r| (r - m).powi(2)).sum::<f64>() / (rels.len() - 1) as f64).sqrt();
        let (a, b) = run(&mut rng);
        let one = bootstrap(&a, &b, mean, how(true, 1, 2000, 5)).unwrap();
        let blocks = bootstrap(&a, &b, mean, how(true, 25, 2000, 5)).unwrap();
        assert!(one.std_error < 0.5 * true_se, "{one:?} {true_se}");
        assert!(
            (blocks.std_error / true_se - 1.0).abs() < 0.35,
            "{blocks:?} {true_se}"
        );
    }
}
