//! `llmib analyze` and `llmib export` end to end, on hand-built run logs.

use crate::analyzer_logs as common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

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

fn logs(d: &Path) {
    std::fs::create_dir_all(d).unwrap();
    throughput_run(d, "tgi-32.msgpack", "tgi", "thr-32", "s32", 32, 1.0);
    throughput_run(d, "vllm-32.msgpack", "vllm", "thr-32", "s32", 32, 0.5);
    for (b, l) in [("tgi", 1.0), ("vllm", 1.5)] {
        let h = latency_header(b, "lat-2", "q2", 2.0);
        write_log(
            &d.join(format!("{b}-qps2.msgpack")),
            &h,
            &latency_records(2.0, l),
        );
    }
}

#[test]
fn analyze_prints_the_tables() {
    let dir = tempfile::tempdir().unwrap();
    logs(&dir.path().join("logs"));
    let out = llmib(&["analyze", "logs"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.contains("| Throughput (token/s) vs. variance in length | max 32 tokens |"));
    assert!(s.contains("| TGI | 132.00 |"), "{s}");
    assert!(s.contains("| vLLM | 0.3000 (3.0000) |"), "{s}");
    let out = llmib(
        &["analyze", "logs", "--format", "json", "--stat", "mean"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["options"]["stat"], "mean");
    assert_eq!(v["runs"].as_array().unwrap().len(), 4);
}

#[test]
fn analyze_writes_outputs_figures_and_readme() {
    let dir = tempfile::tempdir().unwrap();
    logs(&dir.path().join("logs"));
    let out = llmib(&["analyze", "logs", "-o", "out"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    for f in [
        "tables.md",
        "runs.csv",
        "throughput.csv",
        "latency.csv",
        "report.json",
        "figures/throughput.png",
        "figures/latency-cdf-qps-2.svg",
    ] {
        assert!(dir.path().join("out").join(f).is_file(), "{f} missing");
    }
    std::fs::write(
        dir.path().join("README.md"),
        "# x\n<!-- llmib:throughput-table:begin -->\n<!-- llmib:throughput-table:end -->\n<!-- llmib:figures:begin -->\n<!-- llmib:figures:end -->\n",
    )
    .unwrap();
    let out = llmib(&["analyze", "logs", "--readme"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let readme = std::fs::read_to_string(dir.path().join("README.md")).unwrap();
    assert!(readme.contains("| TGI | 132.00 |"), "{readme}");
    assert!(
        readme.contains("<img src=\"figures/throughput.png\" width=700>"),
        "{readme}"
    );
    assert!(dir.path().join("figures/throughput.png").is_file());
}

#[test]
fn bad_logs_fail_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("empty.msgpack"), b"").unwrap();
    let out = llmib(&["analyze", "empty.msgpack"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.starts_with("error: ") && err.contains("empty.msgpack"),
        "{err}"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let out = llmib(&["analyze", "missing.msgpack"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let out = llmib(&["export", "empty.msgpack", "-o", "x"], dir.path());
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn interrupted_log_warns() {
    let dir = tempfile::tempdir().unwrap();
    let h = latency_header("tgi", "lat", "q", 2.0);
    write_truncated(
        &dir.path().join("cut.msgpack"),
        &h,
        &latency_records(2.0, 1.0),
    );
    let out = llmib(&["analyze", "cut.msgpack"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("no trailer (interrupted run)"));
    assert!(text(&out.stdout).contains("cut (interrupted)"));
}

#[test]
fn export_writes_three_tables() {
    let dir = tempfile::tempdir().unwrap();
    logs(&dir.path().join("logs"));
    for fmt in ["parquet", "csv"] {
        let out = llmib(
            &["export", "logs", "--format", fmt, "-o", "exp"],
            dir.path(),
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        for t in ["runs", "requests", "events"] {
            let p = dir.path().join("exp").join(format!("{t}.{fmt}"));
            assert!(p.metadata().unwrap().len() > 0, "{}", p.display());
        }
    }
    let csv = std::fs::read_to_string(dir.path().join("exp/events.csv")).unwrap();
    assert!(csv.starts_with("run,request_id,seq,t_ns,tokens\n"), "{csv}");
    // 2 throughput runs x 4 x 32 tokens + 2 latency runs x 3 x 10, one per event.
    assert_eq!(csv.lines().count() - 1, 2 * 4 * 32 + 2 * 3 * 10);
}

/// Nothing under `dir` but what was there before.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.strip_prefix(dir).unwrap().display().to_string());
        }
    }
    out.sort();
    out
}

#[test]
fn bad_options_fail_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    logs(&dir.path().join("logs"));
    let before = files_under(dir.path());
    let out = llmib(
        &["analyze", "logs", "--timeline", "nosuch", "-o", "out"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nosuch"),
        "{}",
        text(&out.stderr)
    );
    let out = llmib(&["analyze", "logs", "--readme", "nosuch.md"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("nosuch.md"),
        "{}",
        text(&out.stderr)
    );
    std::fs::write(dir.path().join("plain.md"), "# no markers\n").unwrap();
    let out = llmib(&["analyze", "logs", "--readme", "plain.md"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no llmib markers"),
        "{}",
        text(&out.stderr)
    );
    let mut expected = before;
    expected.push("plain.md".into());
    expected.sort();
    assert_eq!(files_under(dir.path()), expected, "nothing written");
}

#[test]
fn outputs_are_replaced_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    logs(&dir.path().join("logs"));
    let out = llmib(&["analyze", "logs", "-o", "out"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let first = std::fs::read(dir.path().join("out/tables.md")).unwrap();
    std::fs::write(dir.path().join("out/tables.md"), "edited").unwrap();
    let out = llmib(&["analyze", "logs", "-o", "out"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--force"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        std::fs::read(dir.path().join("out/tables.md")).unwrap(),
        b"edited"
    );
    let out = llmib(&["analyze", "logs", "-o", "out", "--force"], dir.path());
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        std::fs::read(dir.path().join("out/tables.md")).unwrap(),
        first
    );
    // Exports follow the same rule.
    let args = ["export", "logs", "--format", "csv", "-o", "exp"];
    assert!(llmib(&args, dir.path()).status.success());
    assert_eq!(llmib(&args, dir.path()).status.code(), Some(2));
    let mut forced = args.to_vec();
    forced.push("--force");
    assert!(llmib(&forced, dir.path()).status.success());
}

#[test]
fn the_same_log_twice_counts_once_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    logs(&dir.path().join("logs"));
    std::fs::copy(
        dir.path().join("logs/tgi-32.msgpack"),
        dir.path().join("copy.msgpack"),
    )
    .unwrap();
    let out = llmib(
        &[
            "analyze",
            "logs",
            "logs/tgi-32.msgpack",
            "copy.msgpack",
            "--format",
            "json",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.matches("counted once").count(), 2, "{err}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["runs"].as_array().unwrap().len(), 4, "4 distinct runs");
}

#[test]
fn nothing_to_analyse_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("empty")).unwrap();
    let out = llmib(&["analyze", "empty"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("nothing to analyse"));
}

#[test]
fn logs_without_a_successful_request_exit_1_after_reporting_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = header("tgi", "thr", "sha", Some(spec("thr", 32, None)));
    let records: Vec<_> = (0..4)
        .map(|i| failed(i, 0, 1_000, 2_000_000 + i, 503))
        .collect();
    write_log(&dir.path().join("down.msgpack"), &h, &records);
    let out = llmib(&["analyze", "down.msgpack"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no request succeeded"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("down"),
        "the report still lists the run"
    );
}
