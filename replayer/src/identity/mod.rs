//! The server's identity, asked once before the run and recorded in the log header
//! (`server_identity`): which server software and version, which models with which
//! context limit, its KV-cache settings (see [`parse`] for every endpoint and format).
//!
//! Why: the numbers of a run belong to one server build and configuration; the URL
//! alone does not say which. Only `GET`s (no side effects), sent concurrently on a
//! client of their own (so the run's pool and its connection counts are untouched),
//! each answer read to at most its endpoint's bound and all of them within
//! [`LIMIT`]. Nothing here fails the run: an endpoint the server does not have, a
//! timeout or an answer of another shape is simply absent.

pub(crate) mod parse;

use std::time::{Duration, Instant};

use formats::{IdentitySource, ServerIdentity};
use futures_util::future::join_all;
use reqwest::header::{HeaderMap, SERVER};

use parse::Endpoint;

/// Longest the identity requests may take, all together.
pub(crate) const LIMIT: Duration = Duration::from_secs(2);

/// One identity answer: status, headers of interest, the body (bounded).
struct Answer {
    status: u16,
    server: Option<String>,
    simulator: bool,
    body: Vec<u8>,
}

/// Asks the server at `base` (any URL on its host: absolute paths are joined to it)
/// everything [`parse`] reads, with `headers` (the run's: an API key opens `/v1/models`
/// on gateways), over a client built on `tls`.
pub(crate) async fn identify(
    base: &reqwest::Url,
    headers: &HeaderMap,
    tls: &rustls::ClientConfig,
) -> ServerIdentity {
    let started = Instant::now();
    let mut id = ServerIdentity::default();
    let Ok(client) = crate::net::http::client_builder(tls)
        .connect_timeout(LIMIT)
        .build()
    else {
        return id;
    };
    let deadline = tokio::time::Instant::now() + LIMIT;
    let asks = Endpoint::ALL.map(|e| {
        let client = &client;
        async move {
            let url = base.join(e.path()).ok()?;
            let answer = get(client, url, headers, e.limit());
            tokio::time::timeout_at(deadline, answer).await.ok()?
        }
    });
    let answers = join_all(asks).await;
    let mut simulator = false;
    for (e, answer) in Endpoint::ALL.into_iter().zip(answers) {
        let Some(a) = answer else { continue };
        if id.server_header.is_none() {
            id.server_header = a.server.clone();
        }
        simulator |= a.simulator;
        if (200..300).contains(&a.status) && parse::absorb(&mut id, e, &a.body) {
            id.sources.push(source(e, &a.body));
        }
    }
    if simulator {
        // Whatever server it imitates, the numbers are the simulator's.
        id.kind = Some("llmib-sim".into());
    }
    id.elapsed_ns = started.elapsed().as_nanos() as u64;
    id
}

/// What the header records of one answer: the metrics are too large and say nothing
/// beyond the cache settings, so only their request is named.
fn source(e: Endpoint, body: &[u8]) -> IdentitySource {
    let request = format!("GET {}", e.path());
    if e == Endpoint::Metrics {
        return IdentitySource {
            request,
            body: None,
            truncated: false,
        };
    }
    let (body, truncated) = parse::recorded(body);
    IdentitySource {
        request,
        body: Some(body),
        truncated,
    }
}

/// `GET url`, its body read to at most `limit` bytes (the rest is never read: the
/// connection is dropped with the response).
async fn get(
    client: &reqwest::Client,
    url: reqwest::Url,
    headers: &HeaderMap,
    limit: usize,
) -> Option<Answer> {
    let mut resp = client.get(url).headers(headers.clone()).send().await.ok()?;
    let server = resp
        .headers()
        .get(SERVER)
        .and_then(|v| v.to_str().ok())
        .map(header_value);
    let simulator = resp.headers().contains_key(formats::SIMULATOR_HEADER);
    let status = resp.status().as_u16();
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Some(Answer {
        status,
        server,
        simulator,
        body,
    })
}

/// A header value as recorded: at most 128 bytes.
fn header_value(v: &str) -> String {
    let mut end = v.len().min(128);
    while !v.is_char_boundary(end) {
        end -= 1;
    }
    v[..end].to_string()
}
