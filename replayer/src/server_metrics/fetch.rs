//! One `GET` of a metrics endpoint: its URL (given, or `auto` on the endpoint's host),
//! a client of its own, the answer read up to [`MAX_BODY`] and parsed.

use std::time::{Duration, Instant};

use super::error::ServerMetricsError;
use super::text::{self, Series};
use crate::config::TlsOptions;

/// Most bytes read from one `/metrics` answer (a real vLLM's is ~50 KB, with every
/// histogram). A longer answer (an endless body, a wrong URL serving a large file) is
/// not read further: the scrape fails with an error naming the limit (before the run:
/// the run fails or, with `auto`, goes on without samples; during it: a sample with
/// that error). Documented in `replayer/README.md`.
pub const MAX_BODY: usize = 4 << 20;

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
    let config = crate::net::tls::client_config(tls, url.scheme() == "https").map_err(|e| {
        ServerMetricsError::Fetch {
            url: formats::redact_url(url.as_str()),
            status: None,
            message: e.to_string(),
        }
    })?;
    crate::net::http::client_builder(&config)
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
    let resp = client.get(url.clone()).send().await.map_err(|e| {
        fail(
            None,
            crate::net::transport_error::unreachable_why(&e, started.elapsed()),
        )
    })?;
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
            crate::net::transport_error::unreachable_why(&e, started.elapsed()),
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
