//! The serving backend's own metrics (its Prometheus `/metrics`): scraped during a run on
//! the run's clock ([`scraper`]), and polled between runs until the server is idle
//! ([`wait_until_idle`], the sweep's cool-down).
//!
//! Why: client-side latencies say *that* a server slowed down; its queue length, running
//! batch and KV-cache usage say *why*. vLLM, SGLang and TGI all export them.
//!
//! What is read ([`QueueState`]): running requests (`vllm:num_requests_running`,
//! `sglang:num_running_reqs`, `tgi_batch_current_size`), waiting requests
//! (`vllm:num_requests_waiting`, `sglang:num_queue_reqs`, `tgi_queue_size`), and KV-cache
//! usage (`vllm:kv_cache_usage_perc`, `vllm:gpu_cache_usage_perc`, `sglang:token_usage`);
//! the first name of each list that the server exports is used, summed over its label
//! sets (one per engine or model; the KV usage takes the largest). What is kept in a run's
//! samples ([`keep`]): every gauge, counter and untyped series of the `vllm:`, `sglang:`
//! and `tgi_` families; histograms and summaries (dozens of buckets each, per scrape) and
//! `_created` timestamps are not.

mod error;
mod fetch;
mod idle;
mod queue;
pub(crate) mod scraper;
pub(crate) mod setup;
pub mod text;

pub use error::ServerMetricsError;
pub use fetch::{MAX_BODY, auto_url, parse_url};
pub use idle::{IDLE_POLL, Idle, wait_until_idle, wait_until_idle_with};
pub use queue::{KV_USAGE, QueueState, RUNNING, WAITING, keep};
pub use setup::MIN_INTERVAL;

#[cfg(test)]
use {
    crate::config::TlsOptions,
    fetch::{client, fetch},
    text::Series,
};

#[cfg(test)]
mod tests;
