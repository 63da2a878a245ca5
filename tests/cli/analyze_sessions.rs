//! `llmib analyze` and `llmib export` on a multi-turn session log (the hand-built log of
//! `analyzer/tests/common/sessions_log.rs`, whose numbers are worked out there), and on
//! a log without sessions, which gets none of the session outputs.

use crate::analyzer_logs as common;
use crate::analyzer_logs::sessions_log;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn llmib(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmib"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("llmib runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn json(args: &[&str], cwd: &Path) -> Value {
    let out = llmib(args, cwd);
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn near(v: &Value, want: f64) {
    assert!((num(v) - want).abs() < 1e-6, "{v} != {want}");
}

#[test]
fn json_has_the_sessions_and_ttft_by_turn() {
    let dir = tempfile::tempdir().unwrap();
    sessions_log::write(dir.path(), "chat.msgpack");
    let v = json(&["analyze", "chat.msgpack", "--format", "json"], dir.path());
    let run = &v["runs"][0];
    let s = &run["sessions"];
    assert_eq!(
        (&s["count"], &s["complete"], &s["requests"]),
        (&Value::from(3), &Value::from(2), &Value::from(15))
    );
    near(&s["turns_per_session"]["mean"], 5.0);
    assert_eq!(s["turns_per_session"]["max"], 10);
    near(&s["duration_s"]["mean"], 11.55);
    near(&s["duration_s"]["p99"], 3.7 + 0.99 * 15.7);

    let rows = run["ttft_by_turn"].as_array().unwrap();
    let turns: Vec<u64> = rows.iter().map(|r| r["turn"].as_u64().unwrap()).collect();
    assert_eq!(turns, (0..=8).collect::<Vec<u64>>());
    let t0 = &rows[0];
    assert_eq!(
        (&t0["requests"], &t0["tail"]),
        (&Value::from(3), &Value::from(false))
    );
    for (key, want) in [
        ("mean", 0.5 / 3.0),
        ("p50", 0.1),
        ("p90", 0.26),
        ("p99", 0.296),
    ] {
        near(&t0["ttft_s"][key], want);
    }
    near(&t0["e2e_s"]["p50"], 0.5);
    near(&t0["cached_share"], 0.0);
    near(&rows[1]["cached_share"], 200.0 / 300.0);
    assert!(rows[2]["cached_share"].is_null());
    assert_eq!(rows[8]["tail"], true);
    near(&rows[8]["ttft_s"]["mean"], 0.95);

    // From scheduled: session 1's turn 0 waited 0.1 s before dispatch.
    let v = json(
        &[
            "analyze",
            "chat.msgpack",
            "--format",
            "json",
            "--from",
            "scheduled",
        ],
        dir.path(),
    );
    near(&v["runs"][0]["ttft_by_turn"][0]["ttft_s"]["mean"], 0.2);
}

#[test]
fn markdown_csv_figure_and_export_carry_the_sessions() {
    let dir = tempfile::tempdir().unwrap();
    sessions_log::write(dir.path(), "chat.msgpack");
    let out = llmib(&["analyze", "chat.msgpack"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let md = text(&out.stdout);
    assert!(
        md.contains("## Sessions") && md.contains("## TTFT by turn"),
        "{md}"
    );
    assert!(
        md.contains("| chat | OpenAI | 8+ | 2 | 2 | 0.9500 |"),
        "{md}"
    );

    let out = llmib(&["analyze", "chat.msgpack", "-o", "out"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "ttft_by_turn.csv",
        "figures/ttft-by-turn.png",
        "figures/ttft-by-turn.svg",
    ] {
        assert!(dir.path().join("out").join(f).is_file(), "{f} missing");
    }
    let csv = std::fs::read_to_string(dir.path().join("out/ttft_by_turn.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 9, "{csv}");

    let out = llmib(
        &["export", "chat.msgpack", "--format", "csv", "-o", "exp"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let req = std::fs::read_to_string(dir.path().join("exp/requests.csv")).unwrap();
    assert!(
        req.starts_with("run,run_id,request_id,session_id,turn,warmup,"),
        "{}",
        req.lines().next().unwrap()
    );
    // Request 13 is session 2's turn 3.
    assert!(
        req.lines().any(|l| l.starts_with("0,chat,13,2,3,false,")),
        "{req}"
    );
}

#[test]
fn a_log_without_sessions_has_no_session_output() {
    let dir = tempfile::tempdir().unwrap();
    let h = common::latency_header("vllm", "lat", "l1", 2.0);
    common::write_log(
        &dir.path().join("lat.msgpack"),
        &h,
        &common::latency_records(2.0, 1.0),
    );
    let v = json(&["analyze", "lat.msgpack", "--format", "json"], dir.path());
    assert!(v["runs"][0].get("sessions").is_none());
    assert!(v["runs"][0].get("ttft_by_turn").is_none());
    let out = llmib(&["analyze", "lat.msgpack"], dir.path());
    assert!(!text(&out.stdout).contains("Sessions"));
    let out = llmib(&["analyze", "lat.msgpack", "-o", "out"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(!dir.path().join("out/ttft_by_turn.csv").exists());
    assert!(!dir.path().join("out/figures/ttft-by-turn.png").exists());
}
