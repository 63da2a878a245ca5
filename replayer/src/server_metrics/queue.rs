//! What is read from a server's metrics and what is kept: the queue gauges of vLLM,
//! SGLang and TGI ([`QueueState`], in order of preference) and the series a run's
//! samples keep ([`keep`]); see the `server_metrics` module docs.

use super::text::{Kind, Series};

/// Running-request gauges, in order of preference.
pub const RUNNING: [&str; 3] = [
    "vllm:num_requests_running",
    "sglang:num_running_reqs",
    "tgi_batch_current_size",
];
/// Waiting-request gauges, in order of preference.
pub const WAITING: [&str; 3] = [
    "vllm:num_requests_waiting",
    "sglang:num_queue_reqs",
    "tgi_queue_size",
];
/// KV-cache usage gauges (fraction, 0 to 1), in order of preference.
pub const KV_USAGE: [&str; 3] = [
    "vllm:kv_cache_usage_perc",
    "vllm:gpu_cache_usage_perc",
    "sglang:token_usage",
];

/// The server's load as its metrics say. `None`: it exports no such gauge.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct QueueState {
    pub running: Option<f64>,
    pub waiting: Option<f64>,
    pub kv_usage: Option<f64>,
}

impl QueueState {
    /// Reads the gauges named in the module docs from a parsed exposition.
    pub fn from_series(series: &[Series]) -> QueueState {
        let pick = |names: &[&str], combine: fn(f64, f64) -> f64| {
            names.iter().find_map(|name| {
                series
                    .iter()
                    .filter(|s| s.name == *name)
                    .map(|s| s.value)
                    .reduce(combine)
            })
        };
        QueueState {
            running: pick(&RUNNING, |a, b| a + b),
            waiting: pick(&WAITING, |a, b| a + b),
            kv_usage: pick(&KV_USAGE, f64::max),
        }
    }

    /// Nothing running and nothing waiting (a missing gauge counts as 0 when the other
    /// one is there).
    pub fn is_idle(&self) -> bool {
        self.running.unwrap_or(0.0) == 0.0 && self.waiting.unwrap_or(0.0) == 0.0
    }
}

/// Whether a series is kept in a run's samples (see the module docs).
pub fn keep(s: &Series) -> bool {
    let family = ["vllm:", "sglang:", "tgi_"]
        .iter()
        .any(|p| s.name.starts_with(p));
    family
        && matches!(s.kind, Kind::Gauge | Kind::Counter | Kind::Untyped)
        && !s.name.ends_with("_created")
        && s.value.is_finite()
}
