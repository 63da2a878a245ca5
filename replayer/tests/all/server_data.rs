//! Server data the client must survive: captured real-server bytes served verbatim,
//! error bodies of every shape, malformed events, wrong types, oversized lines, early
//! close, garbage instead of HTTP. Every request must end as exactly one record with the
//! right outcome; nothing may crash the client.

use crate::common;

use common::*;
use formats::{Outcome, read_log};
use replayer::{BackendKind, ReplayConfig, StopHandle, replay};

const LLAMA_STREAM: &[u8] = include_bytes!("../fixtures/llama.cpp/completions_stream.body");
const TF_STREAM: &[u8] = include_bytes!("../fixtures/transformers-serve/completions_stream.body");
const TF_IGNORE_EOS: &[u8] =
    include_bytes!("../fixtures/transformers-serve/completions_stream_ignore_eos.body");
const TF_CHAT_500: &[u8] = include_bytes!("../fixtures/transformers-serve/chat_stream.body");
const LLAMA_TOO_LONG: &[u8] =
    include_bytes!("../fixtures/llama.cpp/error_prompt_too_long_stream.body");

async fn run_one(
    backend: BackendKind,
    stream: bool,
    reply: impl Fn(usize) -> Reply + Send + Sync + 'static,
    n: u64,
) -> (formats::RunLog, Seen) {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), n, 0, 4, 8);
    let (url, seen) = raw_server(reply).await;
    let mut cfg = ReplayConfig::new(backend, url, dir.path().join("run.msgpack"));
    cfg.stream = stream;
    cfg.timeout = Some(std::time::Duration::from_secs(20));
    let summary = replay(&trace, cfg, StopHandle::new()).await.unwrap();
    assert_eq!(summary.internal_anomalies, 0);
    let log = read_log(dir.path().join("run.msgpack")).unwrap();
    assert!(log.has_trailer());
    assert_eq!(log.records.len() as u64, n);
    let mut ids: Vec<u64> = log.records.iter().map(|r| r.id).collect();
    ids.sort();
    assert_eq!(ids, (0..n).collect::<Vec<_>>());
    (log, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_llama_cpp_stream_event_per_chunk() {
    let (log, seen) = run_one(
        BackendKind::Openai,
        true,
        |_| {
            chunked(
                "200 OK",
                &["Content-Type: text/event-stream"],
                &events_of(LLAMA_STREAM),
                true,
            )
        },
        3,
    )
    .await;
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(r.output_tokens, Some(8));
        assert_eq!(r.events.len(), 8);
        assert_eq!(r.token_count_method.as_deref(), Some("final_usage"));
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
        assert!(r.first_byte_ns.unwrap() >= r.dispatched_ns.unwrap());
        assert!(r.events.t_ns.windows(2).all(|w| w[0] <= w[1]));
    }
    // Every request carries its trace id, and the body the non-standard fields.
    let seen = seen.lock().unwrap();
    let mut ids: Vec<String> = seen
        .iter()
        .map(|(h, _)| {
            h.lines()
                .find_map(|l| l.strip_prefix("x-request-id: "))
                .unwrap()
                .to_string()
        })
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["0", "1", "2"]);
    let body: serde_json::Value = serde_json::from_slice(&seen[0].1).unwrap();
    assert_eq!(body["ignore_eos"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_stream_in_odd_pieces_and_without_done() {
    // The transformers capture (no [DONE]) cut into 7-byte pieces.
    let pieces: Vec<Vec<u8>> = TF_STREAM.chunks(7).map(|c| c.to_vec()).collect();
    let (log, _) = run_one(
        BackendKind::Openai,
        true,
        move |_| {
            let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
            chunked("200 OK", &[], &refs, true)
        },
        2,
    )
    .await;
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(r.output_tokens, Some(8));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies_of_every_shape() {
    let cases: Vec<(Reply, &str, u16)> = vec![
        (
            full("422 Unprocessable Entity", &[], TF_IGNORE_EOS),
            "Unexpected fields",
            422,
        ),
        (
            full(
                "500 Internal Server Error",
                &["Content-Type: text/plain"],
                TF_CHAT_500,
            ),
            "Internal Server Error",
            500,
        ),
        (
            full("400 Bad Request", &[], LLAMA_TOO_LONG),
            "exceeds the available context size",
            400,
        ),
        (
            full("503 Service Unavailable", &[], b""),
            "(empty body)",
            503,
        ),
    ];
    for (reply, text, status) in cases {
        let (log, _) = run_one(BackendKind::Openai, true, move |_| reply.clone(), 1).await;
        let r = &log.records[0];
        assert_eq!(r.outcome, Outcome::HttpError);
        assert_eq!(r.http_status, Some(status));
        assert!(r.error.as_deref().unwrap().contains(text), "{:?}", r.error);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_streams_are_stream_errors() {
    let token = b"data:{\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":0,\"special\":false},\"generated_text\":null,\"details\":null}\n\n".to_vec();
    let huge = vec![b'x'; replayer::MAX_EVENT_BYTES + 10];
    let cases: Vec<(Vec<Vec<u8>>, bool, &str)> = vec![
        (
            vec![token.clone(), b"data:{not json\n\n".to_vec()],
            true,
            "malformed",
        ),
        (
            vec![token.clone(), b"data:{\"token\":5}\n\n".to_vec()],
            true,
            "malformed",
        ),
        (
            vec![token.clone(), b"data:".to_vec(), huge],
            true,
            "bounded buffer",
        ),
        (vec![token.clone(), token.clone()], false, ""),
        (
            vec![token.clone(), token.clone()],
            true,
            "before its final event",
        ),
    ];
    for (pieces, terminate, text) in cases {
        let (log, _) = run_one(
            BackendKind::Tgi,
            true,
            move |_| {
                let refs: Vec<&[u8]> = pieces.iter().map(|p| p.as_slice()).collect();
                chunked("200 OK", &[], &refs, terminate)
            },
            2,
        )
        .await;
        for r in &log.records {
            assert_eq!(r.outcome, Outcome::StreamError, "{:?}", r.error);
            assert!(
                r.error.as_deref().unwrap().contains(text),
                "{:?} lacks {text}",
                r.error
            );
            assert!(r.error.as_ref().unwrap().len() <= 520);
            // Partial data is kept.
            assert!(!r.events.is_empty());
            assert_eq!(r.output_tokens, Some(r.events.len() as u32));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_early_close() {
    for reply in [
        Reply::Raw(vec![b"this is not http\r\n\r\n".to_vec()]),
        Reply::Raw(vec![]),
        Reply::Raw(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"generated".to_vec(),
        ]),
    ] {
        let (log, _) = run_one(BackendKind::Tgi, false, move |_| reply.clone(), 2).await;
        for r in &log.records {
            assert_eq!(r.outcome, Outcome::StreamError, "{:?}", r.error);
            assert!(r.error.is_some());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tgi_timing_headers_and_details() {
    let body = br#"{"generated_text":"abc","details":{"finish_reason":"eos_token","generated_tokens":3,"seed":null,"prefill":[],"tokens":[]}}"#;
    let (log, _) = run_one(
        BackendKind::Tgi,
        false,
        |_| {
            full(
                "200 OK",
                &["x-queue-time: 12", "x-inference-time: 40", "x-unrelated: 1"],
                body,
            )
        },
        1,
    )
    .await;
    let r = &log.records[0];
    assert_eq!(r.outcome, Outcome::Ok);
    assert_eq!(
        r.server_timing.get("x-queue-time").map(String::as_str),
        Some("12")
    );
    assert_eq!(
        r.server_timing.get("x-inference-time").map(String::as_str),
        Some("40")
    );
    assert!(!r.server_timing.contains_key("x-unrelated"));
    // Early stop is visible: fewer tokens than asked, and why.
    assert_eq!(r.output_tokens, Some(3));
    assert_eq!(r.max_tokens, 8);
    assert_eq!(r.finish_reason.as_deref(), Some("eos_token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_errors_and_endpoint_check() {
    // A port nothing listens on.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let err = replayer::check_endpoint(&url, std::time::Duration::from_secs(2))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains(&url), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), 3, 0, 4, 8);
    let cfg = ReplayConfig::new(BackendKind::Vllm, url, dir.path().join("run.msgpack"));
    let s = replay(&trace, cfg, StopHandle::new()).await.unwrap();
    assert_eq!(s.count(Outcome::ConnectError), 3);
    let log = read_log(dir.path().join("run.msgpack")).unwrap();
    assert!(
        log.records
            .iter()
            .all(|r| r.outcome == Outcome::ConnectError && r.error.is_some())
    );
}
