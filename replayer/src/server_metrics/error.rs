//! The errors of reading a server's metrics, one line each: shared by the scrapes
//! before and during a run and by the sweep's cool-down.

use std::time::Duration;

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
