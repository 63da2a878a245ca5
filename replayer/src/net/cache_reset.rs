//! `--reset-prefix-cache`: drops the server's prefix cache just before the run's clock
//! starts, and says how that went (the log header's `prefix_cache_reset`).
//!
//! Why: a prefix cache warmed by earlier requests (an earlier run, another rate of a
//! sweep replaying the same prompts) makes a run measure less prefill than its trace
//! asks; runs are comparable only from the same cache state, and the empty one is the
//! one that can be reproduced.
//!
//! The servers that have it: vLLM `POST /reset_prefix_cache` (200 `{"success": bool}`;
//! false while blocks are in use; only with `VLLM_SERVER_DEV_MODE=1` in vLLM 0.32, 404
//! otherwise) and SGLang `POST /flush_cache` (200, or 400 while requests run or wait).
//! The candidates are tried in the order the server's identity (or, unknown, the
//! backend) makes likely; 404, 405 and 501 mean "not this one". A busy refusal is
//! retried every [`RETRY_EVERY`] for up to [`LIMIT`] (requests of an earlier run may
//! still be finishing on the server). Nothing here fails the run: a server that cannot
//! reset is a warning and a record.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use formats::PrefixCacheReset;
use reqwest::header::HeaderMap;

use crate::config::BackendKind;

/// Longest the reset may take, retries included.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);
/// Pause between two tries after a busy refusal.
pub(crate) const RETRY_EVERY: Duration = Duration::from_millis(200);
/// Most bytes of an answer read, and recorded.
const MAX_READ: usize = 64 << 10;
const MAX_RECORDED: usize = 256;

const VLLM: &str = "/reset_prefix_cache";
const SGLANG: &str = "/flush_cache";

/// The reset endpoints to try, in order: the identified server's own, else both,
/// SGLang's first for the `sglang` backend.
pub(crate) fn candidates(backend: BackendKind, kind: Option<&str>) -> Vec<&'static str> {
    match kind {
        Some("vllm") => vec![VLLM],
        Some("sglang") => vec![SGLANG],
        _ if backend == BackendKind::Sglang => vec![SGLANG, VLLM],
        _ => vec![VLLM, SGLANG],
    }
}

/// What one answer means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Refused because the server is busy: worth retrying.
    Busy,
    Refused,
    /// The server has no such endpoint.
    Unsupported,
}

fn verdict(path: &str, status: u16, body: &[u8]) -> Verdict {
    match status {
        404 | 405 | 501 => Verdict::Unsupported,
        200..=299 => {
            let success = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("success").and_then(|s| s.as_bool()));
            if success == Some(false) {
                Verdict::Busy
            } else {
                Verdict::Ok
            }
        }
        400 if path == SGLANG => Verdict::Busy,
        _ => Verdict::Refused,
    }
}

/// One try's result: status and body, or why there was no answer.
type Exchange = Result<(u16, Vec<u8>), String>;

/// Resets the prefix cache of the server at `base` (see the module docs); never
/// fails. `before_start_ns` is left 0 for the caller, who knows the start instant.
pub(crate) async fn reset(
    base: &reqwest::Url,
    headers: &HeaderMap,
    tls: &rustls::ClientConfig,
    candidates: &[&'static str],
) -> PrefixCacheReset {
    let mut done = PrefixCacheReset {
        outcome: "unsupported".into(),
        request: None,
        tried: Vec::new(),
        attempts: 0,
        http_status: None,
        answer: None,
        at_unix_ns: 0,
        before_start_ns: 0,
    };
    let client = match crate::net::http::client_builder(tls).build() {
        Ok(c) => c,
        Err(e) => {
            done.outcome = "failed".into();
            done.answer = Some(format!("building the HTTP client: {e}"));
            done.at_unix_ns = unix_now_ns();
            return done;
        }
    };
    let started = Instant::now();
    for &path in candidates {
        let request = format!("POST {path}");
        done.tried.push(request.clone());
        done.attempts = 0;
        let Ok(url) = base.join(path) else { continue };
        loop {
            done.attempts += 1;
            let left = LIMIT.saturating_sub(started.elapsed());
            let answer = post(&client, &url, headers, left).await;
            done.at_unix_ns = unix_now_ns();
            let (status, body) = match answer {
                Ok(a) => a,
                Err(why) => {
                    done.outcome = "failed".into();
                    done.request = Some(request);
                    done.answer = Some(why);
                    return done;
                }
            };
            done.http_status = Some(status);
            let v = verdict(path, status, &body);
            if v == Verdict::Unsupported {
                break;
            }
            if v == Verdict::Busy && started.elapsed() + RETRY_EVERY < LIMIT {
                tokio::time::sleep(RETRY_EVERY).await;
                continue;
            }
            done.outcome = if v == Verdict::Ok { "ok" } else { "refused" }.into();
            done.request = Some(request);
            done.answer = Some(recorded(&body));
            return done;
        }
    }
    done.attempts = 0;
    if done.at_unix_ns == 0 {
        done.at_unix_ns = unix_now_ns();
    }
    done
}

async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &HeaderMap,
    limit: Duration,
) -> Exchange {
    let exchange = async {
        let mut resp = client
            .post(url.clone())
            .headers(headers.clone())
            .send()
            .await?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            body.extend_from_slice(&chunk[..chunk.len().min(MAX_READ - body.len())]);
            if body.len() >= MAX_READ {
                break;
            }
        }
        Ok::<_, reqwest::Error>((status, body))
    };
    match tokio::time::timeout(limit, exchange).await {
        Ok(Ok(a)) => Ok(a),
        Ok(Err(e)) => Err(crate::net::transport_error::unreachable_why(&e, limit)),
        Err(_) => Err(format!("no answer within {:.1} s", LIMIT.as_secs_f64())),
    }
}

/// An answer's body as recorded: trimmed text, at most [`MAX_RECORDED`] bytes.
fn recorded(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let mut end = text.len().min(MAX_RECORDED);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

fn unix_now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The warning for a reset that did not happen (`None` when it did).
pub fn warning(r: &PrefixCacheReset) -> Option<String> {
    let why = match r.outcome.as_str() {
        "ok" => return None,
        "unsupported" => format!(
            "the server has no reset endpoint (tried {}{}; vLLM has it with \
             VLLM_SERVER_DEV_MODE=1, SGLang always)",
            r.tried.join(", "),
            r.http_status
                .map(|s| format!(": HTTP {s}"))
                .unwrap_or_default()
        ),
        "refused" => format!(
            "the server refused ({}: HTTP {}{} after {} attempts)",
            r.request.as_deref().unwrap_or("?"),
            r.http_status.unwrap_or(0),
            r.answer
                .as_deref()
                .filter(|a| !a.is_empty())
                .map(|a| format!(" {}", a.replace('\n', " ")))
                .unwrap_or_default(),
            r.attempts
        ),
        _ => format!(
            "{} failed ({})",
            r.request.as_deref().unwrap_or("the request"),
            r.answer.as_deref().unwrap_or("?")
        ),
    };
    Some(format!(
        "prefix cache not reset: {why}; the run starts with the cache as earlier requests left it"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_mean_what_each_server_says() {
        assert_eq!(verdict(VLLM, 200, br#"{"success":true}"#), Verdict::Ok);
        assert_eq!(verdict(VLLM, 200, br#"{"success":false}"#), Verdict::Busy);
        // vLLM before 0.10 answered an empty 200.
        assert_eq!(verdict(VLLM, 200, b""), Verdict::Ok);
        assert_eq!(
            verdict(VLLM, 404, br#"{"detail":"Not Found"}"#),
            Verdict::Unsupported
        );
        assert_eq!(verdict(SGLANG, 200, b"Cache flushed.\n"), Verdict::Ok);
        assert_eq!(verdict(SGLANG, 400, b"Cache flushed.\n"), Verdict::Busy);
        assert_eq!(verdict(SGLANG, 405, b""), Verdict::Unsupported);
        assert_eq!(verdict(VLLM, 401, b"unauthorized"), Verdict::Refused);
        assert_eq!(verdict(VLLM, 500, b"oops"), Verdict::Refused);
    }

    #[test]
    fn the_identified_server_decides_the_endpoint() {
        assert_eq!(candidates(BackendKind::Openai, Some("vllm")), [VLLM]);
        assert_eq!(candidates(BackendKind::Openai, Some("sglang")), [SGLANG]);
        assert_eq!(candidates(BackendKind::Openai, None), [VLLM, SGLANG]);
        assert_eq!(candidates(BackendKind::Sglang, None), [SGLANG, VLLM]);
        assert_eq!(
            candidates(BackendKind::Sglang, Some("llmib-sim")),
            [SGLANG, VLLM]
        );
    }

    #[test]
    fn every_failure_has_a_one_line_warning() {
        let mut r = PrefixCacheReset {
            outcome: "unsupported".into(),
            request: None,
            tried: vec![
                "POST /reset_prefix_cache".into(),
                "POST /flush_cache".into(),
            ],
            attempts: 0,
            http_status: Some(404),
            answer: None,
            at_unix_ns: 1,
            before_start_ns: 0,
        };
        let w = warning(&r).unwrap();
        assert!(
            w.contains(
                "no reset endpoint (tried POST /reset_prefix_cache, POST /flush_cache: HTTP 404"
            ),
            "{w}"
        );
        r.outcome = "refused".into();
        r.request = Some("POST /flush_cache".into());
        r.http_status = Some(400);
        r.answer = Some("Cache flushed.\nPlease check".into());
        r.attempts = 50;
        let w = warning(&r).unwrap();
        assert!(w.contains("refused (POST /flush_cache: HTTP 400 Cache flushed. Please check after 50 attempts)"), "{w}");
        r.outcome = "failed".into();
        r.answer = Some("connection refused".into());
        assert!(warning(&r).unwrap().contains("failed (connection refused)"));
        for w in ["unsupported", "refused", "failed"] {
            r.outcome = w.into();
            assert!(!warning(&r).unwrap().contains('\n'));
        }
        r.outcome = "ok".into();
        assert_eq!(warning(&r), None);
    }
}
