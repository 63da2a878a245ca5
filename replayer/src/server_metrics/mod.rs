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

pub(crate) mod scraper;
pub(crate) mod setup;
pub mod text;

use std::time::{Duration, Instant};

use crate::tls::TlsOptions;
pub use setup::MIN_INTERVAL;
use text::{Kind, Series};

/// Most bytes read from one `/metrics` answer (a real vLLM's is ~50 KB, with every
/// histogram). A longer answer (an endless body, a wrong URL serving a large file) is
/// not read further: the scrape fails with an error naming the limit (before the run:
/// the run fails or, with `auto`, goes on without samples; during it: a sample with
/// that error). Documented in `replayer/README.md`.
pub const MAX_BODY: usize = 4 << 20;

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

/// Errors of scraping a metrics endpoint. One line each.
#[derive(Debug, thiserror::Error)]
pub enum ServerMetricsError {
    #[error("server metrics: invalid URL `{url}`: {message}")]
    BadUrl { url: String, message: String },
    /// No HTTP answer, or not a 200 (`status` then says which).
    #[error("server metrics {url}: {message}")]
    Fetch {
        url: String,
        status: Option<u16>,
        message: String,
    },
    /// A 200 whose body is not the Prometheus text format.
    #[error("server metrics {url}: not the Prometheus text format: {message}")]
    Parse { url: String, message: String },
    /// The server exports no running and no waiting gauge that we know.
    #[error("server metrics {url}: no running or waiting gauge (vllm:, sglang: or tgi_ names)")]
    NoQueueMetrics { url: String },
    /// [`wait_until_idle`] ran out of time.
    #[error(
        "server still busy after {:.1} s: {running} running, {waiting} waiting ({url})",
        waited.as_secs_f64()
    )]
    NotIdle {
        url: String,
        waited: Duration,
        running: f64,
        waiting: f64,
    },
}

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

/// `GET /metrics` on the endpoint's host: what `--server-metrics auto` scrapes.
pub fn auto_url(endpoint: &str) -> Result<reqwest::Url, ServerMetricsError> {
    let bad = |message: String| ServerMetricsError::BadUrl {
        url: formats::redact_url(endpoint),
        message,
    };
    let url = reqwest::Url::parse(endpoint.trim()).map_err(|e| bad(e.to_string()))?;
    url.join("/metrics").map_err(|e| bad(e.to_string()))
}

/// Parses a metrics URL given by the user (http or https).
pub fn parse_url(url: &str) -> Result<reqwest::Url, ServerMetricsError> {
    let bad = |message: String| ServerMetricsError::BadUrl {
        url: formats::redact_url(url),
        message,
    };
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("expected an http:// or https:// URL".into()));
    }
    Ok(parsed)
}

/// A client for scraping (its own pool: never the run's connections).
pub(crate) fn client(
    tls: &TlsOptions,
    url: &reqwest::Url,
    timeout: Duration,
) -> Result<reqwest::Client, ServerMetricsError> {
    let config = crate::tls::client_config(tls, url.scheme() == "https").map_err(|e| {
        ServerMetricsError::Fetch {
            url: formats::redact_url(url.as_str()),
            status: None,
            message: e.to_string(),
        }
    })?;
    crate::http::client_builder(&config)
        .timeout(timeout)
        .pool_max_idle_per_host(1)
        .build()
        .map_err(|e| ServerMetricsError::Fetch {
            url: formats::redact_url(url.as_str()),
            status: None,
            message: format!("building the HTTP client: {e}"),
        })
}

/// One `GET` of the metrics, parsed.
pub(crate) async fn fetch(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Result<Vec<Series>, ServerMetricsError> {
    let fail = |status: Option<u16>, message: String| ServerMetricsError::Fetch {
        url: formats::redact_url(url.as_str()),
        status,
        message,
    };
    let started = Instant::now();
    let resp = client
        .get(url.clone())
        .send()
        .await
        .map_err(|e| fail(None, crate::http::unreachable_why(&e, started.elapsed())))?;
    let status = resp.status();
    if !status.is_success() {
        return Err(fail(Some(status.as_u16()), format!("HTTP {status}")));
    }
    let too_large = || {
        fail(
            Some(status.as_u16()),
            format!(
                "answer larger than {} MiB (the limit of a metrics answer); not read further",
                MAX_BODY >> 20
            ),
        )
    };
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    let body = read_bounded(resp, MAX_BODY).await.map_err(|e| match e {
        Some(e) => fail(
            Some(status.as_u16()),
            crate::http::unreachable_why(&e, started.elapsed()),
        ),
        None => too_large(),
    })?;
    let text = std::str::from_utf8(&body).map_err(|_| ServerMetricsError::Parse {
        url: formats::redact_url(url.as_str()),
        message: "not UTF-8".into(),
    })?;
    text::parse(text).map_err(|message| ServerMetricsError::Parse {
        url: formats::redact_url(url.as_str()),
        message,
    })
}

/// The body of `resp`, read chunk by chunk up to `limit` bytes. `Err(None)`: it is
/// longer (reading stopped there, the rest is never buffered); `Err(Some(e))`: the
/// read failed.
async fn read_bounded(
    mut resp: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, Option<reqwest::Error>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Some)? {
        if body.len() + chunk.len() > limit {
            return Err(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How often [`wait_until_idle`] polls.
pub const IDLE_POLL: Duration = Duration::from_millis(100);

/// What [`wait_until_idle`] saw.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Idle {
    /// From the call to the first idle answer.
    pub waited: Duration,
    /// Scrapes made (at least 1).
    pub polls: u32,
    /// The idle answer's KV-cache usage, when the server exports it.
    pub kv_usage: Option<f64>,
}

/// The sweep's cool-down: polls `url` (a Prometheus text endpoint, e.g.
/// `http://host:8000/metrics`, see [`auto_url`]) every [`IDLE_POLL`] until it reports no
/// running and no waiting request, or `timeout` passes.
///
/// Errors: [`ServerMetricsError::NotIdle`] on the timeout (with the last counts);
/// [`ServerMetricsError::Fetch`] (unreachable, or an HTTP error such as 404: the server
/// exports no metrics there), [`ServerMetricsError::Parse`] and
/// [`ServerMetricsError::NoQueueMetrics`] at the first poll: a server that cannot say
/// whether it is idle is reported at once, not waited on; the caller decides whether to
/// fall back to a plain pause. A failure on a later poll is retried until the timeout.
pub async fn wait_until_idle(url: &str, timeout: Duration) -> Result<Idle, ServerMetricsError> {
    wait_until_idle_with(url, &TlsOptions::default(), timeout).await
}

/// [`wait_until_idle`] with the run's TLS options (`--cacert`, `--insecure`).
pub async fn wait_until_idle_with(
    url: &str,
    tls: &TlsOptions,
    timeout: Duration,
) -> Result<Idle, ServerMetricsError> {
    let parsed = parse_url(url)?;
    let client = client(
        tls,
        &parsed,
        timeout.clamp(IDLE_POLL, Duration::from_secs(10)),
    )?;
    let start = Instant::now();
    let mut polls = 0;
    let mut last = QueueState::default();
    loop {
        let state = match fetch(&client, &parsed).await {
            Ok(series) => {
                let state = QueueState::from_series(&series);
                if state.running.is_none() && state.waiting.is_none() {
                    return Err(ServerMetricsError::NoQueueMetrics {
                        url: formats::redact_url(url),
                    });
                }
                Some(state)
            }
            Err(e) if polls == 0 => return Err(e),
            Err(_) => None,
        };
        polls += 1;
        if let Some(state) = state {
            if state.is_idle() {
                return Ok(Idle {
                    waited: start.elapsed(),
                    polls,
                    kv_usage: state.kv_usage,
                });
            }
            last = state;
        }
        if start.elapsed() >= timeout {
            return Err(ServerMetricsError::NotIdle {
                url: formats::redact_url(url),
                waited: start.elapsed(),
                running: last.running.unwrap_or(0.0),
                waiting: last.waiting.unwrap_or(0.0),
            });
        }
        tokio::time::sleep(IDLE_POLL.min(timeout.saturating_sub(start.elapsed()))).await;
    }
}

#[cfg(test)]
mod tests;
