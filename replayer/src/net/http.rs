//! The HTTP side of a run before its first request: the request URL, the fixed request
//! headers, the client (HTTP/1.1, `TCP_NODELAY`, no proxy, no retries, no redirects, an
//! idle pool sized for the peak, TLS as [`crate::net::tls`] sets it up), the simulator probe,
//! and the endpoint check. Apart from [`crate::run::request`] because none of it runs per
//! request.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use crate::config::TlsOptions;
use crate::config::{BackendKind, ReplayConfig};
use crate::error::ReplayError;
use crate::net::conn_count::ConnCount;
use crate::net::connect::ConnectLayer;
use crate::net::standby::Standby;
use crate::net::transport_error::unreachable_why;

/// Joins the endpoint and a backend path (a trailing `/v1` on the endpoint is accepted
/// for the OpenAI dialects).
pub(crate) fn request_url(
    endpoint: &str,
    backend: BackendKind,
    stream: bool,
) -> Result<reqwest::Url, ReplayError> {
    let mut base = endpoint.trim().trim_end_matches('/').to_string();
    if backend.serves_v1_models() && base.ends_with("/v1") {
        base.truncate(base.len() - 3);
    }
    let path = backend.dialect().path(stream);
    let url = reqwest::Url::parse(&format!("{base}{path}")).map_err(|e| {
        ReplayError::Config(format!(
            "invalid endpoint `{}`: {e}",
            formats::redact_url(endpoint)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ReplayError::Config(format!(
            "endpoint `{}`: expected an http:// or https:// URL",
            formats::redact_url(endpoint)
        )));
    }
    Ok(url)
}

/// Builds the fixed request headers (user headers, API key).
pub(crate) fn build_headers(
    headers: &[(String, String)],
    api_key: Option<&str>,
    backend: BackendKind,
) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::new();
    map.insert(
        reqwest::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let anthropic = backend == BackendKind::Anthropic;
    if anthropic {
        map.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(crate::dialect::anthropic::ANTHROPIC_VERSION),
        );
    }
    if let Some(key) = api_key {
        let bad = |_| "the API key contains characters not allowed in a header".to_string();
        let (name, mut v) = if anthropic {
            (
                HeaderName::from_static("x-api-key"),
                HeaderValue::from_str(key).map_err(bad)?,
            )
        } else {
            let v = HeaderValue::from_str(&format!("Bearer {key}")).map_err(bad)?;
            (reqwest::header::AUTHORIZATION, v)
        };
        v.set_sensitive(true);
        map.insert(name, v);
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

/// What every client of a run shares: TLS (`tls`, see [`crate::net::tls`]), HTTP/1.1 only, no
/// proxy, no retries, no redirects, `TCP_NODELAY`.
pub(crate) fn client_builder(tls: &rustls::ClientConfig) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls.clone())
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .retry(reqwest::retry::never())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("llm-infer-bench/", env!("CARGO_PKG_VERSION")))
}

/// The run's HTTP client, its idle pool sized for `pool` connections, every connection
/// it opens (TCP connect and TLS handshake) counted in `count` and stamped on the
/// request that opened it (see [`crate::net::connect`]), and the connections `standby`
/// keeps handed to requests that find no idle one (off unless a keeper runs).
pub(crate) fn build_client(
    config: &ReplayConfig,
    tls: &rustls::ClientConfig,
    pool: usize,
    (count, standby): (&ConnCount, &Arc<Standby>),
) -> Result<reqwest::Client, ReplayError> {
    // hyper-util resends a request that a closed pooled connection never took; the
    // watch records it on the request (`resend.rs`).
    crate::net::resend::install();
    let mut b = client_builder(tls)
        .connector_layer(ConnectLayer::new(count.clone(), standby.clone()))
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(config.pool_idle_timeout);
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
    let path = if backend.serves_v1_models() {
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
/// (even 404) counts as up. `https://` endpoints are verified with the default roots;
/// see [`check_endpoint_with`] for `--cacert` and `--insecure`.
pub async fn check_endpoint(endpoint: &str, timeout: Duration) -> Result<(), ReplayError> {
    check_endpoint_with(endpoint, &TlsOptions::default(), timeout).await
}

/// [`check_endpoint`] with the run's TLS options. A certificate the client does not
/// trust fails here, on one line that names the flags that address it.
pub async fn check_endpoint_with(
    endpoint: &str,
    tls: &TlsOptions,
    timeout: Duration,
) -> Result<(), ReplayError> {
    let url = request_url(endpoint, BackendKind::Tgi, false)?;
    let base = url
        .join("/")
        .map_err(|e| ReplayError::Config(e.to_string()))?;
    let tls = crate::net::tls::client_config(tls, url.scheme() == "https")?;
    let client = client_builder(&tls)
        .timeout(timeout)
        .build()
        .map_err(|e| ReplayError::Internal(e.to_string()))?;
    match client.get(base).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(ReplayError::Endpoint {
            endpoint: formats::redact_url(endpoint),
            message: unreachable_why(&e, timeout),
        }),
    }
}
