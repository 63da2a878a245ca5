//! Request life-cycle cases: client gone, preemption in real time, TGI stream faults,
//! slow first byte, the tiny profile's speed.

use crate::common;
use std::time::{Duration, Instant};

use common::*;
use simulator::truth::{Outcome, read_truth_log};
use simulator::{Dialect, Faults, Policy, Profile, SimConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn client_gone_frees_the_request_and_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    // Slow decode (20 ms per step) so the client leaves mid-stream; one request at a time.
    let text = include_str!("../../profiles/tiny.toml")
        .replace("decode_base_us = 500.0", "decode_base_us = 20000.0")
        .replace("max_batch_size = 128", "max_batch_size = 1");
    let mut cfg = SimConfig::new(Dialect::Tgi, Profile::parse(&text, "t").unwrap());
    cfg.truth_log = Some(path.clone());
    let s = simulator::start(cfg).await.unwrap();
    let body = r#"{"inputs":"a b","parameters":{"max_new_tokens":1000}}"#;
    let mut c = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    let req = format!(
        "POST /generate_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(req.as_bytes()).await.unwrap();
    // Read until at least two events arrived, then leave.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.windows(2).filter(|w| w == b"\n\n").count() < 2 {
        let n = c.read(&mut buf).await.unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
    }
    drop(c);
    // The server still serves, and the abandoned request no longer occupies the engine's
    // only batch slot: a new request completes long before the 1000 tokens x 20 ms = 20 s
    // the abandoned one would have held it.
    let t0 = Instant::now();
    let r = post(
        &s,
        "/generate",
        r#"{"inputs":"a","parameters":{"max_new_tokens":2}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    s.shutdown().await.unwrap();
    let recs = read_truth_log(&path).unwrap();
    let gone = recs.iter().find(|r| r.route == "/generate_stream").unwrap();
    assert_eq!(gone.outcome, Some(Outcome::ClientGone));
    assert!(gone.output_tokens >= 2 && gone.output_tokens < 1000);
}

#[tokio::test]
async fn vllm_preemption_in_real_time_is_logged() {
    // 4 blocks of 16 tokens: two 16 + 40 token requests cannot both grow.
    let text = include_str!("../../profiles/tiny.toml")
        .replace("kv_capacity_tokens = 65536", "kv_capacity_tokens = 64")
        .replace("max_input_length = 1024", "max_input_length = 30")
        .replace("max_total_tokens = 2048", "max_total_tokens = 60")
        .replace("[engine]", "[engine]\nwatermark = 0.0");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let mut cfg = SimConfig::new(Dialect::Vllm, Profile::parse(&text, "t").unwrap());
    cfg.truth_log = Some(path.clone());
    let s = simulator::start(cfg).await.unwrap();
    let body = format!(
        r#"{{"prompt":"{}","max_tokens":40,"ignore_eos":true,"stream":true}}"#,
        prompt(16)
    );
    let (a, b) = tokio::join!(post(&s, "/generate", &body), post(&s, "/generate", &body));
    for r in [a, b] {
        // Preemption is invisible to the client: still exactly 40 tokens, in order.
        assert_eq!(r.text().matches('\0').count(), 40);
    }
    s.shutdown().await.unwrap();
    let recs = read_truth_log(&path).unwrap();
    assert!(
        recs.iter().map(|r| r.preemptions).sum::<u32>() >= 1,
        "{recs:?}"
    );
    assert!(
        recs.iter()
            .all(|r| r.output_tokens == 40 && r.outcome == Some(Outcome::Ok))
    );
}

#[tokio::test]
async fn tgi_stream_overload_is_an_error_event_and_slow_first_byte_delays() {
    let mut cfg = SimConfig::new(Dialect::Tgi, Profile::builtin("null").unwrap());
    cfg.faults = Faults {
        http_429: 1.0,
        ..Default::default()
    };
    let s = simulator::start(cfg).await.unwrap();
    let r = post(
        &s,
        "/generate_stream",
        r#"{"inputs":"a","parameters":{"max_new_tokens":3}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.text(),
        "data:{\"error\":\"Model is overloaded\",\"error_type\":\"overloaded\"}\n\n"
    );
    let r = post(
        &s,
        "/generate",
        r#"{"inputs":"a","parameters":{"max_new_tokens":3}}"#,
    )
    .await;
    assert_eq!(r.status, 429);
    assert_eq!(
        r.json(),
        serde_json::json!({"error":"Model is overloaded","error_type":"overloaded"})
    );
    s.shutdown().await.unwrap();

    let mut cfg = SimConfig::new(Dialect::Openai, Profile::builtin("null").unwrap());
    cfg.faults = Faults {
        slow_first_byte: 1.0,
        slow_first_byte_ms: 150,
        ..Default::default()
    };
    let s = simulator::start(cfg).await.unwrap();
    let t0 = Instant::now();
    let r = post(
        &s,
        "/v1/completions",
        r#"{"prompt":"a","max_tokens":3,"stream":true}"#,
    )
    .await;
    assert!(
        t0.elapsed() >= Duration::from_millis(150),
        "headers delayed by the fault"
    );
    assert_eq!(sse_data(&r.text()).len(), 4);
    s.shutdown().await.unwrap();
}

#[test]
fn tiny_profile_runs_a_1000_request_burst_in_seconds() {
    let p = Profile::builtin("tiny").unwrap();
    let reqs = simulator::calibration::throughput_workload(512, 3);
    for policy in [Policy::Tgi, Policy::Vllm, Policy::Lightllm] {
        let (res, _) = simulator::simulate(p.engine(policy).unwrap(), policy, &reqs);
        let span = res.iter().map(|r| r.finished_ns).max().unwrap();
        assert!(span < 5_000_000_000, "{policy}: {span} ns");
        assert!(
            res.iter()
                .zip(&reqs)
                .all(|(r, q)| r.output_tokens == q.max_tokens)
        );
    }
}

#[tokio::test]
async fn null_profile_paces_tokens_at_its_interval() {
    let text = include_str!("../../profiles/null.toml")
        .replace("inter_token_us = 0", "inter_token_us = 4000");
    let s = simulator::start(SimConfig::new(
        Dialect::Lightllm,
        Profile::parse(&text, "t").unwrap(),
    ))
    .await
    .unwrap();
    let t0 = Instant::now();
    let r = post(
        &s,
        "/generate_stream",
        r#"{"inputs":"a","parameters":{"max_new_tokens":5}}"#,
    )
    .await;
    // 5 tokens, each one interval after the previous: at least 20 ms in all.
    assert!(
        t0.elapsed() >= Duration::from_millis(20),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(sse_data(&r.text()).len(), 5);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn null_profile_waits_first_token_us_before_the_first_token_only() {
    let text = include_str!("../../profiles/null.toml").replace(
        "inter_token_us = 0",
        "inter_token_us = 0\nfirst_token_us = 30000",
    );
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.jsonl");
    let mut cfg = SimConfig::new(Dialect::Tgi, Profile::parse(&text, "t").unwrap());
    cfg.truth_log = Some(truth.clone());
    let s = simulator::start(cfg).await.unwrap();
    let r = post(
        &s,
        "/generate_stream",
        r#"{"inputs":"a","parameters":{"max_new_tokens":50}}"#,
    )
    .await;
    assert_eq!(sse_data(&r.text()).len(), 50);
    s.shutdown().await.unwrap();
    let recs = simulator::truth::read_truth_log(&truth).unwrap();
    let t = &recs[0];
    let ttft = t.first_token_ns.unwrap() - t.received_ns;
    assert!(ttft >= 30_000_000, "TTFT {ttft} ns");
    // The other 49 tokens come without any wait: the whole stream takes less than the
    // first wait again (a per-token wait of 30 ms would take 1.5 s).
    let rest = t.token_ns[49] - t.token_ns[0];
    assert!(rest < 1_470_000_000, "rest {rest} ns");
}
