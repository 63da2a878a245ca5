//! The sweep's cool-down between runs: the server's metrics polled until nothing runs
//! and nothing waits ([`wait_until_idle`]).

use std::time::{Duration, Instant};

use super::error::ServerMetricsError;
use super::fetch::{client, fetch, parse_url};
use super::queue::QueueState;
use crate::config::TlsOptions;

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
