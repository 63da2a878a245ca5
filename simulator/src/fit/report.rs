//! How far a prediction is from what was measured, per load and metric: the p50, p90
//! and p99 of TTFT, TPOT and E2E on both sides and their relative errors (what
//! `llmib calibrate` prints and writes into the profile's provenance).

use crate::fit::observe::{Load, Times};

/// One metric of one load, seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricError {
    /// `ttft`, `tpot`, `e2e` or `itl`.
    pub metric: &'static str,
    /// (p50, p90, p99) measured.
    pub measured: [f64; 3],
    /// (p50, p90, p99) predicted.
    pub predicted: [f64; 3],
}

impl MetricError {
    /// predicted / measured − 1 at p50, p90, p99.
    pub fn relative(&self) -> [f64; 3] {
        std::array::from_fn(|i| self.predicted[i] / self.measured[i] - 1.0)
    }
}

/// Every metric of one load.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadErrors {
    pub name: String,
    /// Requests that finished in the run (those the percentiles are over).
    pub requests: usize,
    pub metrics: Vec<MetricError>,
    /// Output tokens per second of the finished requests, from the first arrival to the
    /// last end: (measured, predicted).
    pub throughput: [f64; 2],
}

impl LoadErrors {
    /// Predicted / measured throughput − 1.
    pub fn throughput_error(&self) -> f64 {
        self.throughput[1] / self.throughput[0] - 1.0
    }
}

/// Percentiles of measured and predicted times of `load`.
pub fn compare(load: &Load, predicted: &[Times]) -> LoadErrors {
    // Both sides over the requests that finished in the run.
    let pick = |f: fn(&Times) -> Option<f64>| {
        let both: Vec<(&Times, &Times)> = (load.measured.iter().zip(predicted))
            .filter_map(|(m, p)| Some((m.as_ref()?, p)))
            .collect();
        let m: Vec<f64> = both.iter().filter_map(|(m, _)| f(m)).collect();
        let p: Vec<f64> = both.iter().filter_map(|(_, p)| f(p)).collect();
        (percentiles(m), percentiles(p))
    };
    let metric = |name, f: fn(&Times) -> Option<f64>| {
        let (measured, predicted) = pick(f);
        MetricError {
            metric: name,
            measured,
            predicted,
        }
    };
    LoadErrors {
        name: load.name.clone(),
        requests: load.measured.iter().flatten().count(),
        throughput: [
            throughput(load, |i| load.measured[i]),
            throughput(load, |i| load.measured[i].map(|_| predicted[i])),
        ],
        metrics: vec![
            metric("ttft", |t| Some(t.ttft_ns)),
            metric("tpot", |t| t.tpot_ns),
            metric("e2e", |t| Some(t.e2e_ns)),
        ],
    }
}

/// The measured and predicted ITL percentiles of `load` (`predicted`: pooled gaps, ns,
/// from [`crate::fit::predict_itl`]).
pub fn itl_error(load: &Load, predicted: Vec<f64>) -> MetricError {
    MetricError {
        metric: "itl",
        measured: percentiles(load.measured_itl_ns.clone()),
        predicted: percentiles(predicted),
    }
}

/// The range of a fitted profile's relative errors (predicted / measured − 1) for
/// `metric` (`ttft`, `tpot`, `e2e`) at percentile index `at` (0: p50, 1: p90, 2: p99)
/// over the logs it was fitted to, as its `[calibration]` table records them: what a
/// prediction's interval is made of. `None` without such records.
pub fn residual_range(calibration: &toml::Table, metric: &str, at: usize) -> Option<(f64, f64)> {
    let key = format!("{metric}_error");
    let errors: Vec<f64> = calibration
        .get("logs")?
        .as_array()?
        .iter()
        .filter_map(|log| log.get(&key)?.as_array()?.get(at)?.as_float())
        .filter(|e| e.is_finite() && *e > -1.0)
        .collect();
    let lo = errors.iter().copied().reduce(f64::min)?;
    let hi = errors.iter().copied().reduce(f64::max)?;
    Some((lo, hi))
}

/// The interval of a predicted value `v` given the fit's error range: the measured value
/// `v / (1 + e)` for every error `e` seen.
pub fn interval(v: f64, (lo, hi): (f64, f64)) -> (f64, f64) {
    (v / (1.0 + hi), v / (1.0 + lo))
}

/// Output tokens/s of the requests `times` gives an end for, over the span from the
/// first arrival to the last end.
fn throughput(load: &Load, times: impl Fn(usize) -> Option<Times>) -> f64 {
    let (mut tokens, mut end) = (0u64, 0.0f64);
    for (i, q) in load.requests.iter().enumerate() {
        if let Some(t) = times(i).filter(|t| t.e2e_ns.is_finite()) {
            tokens += q.target_tokens as u64;
            end = end.max(t.sent_ns + t.e2e_ns);
        }
    }
    tokens as f64 / (end / 1e9).max(1e-9)
}

/// p50, p90, p99 (nearest rank) of `ns`, in seconds; NaN when empty.
pub fn percentiles(mut ns: Vec<f64>) -> [f64; 3] {
    ns.sort_by(f64::total_cmp);
    [0.50, 0.90, 0.99].map(|q| {
        if ns.is_empty() {
            return f64::NAN;
        }
        let rank = ((q * ns.len() as f64).ceil() as usize).clamp(1, ns.len());
        ns[rank - 1] / 1e9
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prediction_interval_comes_from_the_errors_the_fit_recorded() {
        let text = r#"
[[logs]]
ttft_error = [0.1, -0.2, 0.0]
[[logs]]
ttft_error = [-0.05, 0.3, 0.0]
"#;
        let table: toml::Table = text.parse().unwrap();
        assert_eq!(residual_range(&table, "ttft", 0), Some((-0.05, 0.1)));
        assert_eq!(residual_range(&table, "ttft", 1), Some((-0.2, 0.3)));
        assert_eq!(residual_range(&table, "tpot", 0), None);
        // Over-predicting by 10% means the truth is lower: 1.1 -> 1.0.
        let (lo, hi) = interval(1.1, (-0.05, 0.1));
        assert!((lo - 1.0).abs() < 1e-12 && (hi - 1.1 / 0.95).abs() < 1e-12);
    }

    #[test]
    fn nearest_rank_percentiles_in_seconds() {
        let ns: Vec<f64> = (1..=100).map(|i| i as f64 * 1e9).collect();
        assert_eq!(percentiles(ns), [50.0, 90.0, 99.0]);
        assert!(percentiles(Vec::new())[0].is_nan());
    }
}
