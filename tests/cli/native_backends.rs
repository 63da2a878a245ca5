//! `llmib replay --backend sglang|llamacpp` as a user runs it, against `llmib sim
//! --dialect sglang|llamacpp` in another process with injected faults (HTTP errors,
//! disconnects, stalls) and a truth log: one record per request, each matching what
//! the server did to it.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use formats::{LengthDist, LogEnd, Outcome, read_log};
use simulator::truth::{Outcome as Truth, read_truth_log};

use crate::common;

use common::{LLMIB, SimProcess};
const N: u64 = 80;

fn write_trace(path: &Path) {
    let output = LengthDist::Fixed {
        value: 12,
        floor: 1,
    };
    common::write_trace(
        path,
        "cli-native",
        N,
        2_000_000,
        "a b c d e f",
        output,
        |_| 12,
    );
}

/// `llmib sim` with every kind of fault and a truth log.
fn start_sim(dialect: &str, truth: &Path) -> SimProcess {
    let truth = truth.to_str().unwrap();
    SimProcess::start(
        dialect,
        &[
            "--seed",
            "11",
            "--truth-log",
            truth,
            "--fault-429",
            "0.08",
            "--fault-500",
            "0.08",
            "--fault-503",
            "0.08",
            "--fault-disconnect",
            "0.12",
            "--fault-stall",
            "0.12",
            "--stall-ms",
            "20",
        ],
    )
}

fn replay_against_faults(dialect: &str, stream: bool) {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace);
    let truth = dir.path().join("truth.jsonl");
    let sim = start_sim(dialect, &truth);
    let url = sim.url.clone();
    let out = dir.path().join("run.msgpack");
    let o = Command::new(LLMIB)
        .args(["replay", trace.to_str().unwrap(), "--backend", dialect])
        .args(["--endpoint", &url, "-o", out.to_str().unwrap(), "--quiet"])
        .args(["--timeout", "30"])
        .args(if stream {
            &[][..]
        } else {
            &["--no-stream"][..]
        })
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{dialect}: {} {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    sim.stop();
    let what = format!("{dialect} stream={stream}");
    let log = read_log(&out).unwrap();
    assert!(
        matches!(log.end, LogEnd::Trailer(ref t) if t.complete),
        "{what}"
    );
    assert_eq!(log.header.backend.kind, dialect);
    assert_eq!(log.records.len() as u64, N, "{what}");
    let truth: HashMap<u64, _> = read_truth_log(&truth)
        .unwrap()
        .into_iter()
        .map(|t| (t.request_id.as_deref().unwrap().parse::<u64>().unwrap(), t))
        .collect();
    assert_eq!(
        truth.len() as u64,
        N,
        "{what}: one truth record per request"
    );
    let mut faults: HashMap<String, u32> = HashMap::new();
    for rec in &log.records {
        let t = &truth[&rec.id];
        *faults
            .entry(t.fault.clone().unwrap_or_default())
            .or_default() += 1;
        let expect = match t.outcome.unwrap() {
            Truth::Ok => Outcome::Ok,
            Truth::Http429 | Truth::Http500 | Truth::Http503 => Outcome::HttpError,
            Truth::Disconnect => Outcome::StreamError,
            other => panic!("{what}: unexpected truth outcome {other:?}"),
        };
        assert_eq!(
            rec.outcome, expect,
            "{what} id {} fault {:?}: {:?}",
            rec.id, t.fault, rec.error
        );
        match expect {
            Outcome::HttpError => {
                assert_eq!(rec.http_status, Some(t.http_status), "{what}");
                assert!(rec.error.as_deref().is_some_and(|e| !e.is_empty()));
            }
            Outcome::Ok => {
                assert_eq!(
                    rec.output_tokens,
                    Some(t.output_tokens),
                    "{what} id {}",
                    rec.id
                );
                assert_eq!(rec.output_tokens, Some(12));
                assert_eq!(rec.server_output_tokens, Some(12));
                assert_eq!(rec.server_prompt_tokens, Some(6));
                let method = if stream { "usage_delta" } else { "final_usage" };
                assert_eq!(rec.token_count_method.as_deref(), Some(method), "{what}");
            }
            _ => {
                // A cut stream keeps exactly the tokens the server wrote.
                if stream {
                    assert_eq!(rec.output_tokens.unwrap_or(0), t.output_tokens, "{what}");
                }
            }
        }
    }
    for fault in ["http_429", "http_500", "http_503", "disconnect", "stall"] {
        assert!(
            faults.get(fault).copied().unwrap_or(0) >= 1,
            "{what}: no {fault} in {faults:?}"
        );
    }
}

#[test]
fn sglang_streamed_faults_match_truth() {
    replay_against_faults("sglang", true);
}

#[test]
fn sglang_not_streamed_faults_match_truth() {
    replay_against_faults("sglang", false);
}

#[test]
fn llamacpp_streamed_faults_match_truth() {
    replay_against_faults("llamacpp", true);
}

#[test]
fn llamacpp_not_streamed_faults_match_truth() {
    replay_against_faults("llamacpp", false);
}
