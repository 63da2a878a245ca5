//! The original benchmark's three servers (TGI 1.0.2, vLLM's legacy api_server, LightLLM
//! 718e6d6) as their source writes them (`tests/fixtures/reconstructed/`), served with
//! their headers over HTTP: each body ends as the record its source implies. Also the
//! count cap of `--max-model-len` against vLLM's legacy server.

use crate::common;

use common::*;
use formats::{
    Arrival, LengthDist, LogRecord, Outcome, SyntheticSpec, TokenizerInfo, TraceHeader,
    TraceRequest, TraceSpec, TraceWriter, read_log,
};
use replayer::{BackendKind, ReplayConfig, StopHandle, replay};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../fixtures/reconstructed/", $name))
    };
}

/// One request, `prompt` of `prompt_tokens` tokens, `max_tokens`, EOS ignored.
fn trace(path: &std::path::Path, prompt: &str, prompt_tokens: u32, max_tokens: u32) {
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "original".into(),
        seed: 1,
        requests: 1,
        prompt_tokens: LengthDist::Fixed {
            value: prompt_tokens,
            floor: 1,
        },
        output_tokens: LengthDist::Fixed {
            value: max_tokens,
            floor: 1,
        },
        arrival: Arrival::Burst,
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let tok = TokenizerInfo {
        kind: "test".into(),
        name: "test".into(),
        sha256: None,
    };
    let mut w = TraceWriter::create(path, &TraceHeader::new(spec, tok, 1, "test")).unwrap();
    w.write(&TraceRequest {
        id: 0,
        arrival_ns: 0,
        prompt: prompt.into(),
        prompt_token_ids: None,
        prompt_tokens,
        max_tokens,
        ignore_eos: true,
        ..Default::default()
    })
    .unwrap();
    w.finish().unwrap();
}

/// The captured headers of a reconstructed exchange, without the status line and the
/// framing headers (the raw server writes its own).
fn headers(raw: &[u8]) -> Vec<String> {
    std::str::from_utf8(raw)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("transfer-encoding"))
        .map(str::to_string)
        .collect()
}

/// Replays the one-request trace against `reply`, returning its record.
async fn one(
    backend: BackendKind,
    stream: bool,
    max_tokens: u32,
    tweak: impl FnOnce(&mut ReplayConfig),
    reply: Reply,
) -> LogRecord {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.msgpack");
    trace(&path, "Hello, my name is", 6, max_tokens);
    let (url, _) = raw_server(move |_| reply.clone()).await;
    let mut cfg = ReplayConfig::new(backend, url, dir.path().join("run.msgpack"));
    cfg.stream = stream;
    cfg.timeout = Some(std::time::Duration::from_secs(20));
    tweak(&mut cfg);
    replay(&path, cfg, StopHandle::new()).await.unwrap();
    let mut log = read_log(dir.path().join("run.msgpack")).unwrap();
    assert_eq!(log.records.len(), 1);
    log.records.remove(0)
}

fn streamed(head: &[u8], body: &[u8], split: impl Fn(&[u8]) -> Vec<&[u8]>) -> Reply {
    let h = headers(head);
    let h: Vec<&str> = h.iter().map(String::as_str).collect();
    chunked("200 OK", &h, &split(body), true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tgi_1_0_2() {
    let head = fixture!("tgi-1.0.2_generate_stream.headers");
    let r = one(
        BackendKind::Tgi,
        true,
        3,
        |_| {},
        streamed(head, fixture!("tgi-1.0.2_generate_stream.body"), events_of),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(
        (r.output_tokens, r.server_output_tokens),
        (Some(3), Some(3))
    );
    assert_eq!(r.finish_reason.as_deref(), Some("length"));
    assert_eq!(
        r.server_timing
            .get("x-compute-characters")
            .map(String::as_str),
        Some("17")
    );
    let r = one(
        BackendKind::Tgi,
        true,
        3,
        |_| {},
        streamed(
            head,
            fixture!("tgi-1.0.2_generate_stream_eos.body"),
            events_of,
        ),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.output_tokens, Some(3));
    assert_eq!(r.finish_reason.as_deref(), Some("eos_token"));
    let body = fixture!("tgi-1.0.2_generate_stream_error_after_tokens.body");
    let r = one(
        BackendKind::Tgi,
        true,
        3,
        |_| {},
        streamed(head, body, events_of),
    )
    .await;
    assert_eq!(r.outcome, Outcome::HttpError);
    assert_eq!(r.http_status, Some(200));
    assert!(r.error.as_deref().unwrap().contains("CUDA out of memory"));
    assert_eq!(
        r.output_tokens,
        Some(1),
        "the token before the error is kept"
    );
}

/// One piece per NUL- or newline-ended object, as the server flushes them.
fn objects(body: &[u8]) -> Vec<&[u8]> {
    body.split_inclusive(|&b| b == 0 || b == b'\n').collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_28873a2_and_9e37266() {
    let head = fixture!("vllm-28873a2_generate_stream.headers");
    for body in [
        &fixture!("vllm-28873a2_generate_stream.body")[..],
        fixture!("vllm-9e37266_generate_stream_newline.body"),
    ] {
        let r = one(
            BackendKind::Vllm,
            true,
            3,
            |_| {},
            streamed(head, body, objects),
        )
        .await;
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(r.output_tokens, Some(3));
        assert_eq!(r.events.len(), 3);
        assert_eq!(r.token_count_method.as_deref(), Some("assumed_max_tokens"));
        assert!(r.count_flags.is_empty());
    }
    let answer = full(
        "200 OK",
        &["content-type: application/json"],
        fixture!("vllm-28873a2_generate.body"),
    );
    let r = one(BackendKind::Vllm, false, 3, |_| {}, answer).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.output_tokens, Some(3));
    // The prompt alone, 200: a 0-token answer with its reason, not a server error.
    let prompt_only = b"{\"text\": [\"Hello, my name is\"]}\0";
    let r = one(
        BackendKind::Vllm,
        true,
        3,
        |_| {},
        chunked("200 OK", &[], &[prompt_only], true),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.output_tokens, Some(0));
    assert_eq!(r.token_count_method.as_deref(), Some("no_output"));
    assert_eq!(r.count_flags, vec!["prompt_only".to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vllm_count_capped_by_max_model_len() {
    // max_model_len 8, prompt 6 tokens: vLLM 0.1.x stops once prompt + output > 8, at 3
    // output tokens, whatever max_tokens (10) says.
    let body = fixture!("vllm-28873a2_generate_stream.body");
    let head = fixture!("vllm-28873a2_generate_stream.headers");
    let r = one(
        BackendKind::Vllm,
        true,
        10,
        |c| c.max_model_len = Some(8),
        streamed(head, body, objects),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.max_tokens, 10);
    assert_eq!(r.output_tokens, Some(3));
    assert_eq!(r.count_flags, vec!["capped_at_max_model_len".to_string()]);
    // Without the limit, the contract's 10 are assumed (and nothing is flagged).
    let r = one(
        BackendKind::Vllm,
        true,
        10,
        |_| {},
        streamed(head, body, objects),
    )
    .await;
    assert_eq!(r.output_tokens, Some(10));
    assert!(r.count_flags.is_empty());
    // A limit that does not bind flags nothing.
    let r = one(
        BackendKind::Vllm,
        true,
        3,
        |c| c.max_model_len = Some(4096),
        streamed(head, body, objects),
    )
    .await;
    assert_eq!(r.output_tokens, Some(3));
    assert!(r.count_flags.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightllm_718e6d6() {
    let head = fixture!("lightllm-718e6d6_generate_stream.headers");
    let body = fixture!("lightllm-718e6d6_generate_stream.body");
    let r = one(
        BackendKind::Lightllm,
        true,
        3,
        |_| {},
        streamed(head, body, events_of),
    )
    .await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.output_tokens, Some(3));
    assert_eq!(r.token_count_method.as_deref(), Some("per_event"));
    // Under load the server drops events; ignore_eos still guarantees 3 tokens.
    let pieces = events_of(body);
    let lost = chunked("200 OK", &[], &[pieces[0], pieces[2]], true);
    let r = one(BackendKind::Lightllm, true, 3, |_| {}, lost).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.events.len(), 2);
    assert_eq!(r.output_tokens, Some(3));
    assert_eq!(r.token_count_method.as_deref(), Some("assumed_max_tokens"));
    assert_eq!(r.count_flags, vec!["events_lost".to_string()]);
    let answer = full("200 OK", &[], fixture!("lightllm-718e6d6_generate.body"));
    let r = one(BackendKind::Lightllm, false, 3, |_| {}, answer).await;
    assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    assert_eq!(r.output_tokens, Some(3));
}

/// Against the simulated LightLLM, whose null profile makes every token ready at once
/// (so it sends only the latest of each 16): counted by contract, flagged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lightllm_simulated_lost_events() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), 3, 1_000_000, 4, 40);
    let profile = simulator::Profile::builtin("null").unwrap();
    let sim = simulator::start(simulator::SimConfig::new(
        simulator::Dialect::Lightllm,
        profile,
    ))
    .await
    .unwrap();
    let out = dir.path().join("run.msgpack");
    let cfg = ReplayConfig::new(BackendKind::Lightllm, sim.base_url(), out.clone());
    replay(&trace, cfg, StopHandle::new()).await.unwrap();
    sim.shutdown().await.unwrap();
    for r in read_log(&out).unwrap().records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_eq!(r.events.len(), 3, "tokens 15, 31 and 39");
        assert_eq!(r.output_tokens, Some(40));
        assert_eq!(r.token_count_method.as_deref(), Some("assumed_max_tokens"));
        assert_eq!(r.count_flags, vec!["events_lost".to_string()]);
    }
}
