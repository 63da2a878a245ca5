//! `llmib sweep` end to end against the in-process simulator (127.0.0.1): an auto sweep
//! stops on its own at the saturation of a profile whose capacity is known and marks
//! the knee near it; a second run resumes (reuses every complete log); the sweep
//! directory analyses exactly like its logs given one by one; bad input is one line.

mod common;

use std::path::Path;
use std::process::Command;

use common::{LLMIB, write_trace};

/// A profile whose capacity is exact: one request at a time, each step 4 ms, a request
/// of 10 output tokens = 1 prefill step + 9 decode steps = 40 ms, so the server completes
/// at most 25 requests/s.
fn capacity_profile() -> String {
    common::one_at_a_time_profile(4000.0, "capacity 25 req/s for 10-token answers")
}
const CAPACITY: f64 = 25.0;

fn sweep_args(dir: &Path, trace: &Path, profile: &Path) -> Vec<String> {
    [
        "sweep",
        trace.to_str().unwrap(),
        "--backend",
        "vllm",
        "--simulate",
        "--profile",
        profile.to_str().unwrap(),
        "--rates",
        "auto",
        "--start-rate",
        "10",
        "-q",
        "-o",
        dir.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn run(args: &[String]) -> (i32, String, String) {
    let out = Command::new(LLMIB).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn auto_sweep_stops_at_saturation_marks_the_knee_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("cap.toml");
    std::fs::write(&profile, capacity_profile()).unwrap();
    let trace = tmp.path().join("steady.msgpack");
    // 50 requests 100 ms apart, 10 output tokens each.
    write_trace(
        &trace,
        "steady",
        50,
        100_000_000,
        "a b c d",
        formats::LengthDist::Fixed {
            value: 10,
            floor: 1,
        },
        |_| 10,
    );
    let dir = tmp.path().join("sweep");
    let args = sweep_args(&dir, &trace, &profile);
    let (code, stdout, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");

    // Probes 10, 20, 40 (saturated: it cannot complete more than 25/s), then 3 fills.
    let m = json(&dir.join("sweep.json"));
    let phases: Vec<(&str, f64)> = m["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["phase"].as_str().unwrap(), r["rate"].as_f64().unwrap()))
        .collect();
    assert_eq!(phases.len(), 6, "{phases:?}");
    assert_eq!(
        &phases[..3],
        &[("probe", 10.0), ("probe", 20.0), ("probe", 40.0)]
    );
    assert!(
        phases[3..]
            .iter()
            .all(|(p, r)| *p == "fill" && *r > 20.0 && *r < 40.0)
    );
    assert_eq!(m["result"]["saturated_at"].as_f64(), Some(40.0));
    assert!(
        m["runs"][2]["saturated"]
            .as_str()
            .unwrap()
            .contains("achieved")
    );

    // The knee: the last rate the server kept up with, near its capacity.
    let knee = m["result"]["knee_rate"].as_f64().unwrap();
    eprintln!("rates {phases:?}, knee {knee} req/s (capacity {CAPACITY})");
    assert!(
        (0.8 * CAPACITY..=1.2 * CAPACITY).contains(&knee),
        "knee {knee} vs capacity {CAPACITY}"
    );
    let cap = json(&dir.join("analysis/capacity.json"));
    let curve = &cap["curves"][0];
    assert_eq!(curve["knee"]["offered_rate"].as_f64(), Some(knee));
    assert_eq!(curve["points"].as_array().unwrap().len(), 6);
    // Offered rates come from the logs alone and are the rates asked.
    for p in curve["points"].as_array().unwrap() {
        let offered = p["offered_rate"].as_f64().unwrap();
        assert!(
            phases.iter().any(|(_, r)| (offered / r - 1.0).abs() < 1e-6),
            "offered {offered} not among {phases:?}"
        );
    }
    // Above capacity the achieved rate is the capacity.
    let top = curve["points"].as_array().unwrap().last().unwrap();
    let achieved = top["achieved_rate"].as_f64().unwrap();
    assert!(
        (0.85 * CAPACITY..=1.1 * CAPACITY).contains(&achieved),
        "achieved {achieved} at 40 req/s"
    );
    assert!(stdout.contains("knee of vLLM (simulated, "), "{stdout}");
    assert!(dir.join("analysis/figures/capacity.png").is_file());
    assert!(dir.join("analysis/figures/capacity.svg").is_file());
    let csv = std::fs::read_to_string(dir.join("analysis/capacity.csv")).unwrap();
    assert_eq!(csv.lines().count(), 7);

    // Run again: every run is complete, so nothing is replayed and the answer is the same.
    let before: Vec<_> = logs(&dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stderr.matches("already complete").count(), 6, "{stderr}");
    let after: Vec<_> = logs(&dir)
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    assert_eq!(before, after);
    assert_eq!(json(&dir.join("sweep.json"))["result"], m["result"]);

    same_analysis_as_separate_logs(&dir, tmp.path());
}

fn logs(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "msgpack"))
        .collect();
    v.sort();
    v
}

/// `llmib analyze LOG LOG...` writes the same tables, CSVs and CDF figures as the
/// sweep's own analysis of its directory.
fn same_analysis_as_separate_logs(dir: &Path, tmp: &Path) {
    let out = tmp.join("separate");
    let mut args: Vec<String> = vec!["analyze".into()];
    args.extend(logs(dir).iter().map(|p| p.display().to_string()));
    args.extend(["-o".into(), out.display().to_string()]);
    let (code, _, stderr) = run(&args);
    assert_eq!(code, 0, "{stderr}");
    let ours = dir.join("analysis");
    for f in ["tables.md", "latency.csv", "runs.csv", "capacity.csv"] {
        assert_eq!(
            std::fs::read_to_string(ours.join(f)).unwrap(),
            std::fs::read_to_string(out.join(f)).unwrap(),
            "{f}"
        );
    }
    let mut cdfs = 0;
    for e in std::fs::read_dir(ours.join("figures")).unwrap() {
        let name = e.unwrap().file_name().to_string_lossy().into_owned();
        if name.contains("-cdf-") && name.ends_with(".svg") {
            cdfs += 1;
            assert_eq!(
                std::fs::read(ours.join("figures").join(&name)).unwrap(),
                std::fs::read(out.join("figures").join(&name)).unwrap(),
                "{name}"
            );
        }
    }
    assert_eq!(cdfs, 18, "3 CDFs per rate");
}

#[test]
fn bad_input_is_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let burst = tmp.path().join("burst.msgpack");
    write_trace(
        &burst,
        "burst",
        10,
        0,
        "a b",
        formats::LengthDist::Fixed { value: 4, floor: 1 },
        |_| 4,
    );
    let dir = tmp.path().join("out");
    let base = |rates: &str| -> Vec<String> {
        [
            "sweep",
            burst.to_str().unwrap(),
            "--backend",
            "vllm",
            "--simulate",
            "--rates",
            rates,
            "-o",
            dir.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    for (args, want) in [
        (base("1,2"), "burst"),
        (base("1,x"), "--rates"),
        (base("0"), "--rates"),
    ] {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr}");
    }
    let mut search = base("1");
    search[0] = "search".into();
    search.retain(|a| a != "--rates" && a != "1");
    search.extend(["--slo".into(), "ttft_p42=1".into()]);
    let (code, _, stderr) = run(&search);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("--slo"), "{stderr}");
}
