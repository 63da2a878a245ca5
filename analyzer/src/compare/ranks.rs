//! The two rank tests `llmib compare` reports a p-value from: Wilcoxon's signed-rank
//! test for paired runs (the per-request differences of one trace replayed twice) and
//! the Mann–Whitney U test for unpaired ones, two-sided, as SciPy computes them (the
//! tests check SciPy 1.17's values for fixed samples).
//!
//! Written here because no well-kept Rust crate has them; the normal distribution they
//! end in is `statrs`'. Conventions (SciPy's defaults):
//! * signed-rank: zero differences are dropped (`zero_method="wilcox"`); ties share the
//!   average rank; **exact** (the distribution of the rank sum over all 2^n sign
//!   patterns) when at most [`EXACT_MAX_N`] differences remain, none tied and none
//!   dropped; otherwise the **normal approximation** with the tie correction of the
//!   variance, `n(n+1)(2n+1)/24 - sum(t^3 - t)/48`, no continuity correction;
//! * Mann–Whitney: `U` of the first sample, ties share the average rank; **exact** (the
//!   distribution of `U` over all orderings) when neither sample has more than
//!   [`EXACT_MAX_MW`] values and none is tied; otherwise the normal approximation with the
//!   tie-corrected variance `n1 n2/12 ((n+1) - sum(t^3 - t)/(n(n-1)))` and a continuity
//!   correction of 0.5.

use statrs::distribution::{ContinuousCDF, Normal};

/// Largest sample the signed-rank test computes exactly (SciPy's bound).
pub const EXACT_MAX_N: usize = 50;
/// Largest sample size on either side the U test computes exactly.
pub const EXACT_MAX_MW: usize = 20;

/// How a p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Exact,
    Normal,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Exact => "exact",
            Method::Normal => "normal approximation",
        }
    }
}

/// A two-sided rank test's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct RankTest {
    /// Signed-rank: `min(R+, R-)`; Mann–Whitney: `U` of the first sample.
    pub statistic: f64,
    pub p_value: f64,
    pub method: Method,
    /// Observations the test used (signed-rank: the non-zero differences).
    pub n: usize,
}

/// Average ranks (1-based) of `v` and the sizes of its groups of ties.
fn ranks(v: &[f64]) -> (Vec<f64>, Vec<usize>) {
    let mut order: Vec<usize> = (0..v.len()).collect();
    order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut ties = Vec::new();
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && v[order[j]] == v[order[i]] {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0; // ranks i+1..=j
        for &k in &order[i..j] {
            r[k] = avg;
        }
        if j - i > 1 {
            ties.push(j - i);
        }
        i = j;
    }
    (r, ties)
}

fn tie_sum(ties: &[usize]) -> f64 {
    ties.iter().map(|&t| (t * t * t - t) as f64).sum()
}

fn normal_two_sided(z: f64) -> f64 {
    let n = Normal::standard();
    (2.0 * n.cdf(-z.abs())).min(1.0)
}

/// Wilcoxon's signed-rank test of paired differences `d` (B − A) against a median of 0.
/// `None` when no difference is non-zero.
pub fn signed_rank(d: &[f64]) -> Option<RankTest> {
    let nonzero: Vec<f64> = d.iter().copied().filter(|x| *x != 0.0).collect();
    let n = nonzero.len();
    if n == 0 {
        return None;
    }
    let abs: Vec<f64> = nonzero.iter().map(|x| x.abs()).collect();
    let (r, ties) = ranks(&abs);
    let r_plus: f64 = (nonzero.iter().zip(&r))
        .filter(|(x, _)| **x > 0.0)
        .map(|(_, r)| r)
        .sum();
    let total = (n * (n + 1)) as f64 / 2.0;
    let statistic = r_plus.min(total - r_plus);
    let exact = n <= EXACT_MAX_N && ties.is_empty() && n == d.len();
    let p_value = if exact {
        signed_rank_exact(n, statistic as usize)
    } else {
        let mean = total / 2.0;
        let var = (n * (n + 1) * (2 * n + 1)) as f64 / 24.0 - tie_sum(&ties) / 48.0;
        if var <= 0.0 {
            1.0
        } else {
            normal_two_sided((statistic - mean) / var.sqrt())
        }
    };
    Some(RankTest {
        statistic,
        p_value,
        method: if exact { Method::Exact } else { Method::Normal },
        n,
    })
}

/// Two-sided exact p-value of a signed-rank statistic `w` (the smaller rank sum) with
/// `n` untied differences: `2 P(W <= w)`, from the counts of every rank sum over the
/// 2^n sign patterns.
fn signed_rank_exact(n: usize, w: usize) -> f64 {
    let max = n * (n + 1) / 2;
    let mut counts = vec![0.0f64; max + 1];
    counts[0] = 1.0;
    for k in 1..=n {
        for s in (k..=max).rev() {
            counts[s] += counts[s - k];
        }
    }
    let total = 2f64.powi(n as i32);
    let below: f64 = counts[..=w.min(max)].iter().sum();
    (2.0 * below / total).min(1.0)
}

/// The Mann–Whitney U test of `a` against `b`. `None` when either is empty.
pub fn mann_whitney(a: &[f64], b: &[f64]) -> Option<RankTest> {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return None;
    }
    let all: Vec<f64> = a.iter().chain(b).copied().collect();
    let (r, ties) = ranks(&all);
    let r1: f64 = r[..n1].iter().sum();
    let u1 = r1 - (n1 * (n1 + 1)) as f64 / 2.0;
    let mean = (n1 * n2) as f64 / 2.0;
    let exact = n1 <= EXACT_MAX_MW && n2 <= EXACT_MAX_MW && ties.is_empty();
    let p_value = if exact {
        mann_whitney_exact(n1, n2, u1.max(2.0 * mean - u1) as usize)
    } else {
        let n = (n1 + n2) as f64;
        let var = (n1 * n2) as f64 / 12.0 * ((n + 1.0) - tie_sum(&ties) / (n * (n - 1.0)));
        if var <= 0.0 {
            1.0
        } else {
            let u = u1.max(2.0 * mean - u1);
            normal_two_sided((u - mean - 0.5) / var.sqrt())
        }
    };
    Some(RankTest {
        statistic: u1,
        p_value,
        method: if exact { Method::Exact } else { Method::Normal },
        n: n1 + n2,
    })
}

/// Two-sided exact p-value of `U = u` (the larger of the two `U`s): `2 P(U >= u)`, from
/// the number of orderings of `n1` and `n2` untied values giving each `U`.
fn mann_whitney_exact(n1: usize, n2: usize, u: usize) -> f64 {
    let max = n1 * n2;
    // counts[j][s]: orderings of i values of the first sample and j of the second with
    // U = s, built up one value at a time (a new first-sample value above j others).
    let mut prev: Vec<Vec<f64>> = (0..=n2)
        .map(|_| {
            let mut v = vec![0.0; max + 1];
            v[0] = 1.0;
            v
        })
        .collect();
    for _ in 1..=n1 {
        let mut next = vec![vec![0.0; max + 1]; n2 + 1];
        for j in 0..=n2 {
            for s in 0..=max {
                let mut c = if s >= j { prev[j][s - j] } else { 0.0 };
                if j > 0 {
                    c += next[j - 1][s];
                }
                next[j][s] = c;
            }
        }
        prev = next;
    }
    let counts = &prev[n2];
    let total: f64 = counts.iter().sum();
    let above: f64 = counts[u.min(max)..].iter().sum();
    (2.0 * above / total).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * b.abs().max(1e-12)
    }

    /// R's `wilcox.test(x, y, paired = TRUE)` example (Hollander & Wolfe), values from
    /// SciPy 1.17: `wilcoxon(x - y, method="exact")` and `"asymptotic"`.
    const X: [f64; 9] = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30];
    // 3.14 is a measurement here, not pi.
    #[allow(clippy::approx_constant)]
    const Y: [f64; 9] = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29];

    #[test]
    fn signed_rank_matches_scipy_exact_and_normal() {
        let d: Vec<f64> = X.iter().zip(&Y).map(|(x, y)| x - y).collect();
        let t = signed_rank(&d).unwrap();
        assert_eq!((t.statistic, t.method, t.n), (5.0, Method::Exact, 9));
        assert!(close(t.p_value, 0.0390625), "{t:?}");
        // The same sample above the exact bound's conditions: a tie forces the normal
        // approximation; SciPy's asymptotic value for the untied sample checks the
        // formula itself.
        let mean = 9.0 * 10.0 / 4.0;
        let sd = (9.0f64 * 10.0 * 19.0 / 24.0).sqrt();
        assert!(close(
            normal_two_sided((5.0 - mean) / sd),
            0.038151710173415135
        ));
    }

    /// Ties and zeros (SciPy: `wilcoxon(d, method="asymptotic", zero_method="wilcox")`).
    #[test]
    fn signed_rank_with_ties_and_zeros_matches_scipy() {
        let d = [1., 2., 2., -1., 3., 0., 4., -2., 5., 5., -3., 6., 0., 2.];
        let t = signed_rank(&d).unwrap();
        assert_eq!((t.statistic, t.method, t.n), (13.5, Method::Normal, 12));
        assert!(close(t.p_value, 0.044382298714259895), "{t:?}");
        assert_eq!(signed_rank(&[0.0, 0.0]), None);
    }

    /// 60 differences (SciPy asymptotic: 794.5, p 0.375021718859592).
    #[test]
    fn signed_rank_of_a_larger_sample_matches_scipy() {
        let d = [
            0.3, 0.6, 0.03, -0.59, -0.15, -0.69, 0.36, 1.64, -0.19, -0.32, 0.79, 0.66, 0.41, -0.63,
            0.27, 1.0, -1.04, -0.16, -1.6, -0.99, -1.54, 0.06, -0.97, 0.57, 0.46, 0.11, -2.22,
            -0.24, 0.25, 0.41, -1.23, -0.18, -0.68, -0.51, 1.36, -0.51, 0.27, 1.18, -0.28, 0.19,
            0.41, 0.36, -0.93, 0.38, 1.66, -1.25, 1.16, 0.42, -0.34, 2.3, 1.06, -0.9, 0.37, 0.88,
            0.11, 0.98, 0.23, 0.97, 1.74, -0.38,
        ];
        let t = signed_rank(&d).unwrap();
        assert_eq!((t.statistic, t.method), (794.5, Method::Normal));
        assert!(close(t.p_value, 0.375021718859592), "{t:?}");
    }

    /// R's `wilcox.test(x, y)` example; SciPy `mannwhitneyu(a, b, method="exact")`:
    /// U 35, p 0.2544122544122544; the normal approximation of the same (with
    /// continuity): 0.24462360512698333.
    #[test]
    fn mann_whitney_matches_scipy_exact_and_normal() {
        let a = [0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46];
        let b = [1.15, 0.88, 0.90, 0.74, 1.21];
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!((t.statistic, t.method), (35.0, Method::Exact));
        assert!(close(t.p_value, 0.2544122544122544), "{t:?}");
        let sd = (10.0f64 * 5.0 / 12.0 * 16.0).sqrt();
        assert!(close(
            normal_two_sided((35.0 - 25.0 - 0.5) / sd),
            0.24462360512698333
        ));
    }

    /// Ties (SciPy asymptotic: U 33, p 0.014929128911705957).
    #[test]
    fn mann_whitney_with_ties_matches_scipy() {
        let a = [1., 2., 2., 3., 3., 3., 4., 5., 6., 7., 7., 8.];
        let b = [3., 4., 4., 5., 6., 6., 7., 8., 8., 9., 9., 10., 11.];
        let t = mann_whitney(&a, &b).unwrap();
        assert_eq!((t.statistic, t.method), (33.0, Method::Normal));
        assert!(close(t.p_value, 0.014929128911705957), "{t:?}");
        assert_eq!(mann_whitney(&[], &b), None);
    }

    #[test]
    fn the_normal_tail_is_statrs_and_right() {
        assert!(close(Normal::standard().cdf(-1.96), 0.024997895148220435));
    }
}
