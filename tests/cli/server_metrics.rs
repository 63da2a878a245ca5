//! `llmib replay --server-metrics` as a user runs it, against `llmib sim` in another
//! process, then `llmib analyze` and `llmib export` on the result.

use crate::common;

use std::process::Command;

use common::{LLMIB, SimProcess, write_trace};
use formats::{LengthDist, read_log, read_server_metrics, sidecar_path};

fn replay(trace: &str, url: &str, out: &str, extra: &[&str]) -> std::process::Output {
    Command::new(LLMIB)
        .args(["replay", trace, "--backend", "vllm", "--endpoint", url])
        .args(["-o", out, "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn scraped_samples_are_analysed_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    let fixed = LengthDist::Fixed {
        value: 100,
        floor: 1,
    };
    write_trace(&trace, "sm", 20, 20_000_000, "a b c d", fixed, |_| 100);
    let sim = SimProcess::start("vllm", &[]);
    let out = dir.path().join("run.msgpack");
    let (t, o) = (trace.to_str().unwrap(), out.to_str().unwrap());
    let r = replay(
        t,
        &sim.url,
        o,
        &[
            "--server-metrics",
            "auto",
            "--server-metrics-interval",
            "0.02",
        ],
    );
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let log = read_log(&out).unwrap();
    let reference = log.header.options.server_metrics.unwrap();
    assert_eq!(reference.url, format!("{}/metrics", sim.url));
    assert_eq!(reference.interval_ns, 20_000_000);
    let samples = read_server_metrics(sidecar_path(&out)).unwrap().samples;
    assert!(samples.len() >= 3, "{} samples", samples.len());
    assert!(samples.iter().any(|s| s.running.unwrap() > 0.0));

    // The directory holds the log and its sidecar: one run, three panels.
    let an = dir.path().join("an");
    let a = Command::new(LLMIB)
        .args([
            "analyze",
            dir.path().to_str().unwrap(),
            "-o",
            an.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&a.stderr);
    assert!(a.status.success(), "{err}");
    // (The trace in the same directory is skipped as not a log; the sidecar is not.)
    assert!(!err.contains("server-metrics"), "{err}");
    let svg = std::fs::read_to_string(an.join("figures/timeline-run.svg")).unwrap();
    assert!(svg.contains("KV cache used (%)"));

    let ex = dir.path().join("ex");
    let e = Command::new(LLMIB)
        .args(["export", o, "--format", "csv", "-o", ex.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(e.status.success(), "{}", String::from_utf8_lossy(&e.stderr));
    let csv = std::fs::read_to_string(ex.join("server_metrics.csv")).unwrap();
    assert_eq!(csv.lines().count(), samples.len() + 1);
}

#[test]
fn bad_metrics_options_fail_on_one_line_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    let fixed = LengthDist::Fixed { value: 4, floor: 1 };
    write_trace(&trace, "sm", 2, 1_000_000, "a b", fixed, |_| 4);
    let sim = SimProcess::start("vllm", &[]);
    let out = dir.path().join("run.msgpack");
    let (t, o) = (trace.to_str().unwrap(), out.to_str().unwrap());
    let nowhere = format!("{}/nowhere", sim.url);
    for (extra, want) in [
        (vec!["--server-metrics", nowhere.as_str()], "404"),
        (
            vec![
                "--server-metrics",
                "auto",
                "--server-metrics-interval",
                "0.001",
            ],
            "at least 10 ms",
        ),
    ] {
        let r = replay(t, &sim.url, o, &extra);
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(2), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{err}");
        assert!(!out.exists());
    }
}
