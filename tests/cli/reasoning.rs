//! Reasoning models end to end, through the real binaries: `llmib sim --dialect openai
//! --reasoning-tokens 16` in its own process (truth log on), `llmib replay --backend
//! openai-chat`, `llmib analyze --format json`. Half the requests may answer (24 output
//! tokens: 16 reasoning, 8 answer), half reach their length limit while reasoning (10
//! tokens). The records carry both first times and the reasoning counts, matching the
//! truth log request by request, and the analysis reports TTFT and time to first answer
//! token (`ttft_s`, `ttfat_s`, each with mean/p50/p90/p99), the reasoning tokens, and
//! the requests that never answered.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use formats::{LengthDist, Outcome, read_log};
use serde_json::Value;
use simulator::truth::read_truth_log;

use crate::common;

use common::{LLMIB, SimProcess};
const REQUESTS: u64 = 12;
const REASONING: u32 = 16;

/// Output tokens of request `id`: even ids answer after reasoning, odd ids do not.
fn max_tokens(id: u64) -> u32 {
    if id.is_multiple_of(2) { 24 } else { 10 }
}

fn write_trace(path: &Path) {
    let output = LengthDist::Uniform {
        lo: 10,
        hi: 24,
        floor: 1,
    };
    let prompt = "why is the sky blue";
    common::write_trace(
        path, "thinking", REQUESTS, 20_000_000, prompt, output, max_tokens,
    );
}

/// `llmib sim` streaming reasoning first, with a truth log.
fn start_sim(truth: &Path) -> SimProcess {
    let n = REASONING.to_string();
    let truth = truth.to_str().unwrap();
    SimProcess::start("openai", &["--reasoning-tokens", &n, "--truth-log", truth])
}

fn run(args: &[&str]) -> std::process::Output {
    let o = Command::new(LLMIB).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "llmib {args:?}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

fn stat_keys(v: &Value, key: &str, count: u64) {
    let s = &v[key];
    assert_eq!(s["count"], count, "{key}: {s}");
    for k in ["mean", "p50", "p90", "p99"] {
        assert!(s[k].as_f64().is_some_and(|x| x > 0.0), "{key}.{k}: {s}");
    }
}

#[test]
fn reasoning_stream_gives_ttft_and_ttfat() {
    let dir = tempfile::tempdir().unwrap();
    let (trace, truth) = (dir.path().join("t.msgpack"), dir.path().join("truth.jsonl"));
    write_trace(&trace);
    let sim = start_sim(&truth);
    let log = dir.path().join("run.msgpack");
    run(&[
        "replay",
        trace.to_str().unwrap(),
        "--backend",
        "openai-chat",
        "--endpoint",
        &sim.url,
        "--continuous-usage",
        "-o",
        log.to_str().unwrap(),
        "--quiet",
    ]);
    sim.stop();

    // Records against the truth log, by request id.
    let truth: HashMap<String, simulator::truth::TruthRecord> = read_truth_log(&truth)
        .unwrap()
        .into_iter()
        .map(|t| (t.request_id.clone().unwrap(), t))
        .collect();
    let records = read_log(&log).unwrap().records;
    assert_eq!(records.len() as u64, REQUESTS);
    for r in &records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        let t = &truth[&r.id.to_string()];
        let answers = max_tokens(r.id) > REASONING;
        let reasoning = max_tokens(r.id).min(REASONING);
        assert_eq!(t.reasoning_tokens, reasoning);
        assert_eq!(t.first_answer_ns.is_some(), answers);
        // Continuous usage counts every event exactly: the reasoning count is the truth's.
        assert_eq!(r.token_count_method.as_deref(), Some("usage_delta"));
        assert_eq!(r.output_tokens, Some(max_tokens(r.id)));
        assert_eq!(r.reasoning_tokens, Some(reasoning));
        assert_eq!(r.server_reasoning_tokens, Some(reasoning));
        let first = r.first_reasoning_ns.expect("reasoning streamed first");
        assert_eq!(Some(first), r.events.t_ns.first().copied());
        assert_eq!(r.first_answer_ns.is_some(), answers, "request {}", r.id);
        if let Some(a) = r.first_answer_ns {
            assert!(a >= first);
        }
    }

    let out = run(&["analyze", log.to_str().unwrap(), "--format", "json"]);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &v["runs"][0];
    stat_keys(m, "ttft_s", REQUESTS);
    stat_keys(m, "ttfat_s", REQUESTS / 2);
    assert!(m["ttfat_s"]["mean"].as_f64() >= m["ttft_s"]["mean"].as_f64());
    let r = &m["reasoning"];
    assert_eq!(r["requests"], REQUESTS);
    assert_eq!(r["without_answer"], REQUESTS / 2);
    let tokens: u64 = (0..REQUESTS)
        .map(|i| max_tokens(i).min(REASONING) as u64)
        .sum();
    assert_eq!(r["tokens_client"], tokens);
    assert_eq!(r["tokens_server"], tokens);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("ended before any answer text"), "{stderr}");

    let out = run(&["analyze", log.to_str().unwrap()]);
    let md = String::from_utf8_lossy(&out.stdout);
    assert!(
        md.contains("| TTFAT p50 s | TTFAT p99 s | reasoning tokens |"),
        "{md}"
    );
}
