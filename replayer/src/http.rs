//! The HTTP side of a run before its first request: the request URL, the fixed request
//! headers, the client (HTTP/1.1, `TCP_NODELAY`, no proxy, no retries, no redirects, an
//! idle pool sized for the peak), the simulator probe, and the endpoint check. Apart
//! from [`crate::request`] because none of it runs per request.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::{BackendKind, ReplayConfig};
use crate::conn_count::ConnCount;
use crate::connect::ConnectLayer;
use crate::error::ReplayError;

/// Joins the endpoint and a backend path (a trailing `/v1` on the endpoint is accepted
/// for the OpenAI dialects).
pub(crate) fn request_url(
    endpoint: &str,
    backend: BackendKind,
    stream: bool,
) -> Result<reqwest::Url, ReplayError> {
    let mut base = endpoint.trim().trim_end_matches('/').to_string();
    if backend.is_openai() && base.ends_with("/v1") {
        base.truncate(base.len() - 3);
    }
    let path = backend.dialect().path(stream);
    let url = reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|e| ReplayError::Config(format!("invalid endpoint `{endpoint}`: {e}")))?;
    if url.scheme() != "http" {
        return Err(ReplayError::Config(format!(
            "endpoint `{endpoint}`: only plain http:// endpoints are supported"
        )));
    }
    Ok(url)
}

/// Builds the fixed request headers (user headers, API key).
pub(crate) fn build_headers(
    headers: &[(String, String)],
    api_key: Option<&str>,
) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    map.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(key) = api_key {
        let mut v = HeaderValue::from_str(&format!("Bearer {key}"))
            .map_err(|_| "the API key contains characters not allowed in a header".to_string())?;
        v.set_sensitive(true);
        map.insert(reqwest::header::AUTHORIZATION, v);
    }
    for (k, v) in headers {
        let name = HeaderName::from_bytes(k.trim().as_bytes())
            .map_err(|_| format!("invalid header name `{k}`"))?;
        let value = HeaderValue::from_str(v.trim())
            .map_err(|_| format!("invalid value for header `{k}`"))?;
        map.append(name, value);
    }
    Ok(map)
}

/// The run's HTTP client, its idle pool sized for `pool` connections, every connection
/// it opens counted in `count` (and stamped on the request that opened it, see
/// [`crate::connect`]).
pub(crate) fn build_client(
    config: &ReplayConfig,
    pool: usize,
    count: &ConnCount,
) -> Result<reqwest::Client, ReplayError> {
    let mut b = reqwest::Client::builder()
        .connector_layer(ConnectLayer::new(count.clone()))
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .retry(reqwest::retry::never())
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("llm-infer-bench/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = config.timeout {
        b = b.connect_timeout(t);
    }
    b.build()
        .map_err(|e| ReplayError::Internal(format!("building the HTTP client: {e}")))
}

/// A cheap `GET` on the server, for the connection warm-up: `/v1/models` for the
/// OpenAI dialects (every OpenAI-compatible server has it), `/health` for the others
/// (TGI, vLLM, LightLLM). Any answer, even an error status, opens a connection.
pub(crate) fn probe_url(
    request_url: &reqwest::Url,
    backend: BackendKind,
) -> Result<reqwest::Url, ReplayError> {
    let path = if backend.is_openai() {
        "/v1/models"
    } else {
        "/health"
    };
    request_url
        .join(path)
        .map_err(|e| ReplayError::Config(format!("probe URL: {e}")))
}

/// Asks the server's `/health` whether it is llm-infer-bench's simulator (its
/// [`formats::SIMULATOR_HEADER`]), so that runs against it are recorded as simulated even
/// when the caller did not say so. Any failure means "not known to be simulated".
pub(crate) async fn detect_simulator(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Option<formats::SimulatedInfo> {
    let health = url.join("/health").ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(2), client.get(health).send())
        .await
        .ok()?
        .ok()?;
    let value = resp
        .headers()
        .get(formats::SIMULATOR_HEADER)?
        .to_str()
        .ok()?;
    formats::SimulatedInfo::from_header(value)
}

/// Fails fast, naming the endpoint, when nothing answers HTTP there. Any HTTP answer
/// (even 404) counts as up.
pub async fn check_endpoint(endpoint: &str, timeout: Duration) -> Result<(), ReplayError> {
    let url = request_url(endpoint, BackendKind::Tgi, false)?;
    let base = url
        .join("/")
        .map_err(|e| ReplayError::Config(e.to_string()))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| ReplayError::Internal(e.to_string()))?;
    match client.get(base).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(ReplayError::Endpoint {
            endpoint: endpoint.to_string(),
            message: if e.is_timeout() {
                format!("no answer within {:.1} s", timeout.as_secs_f64())
            } else if e.is_connect() {
                let mut m = String::from("connection failed");
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    m = format!("connection failed: {s}");
                    src = s.source();
                }
                m
            } else {
                e.to_string()
            },
        }),
    }
}
