//! Time arithmetic shared by every metric: differences of ns instants in seconds, and
//! counts over a duration.

/// `a - b` in seconds, for instants in ns (negative when `b` is later).
pub(crate) fn secs(a: u64, b: u64) -> f64 {
    (a as i128 - b as i128) as f64 / 1e9
}

/// `x` per second of `d`; `None` without a positive duration.
pub(crate) fn per_s(x: f64, d: Option<f64>) -> Option<f64> {
    d.filter(|d| *d > 0.0).map(|d| x / d)
}
