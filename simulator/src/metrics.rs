//! `GET /metrics`: the simulated server's own state in the Prometheus text format, under
//! vLLM's metric names, on every dialect.
//!
//! Why vLLM's names: they are what benchmark tools (and llm-infer-bench's replayer) look
//! for first, and the engine model's default policy is vLLM's. Why on every dialect: the
//! scraper and the sweep's cool-down are tested against any dialect without a GPU.
//!
//! The engine is a single-owner thread (`engine/realtime.rs`); it must not wait for anybody. So it
//! publishes its gauges into [`EngineGauges`] (relaxed atomic stores, a handful per step)
//! and the handler reads them whenever it is asked: no lock, no channel, nothing on the
//! step's path but the stores. Request-level series (successes, TTFT and end-to-end
//! histograms) are counted by the request handlers when a request's life ends, also with
//! atomics. The null profile has no engine: its gauges stay 0.
//!
//! Exposed names (label `model_name` = the profile's model):
//! `vllm:num_requests_running`, `vllm:num_requests_waiting`, `vllm:kv_cache_usage_perc`
//! and its pre-V1 name `vllm:gpu_cache_usage_perc` (gauges), `vllm:num_preemptions_total`,
//! `vllm:prompt_tokens_total`, `vllm:generation_tokens_total`,
//! `vllm:request_success_total{finished_reason}` (counters),
//! `vllm:time_to_first_token_seconds`, `vllm:e2e_request_latency_seconds` (histograms).

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::engine::scheduler::Core;

/// The engine's gauges and counters, stored by the engine task after each change.
#[derive(Debug, Default)]
pub struct EngineGauges {
    running: AtomicU64,
    waiting: AtomicU64,
    /// `f64::to_bits` of the KV-cache usage fraction.
    kv_usage: AtomicU64,
    preemptions: AtomicU64,
    prompt_tokens: AtomicU64,
    generation_tokens: AtomicU64,
}

/// A copy of [`EngineGauges`] at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct GaugeValues {
    pub running: u64,
    pub waiting: u64,
    /// Fraction of the KV cache in use, 0 to 1.
    pub kv_usage: f64,
    pub preemptions: u64,
    /// Prompt tokens prefilled (prefix-cache hits excluded), recomputations included.
    pub prompt_tokens: u64,
    pub generation_tokens: u64,
}

impl EngineGauges {
    /// Store the core's current state (called by the engine task; a few relaxed stores).
    pub fn publish(&self, core: &Core) {
        self.running.store(core.running_len() as u64, Relaxed);
        self.waiting.store(core.waiting_len() as u64, Relaxed);
        self.kv_usage.store(core.kv_usage().to_bits(), Relaxed);
        self.preemptions.store(core.stats.preemptions, Relaxed);
        self.prompt_tokens.store(core.stats.prefill_tokens, Relaxed);
        self.generation_tokens.store(core.stats.tokens, Relaxed);
    }

    pub fn values(&self) -> GaugeValues {
        GaugeValues {
            running: self.running.load(Relaxed),
            waiting: self.waiting.load(Relaxed),
            kv_usage: f64::from_bits(self.kv_usage.load(Relaxed)),
            preemptions: self.preemptions.load(Relaxed),
            prompt_tokens: self.prompt_tokens.load(Relaxed),
            generation_tokens: self.generation_tokens.load(Relaxed),
        }
    }
}

/// vLLM's bucket bounds for `vllm:time_to_first_token_seconds`.
const TTFT_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
];
/// vLLM's bucket bounds for `vllm:e2e_request_latency_seconds`.
const E2E_BUCKETS: &[f64] = &[
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
];

/// A Prometheus histogram of durations with atomic buckets (non-cumulative in memory,
/// cumulative when rendered).
#[derive(Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then +Inf.
    counts: Vec<AtomicU64>,
    sum_ns: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            counts: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }

    fn observe_ns(&self, ns: u64) {
        let s = ns as f64 / 1e9;
        let i = self.bounds.partition_point(|&b| b < s);
        self.counts[i].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str, labels: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (i, c) in self.counts.iter().enumerate() {
            cumulative += c.load(Relaxed);
            let le = match self.bounds.get(i) {
                Some(b) => format!("{b:?}"),
                None => "+Inf".to_string(),
            };
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
        }
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum{{{labels}}} {sum:?}");
        let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
    }
}

/// Everything `/metrics` shows.
#[derive(Debug)]
pub(crate) struct ServerMetrics {
    pub engine: std::sync::Arc<EngineGauges>,
    /// `model_name="..."`, escaped.
    labels: String,
    success_length: AtomicU64,
    success_stop: AtomicU64,
    ttft: Histogram,
    e2e: Histogram,
    /// The labels of `vllm:cache_config_info` (escaped), when the engine has a KV cache.
    cache_info: Option<String>,
}

impl ServerMetrics {
    pub(crate) fn new(model: &str, engine: std::sync::Arc<EngineGauges>) -> ServerMetrics {
        ServerMetrics {
            engine,
            labels: format!("model_name=\"{}\"", escape_label(model)),
            success_length: AtomicU64::new(0),
            success_stop: AtomicU64::new(0),
            ttft: Histogram::new(TTFT_BUCKETS),
            e2e: Histogram::new(E2E_BUCKETS),
            cache_info: None,
        }
    }

    /// Exports `vllm:cache_config_info` (an info gauge, 1, whose labels are the cache
    /// settings, as vLLM does) for an engine of `block_size`-token blocks holding
    /// `capacity_tokens`, with or without automatic prefix caching.
    pub(crate) fn with_cache_info(
        mut self,
        block_size: u32,
        capacity_tokens: u64,
        prefix_caching: bool,
    ) -> ServerMetrics {
        let blocks = capacity_tokens / block_size.max(1) as u64;
        let on = if prefix_caching { "True" } else { "False" };
        self.cache_info = Some(format!(
            "block_size=\"{block_size}\",enable_prefix_caching=\"{on}\",engine=\"0\",\
             kv_cache_size_tokens=\"{capacity_tokens}\",num_gpu_blocks=\"{blocks}\""
        ));
        self
    }

    /// A request answered in full: `eos` says it stopped on EOS (vLLM's `stop`) rather
    /// than at its limit (`length`). Times are ns from its arrival.
    pub(crate) fn request_done(&self, eos: bool, ttft_ns: Option<u64>, e2e_ns: u64) {
        if eos {
            self.success_stop.fetch_add(1, Relaxed);
        } else {
            self.success_length.fetch_add(1, Relaxed);
        }
        if let Some(t) = ttft_ns {
            self.ttft.observe_ns(t);
        }
        self.e2e.observe_ns(e2e_ns);
    }

    /// The exposition text (Prometheus text format 0.0.4).
    pub(crate) fn render(&self) -> String {
        let v = self.engine.values();
        let l = &self.labels;
        let mut out = String::with_capacity(4096);
        let gauges: [(&str, &str, String); 4] = [
            (
                "vllm:num_requests_running",
                "Number of requests in model execution batches.",
                v.running.to_string(),
            ),
            (
                "vllm:num_requests_waiting",
                "Number of requests waiting to be processed.",
                v.waiting.to_string(),
            ),
            (
                "vllm:kv_cache_usage_perc",
                "KV-cache usage. 1 means 100 percent usage.",
                format!("{:?}", v.kv_usage),
            ),
            (
                "vllm:gpu_cache_usage_perc",
                "GPU KV-cache usage. 1 means 100 percent usage (pre-V1 name).",
                format!("{:?}", v.kv_usage),
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(out, "{name}{{{l}}} {value}");
        }
        let counters = [
            (
                "vllm:num_preemptions",
                "Cumulative number of preemption from the engine.",
                v.preemptions,
            ),
            (
                "vllm:prompt_tokens",
                "Number of prefill tokens processed.",
                v.prompt_tokens,
            ),
            (
                "vllm:generation_tokens",
                "Number of generation tokens processed.",
                v.generation_tokens,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(
                out,
                "# HELP {name}_total {help}\n# TYPE {name}_total counter"
            );
            let _ = writeln!(out, "{name}_total{{{l}}} {value}.0");
        }
        if let Some(info) = &self.cache_info {
            let name = "vllm:cache_config_info";
            let _ = writeln!(
                out,
                "# HELP {name} Information of the LLMEngine CacheConfig\n# TYPE {name} gauge"
            );
            let _ = writeln!(out, "{name}{{{info}}} 1.0");
        }
        let name = "vllm:request_success_total";
        let _ = writeln!(
            out,
            "# HELP {name} Count of successfully processed requests.\n# TYPE {name} counter"
        );
        for (reason, n) in [
            ("length", &self.success_length),
            ("stop", &self.success_stop),
        ] {
            let n = n.load(Relaxed);
            let _ = writeln!(out, "{name}{{finished_reason=\"{reason}\",{l}}} {n}.0");
        }
        self.ttft.render(
            &mut out,
            "vllm:time_to_first_token_seconds",
            "Histogram of time to first token in seconds.",
            l,
        );
        self.e2e.render(
            &mut out,
            "vllm:e2e_request_latency_seconds",
            "Histogram of end to end request latency in seconds.",
            l,
        );
        out
    }
}

/// A label value as the text format writes it: `\`, `"` and newlines escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_le_inclusive() {
        let h = Histogram::new(&[0.1, 1.0]);
        h.observe_ns(100_000_000); // exactly 0.1 s: in the first bucket (le is <=)
        h.observe_ns(500_000_000);
        h.observe_ns(3_000_000_000);
        let mut out = String::new();
        h.render(&mut out, "x", "help", "m=\"a\"");
        assert!(out.contains("x_bucket{m=\"a\",le=\"0.1\"} 1\n"), "{out}");
        assert!(out.contains("x_bucket{m=\"a\",le=\"1.0\"} 2\n"), "{out}");
        assert!(out.contains("x_bucket{m=\"a\",le=\"+Inf\"} 3\n"), "{out}");
        assert!(out.contains("x_sum{m=\"a\"} 3.6\n"), "{out}");
        assert!(out.contains("x_count{m=\"a\"} 3\n"), "{out}");
    }

    #[test]
    fn the_cache_config_is_an_info_gauge() {
        let m = ServerMetrics::new("m", Default::default()).with_cache_info(16, 65536, true);
        let line = "vllm:cache_config_info{block_size=\"16\",enable_prefix_caching=\"True\",\
                    engine=\"0\",kv_cache_size_tokens=\"65536\",num_gpu_blocks=\"4096\"} 1.0\n";
        assert!(m.render().contains(line), "{}", m.render());
        let plain = ServerMetrics::new("m", Default::default()).render();
        assert!(!plain.contains("cache_config_info"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = ServerMetrics::new("a\"b\\c\nd", Default::default());
        assert!(
            m.render()
                .contains("vllm:num_requests_running{model_name=\"a\\\"b\\\\c\\nd\"} 0\n")
        );
    }
}
