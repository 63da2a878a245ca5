//! `llmib replay --backend vllm` against vLLM's legacy api_server in its late-2024 form
//! (`llmib sim --dialect vllm --vllm-separator newline`: objects end with `\n`, not NUL),
//! streamed and not: every request `ok` with exactly the tokens the truth log says the
//! server produced.

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use formats::{LengthDist, LogEnd, Outcome, read_log};
use simulator::truth::read_truth_log;

use crate::common;

use common::{LLMIB, SimProcess};

const N: u64 = 40;
const MAX: u32 = 9;

fn write_trace(path: &Path) {
    let output = LengthDist::Fixed {
        value: MAX,
        floor: 1,
    };
    common::write_trace(
        path,
        "cli-vllm-newline",
        N,
        2_000_000,
        "a b c d e",
        output,
        |_| MAX,
    );
}

fn replay_newline(stream: bool) {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace);
    let truth = dir.path().join("truth.jsonl");
    let sim = SimProcess::start(
        "vllm",
        &[
            "--vllm-separator",
            "newline",
            "--truth-log",
            truth.to_str().unwrap(),
        ],
    );
    let out = dir.path().join("run.msgpack");
    let o = Command::new(LLMIB)
        .args(["replay", trace.to_str().unwrap(), "--backend", "vllm"])
        .args([
            "--endpoint",
            &sim.url,
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ])
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
        "{} {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    sim.stop();
    let log = read_log(&out).unwrap();
    assert!(matches!(log.end, LogEnd::Trailer(ref t) if t.complete));
    assert_eq!(log.records.len() as u64, N);
    let truth: HashMap<u64, _> = read_truth_log(&truth)
        .unwrap()
        .into_iter()
        .map(|t| (t.request_id.as_deref().unwrap().parse::<u64>().unwrap(), t))
        .collect();
    assert_eq!(truth.len() as u64, N);
    for rec in &log.records {
        assert_eq!(rec.outcome, Outcome::Ok, "id {}: {:?}", rec.id, rec.error);
        let t = &truth[&rec.id];
        assert_eq!(t.output_tokens, MAX);
        assert_eq!(rec.output_tokens, Some(MAX), "id {}", rec.id);
        assert_eq!(rec.events.total_tokens(), u64::from(MAX));
        assert!(rec.count_flags.is_empty(), "{:?}", rec.count_flags);
        if stream {
            // One object per engine step: one event per token.
            assert_eq!(rec.events.len(), MAX as usize, "id {}", rec.id);
            assert_eq!(
                rec.token_count_method.as_deref(),
                Some("assumed_max_tokens")
            );
        }
    }
}

#[test]
fn vllm_newline_stream_is_replayed_exactly() {
    replay_newline(true);
}

#[test]
fn vllm_newline_not_streamed_is_replayed_exactly() {
    replay_newline(false);
}

#[test]
fn vllm_separator_needs_the_vllm_dialect() {
    let o = Command::new(LLMIB)
        .args(["sim", "--dialect", "tgi", "--vllm-separator", "newline"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--vllm-separator needs --dialect vllm"),
        "{err}"
    );
}
