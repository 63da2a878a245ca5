//! Truth log contents, faults (seeded counts, each in the truth log), real-time engine.

use crate::common;
use common::*;
use simulator::truth::{Outcome, read_truth_log};
use simulator::{Dialect, Faults, Profile, SimConfig};

#[tokio::test]
async fn truth_log_records_every_request_on_one_clock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truth.jsonl");
    let mut cfg = SimConfig::new(Dialect::Tgi, Profile::builtin("tiny").unwrap());
    cfg.truth_log = Some(path.clone());
    let s = simulator::start(cfg).await.unwrap();
    let body = format!(
        r#"{{"inputs":"{}","parameters":{{"max_new_tokens":6}}}}"#,
        prompt(10)
    );
    let r = request(
        &s,
        "POST",
        "/generate_stream",
        &body,
        Some("application/json"),
        &[("X-Request-Id", "req-1")],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = request(
        &s,
        "POST",
        "/generate",
        "{bad",
        Some("application/json"),
        &[("X-Request-Id", "req-2")],
    )
    .await;
    assert_eq!(r.status, 400);
    s.shutdown().await.unwrap();
    let recs = read_truth_log(&path).unwrap();
    assert_eq!(recs.len(), 2);
    let ok = recs
        .iter()
        .find(|r| r.request_id.as_deref() == Some("req-1"))
        .unwrap();
    assert_eq!(ok.outcome, Some(Outcome::Ok));
    assert_eq!(
        (ok.dialect.as_str(), ok.route.as_str(), ok.stream),
        ("tgi", "/generate_stream", true)
    );
    assert_eq!(
        (ok.prompt_tokens, ok.max_tokens, ok.output_tokens),
        (10, 6, 6)
    );
    assert_eq!(ok.token_ns.len(), 6);
    let adm = ok.admitted_ns.unwrap();
    assert!(ok.received_ns <= adm && adm <= ok.first_token_ns.unwrap());
    assert_eq!(ok.first_token_ns, Some(ok.token_ns[0]));
    assert!(ok.token_ns.windows(2).all(|w| w[0] <= w[1]));
    assert!(*ok.token_ns.last().unwrap() <= ok.finished_ns);
    assert_eq!(ok.finish_reason.as_deref(), Some("length"));
    let bad = recs
        .iter()
        .find(|r| r.request_id.as_deref() == Some("req-2"))
        .unwrap();
    assert_eq!(bad.outcome, Some(Outcome::BadRequest));
    assert_eq!(bad.http_status, 400);
    // The raw line has the documented field names.
    let line = std::fs::read_to_string(&path).unwrap();
    for f in [
        "request_id",
        "dialect",
        "route",
        "received_ns",
        "admitted_ns",
        "first_token_ns",
        "token_ns",
        "finished_ns",
        "prompt_tokens",
        "output_tokens",
        "outcome",
        "fault",
        "preemptions",
    ] {
        assert!(line.contains(&format!("\"{f}\":")), "{f}");
    }
}

#[tokio::test]
async fn faults_are_seeded_counted_and_logged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truth.jsonl");
    let mut cfg = SimConfig::new(Dialect::Openai, Profile::builtin("null").unwrap());
    cfg.truth_log = Some(path.clone());
    cfg.seed = 7;
    cfg.faults = Faults {
        http_429: 0.1,
        http_500: 0.1,
        http_503: 0.1,
        disconnect: 0.1,
        stall: 0.1,
        stall_ms: 1,
        slow_first_byte: 0.1,
        slow_first_byte_ms: 1,
        ..Faults::default()
    };
    let s = simulator::start(cfg).await.unwrap();
    let n = 300;
    let mut statuses = std::collections::BTreeMap::new();
    let mut cut = 0;
    for _ in 0..n {
        let r = post(
            &s,
            "/v1/completions",
            r#"{"prompt":"a b c","max_tokens":8,"stream":true}"#,
        )
        .await;
        *statuses.entry(r.status).or_insert(0) += 1;
        if r.status == 200 && !r.complete {
            cut += 1;
        }
    }
    s.shutdown().await.unwrap();
    let recs = read_truth_log(&path).unwrap();
    assert_eq!(recs.len(), n);
    let count = |f: &str| {
        recs.iter()
            .filter(|r| r.fault.as_deref() == Some(f))
            .count()
    };
    // Binomial(300, 0.1): mean 30, sd 5.2; allow 4 sd.
    for f in [
        "http_429",
        "http_500",
        "http_503",
        "disconnect",
        "stall",
        "slow_first_byte",
    ] {
        let c = count(f);
        assert!((9..=51).contains(&c), "{f}: {c}");
    }
    assert_eq!(statuses.get(&429).copied().unwrap_or(0), count("http_429"));
    assert_eq!(statuses.get(&500).copied().unwrap_or(0), count("http_500"));
    assert_eq!(statuses.get(&503).copied().unwrap_or(0), count("http_503"));
    assert_eq!(
        cut,
        count("disconnect"),
        "every disconnect fault cuts the stream"
    );
    for r in &recs {
        let expected = match r.fault.as_deref() {
            Some("http_429") => Outcome::Http429,
            Some("http_500") => Outcome::Http500,
            Some("http_503") => Outcome::Http503,
            Some("disconnect") => Outcome::Disconnect,
            _ => Outcome::Ok,
        };
        assert_eq!(r.outcome, Some(expected), "{r:?}");
        if r.fault.as_deref() == Some("disconnect") {
            assert!(r.output_tokens < 8);
        }
    }
    // Same seed, same faults in the same order.
    let picks: Vec<_> = (0..n as u64)
        .map(|i| {
            Faults {
                http_429: 0.1,
                http_500: 0.1,
                http_503: 0.1,
                disconnect: 0.1,
                stall: 0.1,
                stall_ms: 1,
                slow_first_byte: 0.1,
                slow_first_byte_ms: 1,
                ..Faults::default()
            }
            .pick(7, i, 8)
            .map(|f| f.name())
        })
        .collect();
    let mut by_seq = recs.clone();
    by_seq.sort_by_key(|r| r.seq);
    let logged: Vec<_> = by_seq.iter().map(|r| r.fault.as_deref()).collect();
    assert_eq!(picks, logged);
}

#[tokio::test]
async fn realtime_engine_queues_when_the_batch_is_full() {
    // max_batch_size 2: of 4 concurrent requests, two must wait for the first two.
    let mut text = include_str!("../../profiles/tiny.toml")
        .replace("max_batch_size = 128", "max_batch_size = 2");
    text = text.replace("decode_base_us = 500.0", "decode_base_us = 2000.0");
    let profile = Profile::parse(&text, "test").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truth.jsonl");
    let mut cfg = SimConfig::new(Dialect::Vllm, profile);
    cfg.truth_log = Some(path.clone());
    let s = simulator::start(cfg).await.unwrap();
    let body = r#"{"prompt":"a b c","max_tokens":10,"ignore_eos":true,"stream":true}"#;
    let (a, b, c, d) = tokio::join!(
        post(&s, "/generate", body),
        post(&s, "/generate", body),
        post(&s, "/generate", body),
        post(&s, "/generate", body)
    );
    for r in [a, b, c, d] {
        assert_eq!(r.text().matches('\0').count(), 10);
    }
    s.shutdown().await.unwrap();
    let mut recs = read_truth_log(&path).unwrap();
    recs.sort_by_key(|r| r.admitted_ns);
    assert_eq!(recs.len(), 4);
    // admitted_ns is the engine's step-start time. A third request can join only after
    // one of the first two produced its 10 tokens: 9 decode steps of >= 2 ms after their
    // admission (the real-time driver may catch up at most 5 ms after a late wake-up).
    let early = recs[0]
        .admitted_ns
        .unwrap()
        .min(recs[1].admitted_ns.unwrap());
    for late in &recs[2..] {
        let waited = late.admitted_ns.unwrap() - early;
        assert!(
            waited >= 10_000_000,
            "admitted only {waited} ns after the first: {late:?}"
        );
    }
}
