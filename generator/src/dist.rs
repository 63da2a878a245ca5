//! Length distributions and arrival processes, exactly as documented on
//! [`formats::LengthDist`] and [`formats::Arrival`].
//!
//! * `fixed`: `value`.
//! * `uniform`: an integer in `[lo, hi]`, each value with probability `1/(hi-lo+1)`.
//! * `exponential`: `min(round(x), cap)` with `x ~ Exp(mean)`.
//! * `capped_exponential`: draw `x ~ Exp(mean)` until `round(x) <= cap` (the original
//!   benchmark's "keep only samples <= cap"); the accepted `round(x)` is used.
//! * every variant then applies `max(n, floor)`.
//!
//! `round` is round-half-away-from-zero (`f64::round`). Arrivals are integer
//! nanoseconds after the trace start, computed up front:
//! * `burst`: all 0;
//! * `constant`: request `i` at `round(i * 1e9 / rate)`;
//! * `poisson`: request 0 at 0, then each gap `round(x * 1e9)` with `x ~ Exp(1/rate)`,
//!   accumulated in integers (no float drift);
//! * `gamma`: the same with `x ~ Gamma(shape = burstiness, scale = 1/(rate*burstiness))`
//!   (mean `1/rate`, squared coefficient of variation `1/burstiness`).

use formats::{Arrival, LengthDist};

use crate::error::{GenError, Result};
use crate::rng::StreamRng;

/// Draws one length from `dist` (validated beforehand).
pub fn sample_length(dist: &LengthDist, rng: &mut StreamRng) -> u32 {
    let n = match *dist {
        LengthDist::Fixed { value, .. } => value,
        LengthDist::Uniform { lo, hi, .. } => rng.range_inclusive(lo, hi),
        LengthDist::Exponential { mean, cap, .. } => {
            let r = rng.exponential(mean).round();
            if r >= f64::from(cap) { cap } else { r as u32 }
        }
        LengthDist::CappedExponential { mean, cap, .. } => loop {
            let r = rng.exponential(mean).round();
            if r <= f64::from(cap) {
                break r as u32;
            }
        },
    };
    n.max(dist.floor())
}

/// Nanoseconds of a non-negative duration in seconds, rounded; `None` if it does not fit.
pub(crate) fn secs_to_ns(secs: f64) -> Option<u64> {
    let ns = (secs * 1e9).round();
    // 2^64 as f64 is exact; anything at or above it does not fit.
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&ns)
        .then_some(ns as u64)
}

/// An arrival offset divided by a time scale (`--time-scale`), rounded; `None` when
/// it does not fit 64-bit nanoseconds (about 584 years): a tiny scale such as 1e-300
/// must be an error, not a saturated arrival time.
pub(crate) fn scale_ns(ns: u64, time_scale: f64) -> Option<u64> {
    if time_scale == 1.0 {
        return Some(ns);
    }
    let x = (ns as f64 / time_scale).round();
    (0.0..18_446_744_073_709_551_616.0)
        .contains(&x)
        .then_some(x as u64)
}

/// The error of an arrival that [`scale_ns`] cannot scale, at `line` of `path`.
pub(crate) fn scale_overflow(path: &std::path::Path, line: usize, time_scale: f64) -> GenError {
    GenError::BadRow {
        path: path.to_path_buf(),
        line,
        message: format!(
            "--time-scale {} puts this arrival beyond 64-bit nanoseconds (about 584 years); use a larger --time-scale",
            formats::readable(time_scale)
        ),
    }
}

/// Arrival offsets of `n` requests, non-decreasing, in nanoseconds.
pub fn arrivals(arrival: &Arrival, n: u64, rng: &mut StreamRng) -> Result<Vec<u64>> {
    let overflow = || {
        GenError::InvalidSpec(format!(
            "arrival offsets of {n} requests overflow 584 years; raise the rate"
        ))
    };
    let mut out = Vec::with_capacity(n as usize);
    match *arrival {
        Arrival::Burst => out.resize(n as usize, 0),
        Arrival::Constant { rate } => {
            for i in 0..n {
                out.push(secs_to_ns(i as f64 / rate).ok_or_else(overflow)?);
            }
        }
        Arrival::Poisson { rate } | Arrival::Gamma { rate, .. } => {
            let mut t: u64 = 0;
            for i in 0..n {
                if i > 0 {
                    let gap = match *arrival {
                        Arrival::Gamma { burstiness, .. } => {
                            rng.gamma(burstiness, 1.0 / (rate * burstiness))
                        }
                        _ => rng.exponential(1.0 / rate),
                    };
                    let gap = secs_to_ns(gap).ok_or_else(overflow)?;
                    t = t.checked_add(gap).ok_or_else(overflow)?;
                }
                out.push(t);
            }
        }
    }
    Ok(out)
}

/// The exact mean of `capped_exponential` after the floor: `round(x)` takes value `k`
/// with probability `P(k - 1/2 <= x < k + 1/2)` (from 0 for `k = 0`), renormalised over
/// `0..=cap`. Used by tests and by `llmib trace inspect` users to check a trace.
pub fn capped_exponential_mean(mean: f64, cap: u32, floor: u32) -> f64 {
    let cdf = |x: f64| {
        if x <= 0.0 {
            0.0
        } else {
            1.0 - (-x / mean).exp()
        }
    };
    let total = cdf(f64::from(cap) + 0.5);
    (0..=cap)
        .map(|k| {
            let k = f64::from(k);
            let p = cdf(k + 0.5) - cdf(k - 0.5);
            k.max(f64::from(floor)) * p
        })
        .sum::<f64>()
        / total
}

/// The exact mean of the clipped `exponential` after the floor.
pub fn clipped_exponential_mean(mean: f64, cap: u32, floor: u32) -> f64 {
    let cdf = |x: f64| {
        if x <= 0.0 {
            0.0
        } else {
            1.0 - (-x / mean).exp()
        }
    };
    let below: f64 = (0..cap)
        .map(|k| {
            let k = f64::from(k);
            k.max(f64::from(floor)) * (cdf(k + 0.5) - cdf(k - 0.5))
        })
        .sum();
    below + f64::from(cap.max(floor)) * (1.0 - cdf(f64::from(cap) - 0.5))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, SeedKey};

    fn rng(seed: u64) -> StreamRng {
        SeedKey::new(seed).stream(Purpose::OutputLengths)
    }

    fn mean_sd(xs: &[f64]) -> (f64, f64) {
        let n = xs.len() as f64;
        let m = xs.iter().sum::<f64>() / n;
        let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
        (m, v.sqrt())
    }

    #[test]
    fn capped_exponential_mean_matches_analytic_value() {
        let n = 200_000;
        for (mean, cap, floor) in [
            (128.0, 32, 1),
            (128.0, 128, 1),
            (128.0, 512, 1),
            (128.0, 1536, 1),
            (128.0, 128, 40),
        ] {
            let d = LengthDist::CappedExponential { mean, cap, floor };
            let mut r = rng(cap as u64 + floor as u64);
            let xs: Vec<f64> = (0..n)
                .map(|_| f64::from(sample_length(&d, &mut r)))
                .collect();
            assert!(
                xs.iter()
                    .all(|&x| x <= f64::from(cap) && x >= f64::from(floor))
            );
            let (m, sd) = mean_sd(&xs);
            let want = capped_exponential_mean(mean, cap, floor);
            let se = sd / (n as f64).sqrt();
            assert!(
                (m - want).abs() < 5.0 * se,
                "cap {cap} floor {floor}: mean {m} vs analytic {want} (se {se})"
            );
        }
        // Sanity of the analytic formula itself: cap 32 truncation pulls the mean to ~15.
        let m = capped_exponential_mean(128.0, 32, 1);
        assert!((15.0..16.5).contains(&m), "{m}");
        // A huge cap leaves the exponential mean (plus the floor's small lift).
        assert!((capped_exponential_mean(128.0, 100_000, 0) - 128.0).abs() < 0.01);
    }

    #[test]
    fn clipped_exponential_mean_matches_analytic_value() {
        let n = 200_000;
        let d = LengthDist::Exponential {
            mean: 100.0,
            cap: 150,
            floor: 5,
        };
        let mut r = rng(9);
        let xs: Vec<f64> = (0..n)
            .map(|_| f64::from(sample_length(&d, &mut r)))
            .collect();
        let at_cap = xs.iter().filter(|&&x| x == 150.0).count() as f64 / n as f64;
        assert!(
            (at_cap - (-149.5f64 / 100.0).exp()).abs() < 0.005,
            "{at_cap}"
        );
        let (m, sd) = mean_sd(&xs);
        let want = clipped_exponential_mean(100.0, 150, 5);
        assert!(
            (m - want).abs() < 5.0 * sd / (n as f64).sqrt(),
            "{m} vs {want}"
        );
    }

    #[test]
    fn uniform_covers_its_whole_range_evenly() {
        let d = LengthDist::Uniform {
            lo: 1,
            hi: 512,
            floor: 1,
        };
        let mut r = rng(2);
        let mut counts = vec![0u32; 513];
        for _ in 0..512 * 200 {
            counts[sample_length(&d, &mut r) as usize] += 1;
        }
        assert_eq!(counts[0], 0);
        assert!(
            counts[1..].iter().all(|&c| c > 120 && c < 290),
            "uneven: {:?}",
            &counts[..8]
        );
        // The floor lifts the low end onto itself.
        let d = LengthDist::Uniform {
            lo: 0,
            hi: 9,
            floor: 5,
        };
        let xs: Vec<u32> = (0..1000).map(|_| sample_length(&d, &mut r)).collect();
        assert!(xs.iter().all(|&x| (5..=9).contains(&x)));
        let fives = xs.iter().filter(|&&x| x == 5).count();
        assert!((520..680).contains(&fives), "{fives}");
    }

    #[test]
    fn fixed_is_fixed() {
        let d = LengthDist::Fixed {
            value: 512,
            floor: 1,
        };
        let mut r = rng(2);
        assert!((0..100).all(|_| sample_length(&d, &mut r) == 512));
    }

    #[test]
    fn poisson_gaps_average_one_over_rate() {
        for rate in [1.0, 4.0, 8.0] {
            let n = 100_000u64;
            let mut r = SeedKey::new(rate as u64).stream(Purpose::Arrivals);
            let a = arrivals(&Arrival::Poisson { rate }, n, &mut r).unwrap();
            assert_eq!(a[0], 0);
            let gaps: Vec<f64> = a.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
            let (m, sd) = mean_sd(&gaps);
            let se = sd / (gaps.len() as f64).sqrt();
            assert!(
                (m - 1.0 / rate).abs() < 5.0 * se,
                "rate {rate}: mean gap {m}"
            );
            // Exponential: sd = mean.
            assert!((sd * rate - 1.0).abs() < 0.02, "rate {rate}: sd {sd}");
        }
    }

    #[test]
    fn gamma_gaps_have_the_requested_burstiness() {
        let (rate, b) = (4.0, 0.25);
        let n = 200_000u64;
        let mut r = SeedKey::new(11).stream(Purpose::Arrivals);
        let a = arrivals(
            &Arrival::Gamma {
                rate,
                burstiness: b,
            },
            n,
            &mut r,
        )
        .unwrap();
        let gaps: Vec<f64> = a.windows(2).map(|w| (w[1] - w[0]) as f64 / 1e9).collect();
        let (m, sd) = mean_sd(&gaps);
        assert!((m * rate - 1.0).abs() < 0.02, "mean gap {m}");
        let cv2 = (sd / m) * (sd / m);
        assert!((cv2 - 1.0 / b).abs() < 0.2, "cv^2 {cv2}");
    }

    #[test]
    fn constant_and_burst() {
        let mut r = rng(0);
        let a = arrivals(&Arrival::Constant { rate: 3.0 }, 4, &mut r).unwrap();
        assert_eq!(a, vec![0, 333_333_333, 666_666_667, 1_000_000_000]);
        assert_eq!(arrivals(&Arrival::Burst, 3, &mut r).unwrap(), vec![0, 0, 0]);
    }

    #[test]
    fn overflowing_arrivals_are_an_error() {
        let mut r = rng(0);
        assert!(arrivals(&Arrival::Constant { rate: 1e-12 }, 100, &mut r).is_err());
    }
}
