//! The SGLang and llama.cpp native backends over HTTP against server bytes served
//! verbatim (the real llama-server capture, bodies reconstructed from SGLang's source):
//! the request each sends, and one record per request with the right outcome and counts.

use crate::common;

use common::*;
use formats::{Outcome, read_log};
use replayer::{BackendKind, ReplayConfig, StopHandle, replay};

const LLAMA_NATIVE: &[u8] = include_bytes!("../fixtures/llama.cpp/native_completion_stream.body");
const LLAMA_TOO_LONG: &[u8] =
    include_bytes!("../fixtures/llama.cpp/error_prompt_too_long_stream.body");
const SGLANG_STREAM: &[u8] =
    include_bytes!("../fixtures/reconstructed/sglang_generate_stream.body");
const SGLANG_ANSWER: &[u8] = include_bytes!("../fixtures/reconstructed/sglang_generate.body");
const SGLANG_ERROR: &[u8] =
    include_bytes!("../fixtures/reconstructed/sglang_generate_stream_error.body");

async fn run(
    backend: BackendKind,
    tweak: impl FnOnce(&mut ReplayConfig),
    reply: impl Fn(usize) -> Reply + Send + Sync + 'static,
    n: u64,
) -> (formats::RunLog, Seen) {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), n, 0, 4, 8);
    let (url, seen) = raw_server(reply).await;
    let mut cfg = ReplayConfig::new(backend, url, dir.path().join("run.msgpack"));
    cfg.timeout = Some(std::time::Duration::from_secs(20));
    tweak(&mut cfg);
    let summary = replay(&trace, cfg, StopHandle::new()).await.unwrap();
    assert_eq!(summary.internal_anomalies, 0);
    let log = read_log(dir.path().join("run.msgpack")).unwrap();
    assert_eq!(log.records.len() as u64, n);
    (log, seen)
}

/// The head and JSON body of the request for trace id 0.
fn request_body(seen: &Seen) -> (String, serde_json::Value) {
    let seen = seen.lock().unwrap();
    let (head, body) = seen
        .iter()
        .find(|(h, _)| h.lines().any(|l| l == "x-request-id: 0"))
        .expect("request 0 seen");
    (head.clone(), serde_json::from_slice(body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamacpp_captured_native_stream() {
    let (log, seen) = run(
        BackendKind::Llamacpp,
        |_| {},
        |_| {
            chunked(
                "200 OK",
                &["Content-Type: text/event-stream", "Server: llama.cpp"],
                &events_of(LLAMA_NATIVE),
                true,
            )
        },
        2,
    )
    .await;
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(r.events.tokens, vec![1; 8]);
        assert_eq!(r.output_tokens, Some(8));
        assert_eq!(r.server_output_tokens, Some(8));
        assert_eq!(r.server_prompt_tokens, Some(14));
        assert_eq!(r.token_count_method.as_deref(), Some("usage_delta"));
        assert_eq!(r.finish_reason.as_deref(), Some("limit"));
    }
    let (head, body) = request_body(&seen);
    assert!(head.starts_with("POST /completion HTTP/1.1"), "{head}");
    assert_eq!(
        body,
        serde_json::json!({"prompt": "w0 w1 w2 w3", "n_predict": 8, "ignore_eos": true, "stream": true})
    );
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["ignore_eos", "n_predict", "prompt", "stream"]);
    assert_eq!(body["n_predict"], 8);
    assert_eq!(body["ignore_eos"], true);
    assert_eq!(body["stream"], true);
    assert!(body["prompt"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn llamacpp_token_ids_and_context_error() {
    let (log, seen) = run(
        BackendKind::Llamacpp,
        |c| c.fields.prompt_token_ids = true,
        |_| full("400 Bad Request", &[], LLAMA_TOO_LONG),
        1,
    )
    .await;
    let r = &log.records[0];
    assert_eq!(r.outcome, Outcome::HttpError);
    assert_eq!(r.http_status, Some(400));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .contains("exceeds the available context size")
    );
    let (_, body) = request_body(&seen);
    assert_eq!(body["prompt"], serde_json::json!([0, 1, 2, 3]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sglang_stream_answer_and_error_event() {
    let (log, seen) = run(
        BackendKind::Sglang,
        |_| {},
        |_| {
            chunked(
                "200 OK",
                &["Content-Type: text/event-stream; charset=utf-8"],
                &events_of(SGLANG_STREAM),
                true,
            )
        },
        2,
    )
    .await;
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(r.events.tokens, vec![1, 1, 1]);
        assert_eq!(r.token_count_method.as_deref(), Some("usage_delta"));
        assert_eq!(r.server_prompt_tokens, Some(6));
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
    }
    let (head, body) = request_body(&seen);
    assert!(head.starts_with("POST /generate HTTP/1.1"), "{head}");
    assert_eq!(
        body,
        serde_json::json!({"text": "w0 w1 w2 w3", "sampling_params": {"max_new_tokens": 8, "ignore_eos": true}, "stream": true})
    );
    // Not streamed, with token ids.
    let (log, seen) = run(
        BackendKind::Sglang,
        |c| {
            c.stream = false;
            c.fields.prompt_token_ids = true;
        },
        |_| full("200 OK", &["Content-Type: application/json"], SGLANG_ANSWER),
        1,
    )
    .await;
    let r = &log.records[0];
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.output_tokens, Some(3));
    assert_eq!(r.token_count_method.as_deref(), Some("final_usage"));
    let (_, body) = request_body(&seen);
    assert_eq!(body["input_ids"], serde_json::json!([0, 1, 2, 3]));
    assert_eq!(body["stream"], false);
    assert!(body.get("text").is_none());
    // A ValueError inside the 200 stream is the server's error, not a success.
    let (log, _) = run(
        BackendKind::Sglang,
        |_| {},
        |_| chunked("200 OK", &[], &events_of(SGLANG_ERROR), true),
        1,
    )
    .await;
    let r = &log.records[0];
    assert_eq!(r.outcome, Outcome::HttpError);
    assert_eq!(r.http_status, Some(200));
    assert!(
        r.error
            .as_deref()
            .unwrap()
            .starts_with("Requested token count exceeds")
    );
}
