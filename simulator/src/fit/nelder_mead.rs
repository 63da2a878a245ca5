//! A deterministic Nelder–Mead minimiser (standard coefficients: reflection 1,
//! expansion 2, contraction 0.5, shrink 0.5), for the calibration's few parameters.
//!
//! Why this and not a crate: six parameters, an objective that is a discrete-event
//! simulation (piecewise constant at the scale of one step, so no gradients), and a hard
//! requirement that the same inputs give the same bits on every machine: a fixed
//! sequence of float operations, no randomness, no threads. Sixty lines do it.

/// The best point found and its value, and how many times `f` was evaluated.
#[derive(Debug, Clone, PartialEq)]
pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub evaluations: u32,
}

/// Minimises `f` from `x0`, the first simplex `x0` plus `step[i]` along each axis `i`,
/// until the simplex's values agree within `tol` (absolute) or `max_evals` is reached.
pub fn minimize(
    f: &mut impl FnMut(&[f64]) -> f64,
    x0: &[f64],
    step: &[f64],
    tol: f64,
    max_evals: u32,
) -> Minimum {
    let n = x0.len();
    let mut evals = 0u32;
    let mut eval = |x: &[f64], evals: &mut u32| {
        *evals += 1;
        let v = f(x);
        if v.is_nan() { f64::INFINITY } else { v }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    simplex.push((x0.to_vec(), eval(x0, &mut evals)));
    for i in 0..n {
        let mut x = x0.to_vec();
        x[i] += step[i];
        let v = eval(&x, &mut evals);
        simplex.push((x, v));
    }
    while evals < max_evals {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() <= tol {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|p| p.0[j]).sum::<f64>() / n as f64)
            .collect();
        let towards = |t: f64| -> Vec<f64> {
            (0..n)
                .map(|j| centroid[j] + t * (simplex[n].0[j] - centroid[j]))
                .collect()
        };
        let reflected = towards(-1.0);
        let r = eval(&reflected, &mut evals);
        if r < best {
            let expanded = towards(-2.0);
            let e = eval(&expanded, &mut evals);
            simplex[n] = if e < r { (expanded, e) } else { (reflected, r) };
        } else if r < simplex[n - 1].1 {
            simplex[n] = (reflected, r);
        } else {
            let t = if r < worst { -0.5 } else { 0.5 };
            let contracted = towards(t);
            let c = eval(&contracted, &mut evals);
            if c < r.min(worst) {
                simplex[n] = (contracted, c);
            } else {
                let x0 = simplex[0].0.clone();
                for p in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> = (0..n).map(|j| x0[j] + 0.5 * (p.0[j] - x0[j])).collect();
                    *p = (x.clone(), eval(&x, &mut evals));
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, value) = simplex.swap_remove(0);
    Minimum {
        x,
        value,
        evaluations: evals,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_shifted_bowl() {
        let mut f = |x: &[f64]| (x[0] - 3.0).powi(2) + 10.0 * (x[1] + 1.0).powi(2);
        let m = minimize(&mut f, &[0.0, 0.0], &[1.0, 1.0], 1e-12, 2000);
        assert!(
            (m.x[0] - 3.0).abs() < 1e-4 && (m.x[1] + 1.0).abs() < 1e-4,
            "{m:?}"
        );
    }

    #[test]
    fn the_rosenbrock_valley_is_followed_and_the_result_repeats_bit_for_bit() {
        let mut f = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let a = minimize(&mut f, &[-1.2, 1.0], &[0.5, 0.5], 1e-14, 5000);
        let b = minimize(&mut f, &[-1.2, 1.0], &[0.5, 0.5], 1e-14, 5000);
        assert!(
            (a.x[0] - 1.0).abs() < 1e-3 && (a.x[1] - 1.0).abs() < 1e-3,
            "{a:?}"
        );
        assert_eq!(a, b);
    }

    #[test]
    fn it_stops_at_the_evaluation_budget() {
        let mut f = |x: &[f64]| x[0].abs();
        let m = minimize(&mut f, &[100.0], &[1.0], 0.0, 10);
        assert!(m.evaluations <= 12, "{}", m.evaluations);
    }
}
