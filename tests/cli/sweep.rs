//! `llmib sweep` end to end against the in-process simulator (127.0.0.1): an auto sweep
//! stops on its own at the saturation of a profile whose capacity is known and marks
//! the knee near it; a second run resumes (reuses every complete log); the sweep
//! directory analyses exactly like its logs given one by one; bad input is one line.

use crate::common;

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
    let _timing = common::timing_sensitive();
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
    let with = |mut args: Vec<String>, extra: &[&str]| {
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    };
    let mut search = base("1");
    search[0] = "search".into();
    search.retain(|a| a != "--rates" && a != "1");
    let slo = |extra: &[&str]| with(with(search.clone(), &["--slo", "ttft_p99=1"]), extra);
    let cases = [
        (base("1,2"), "burst"),
        (base("1,x"), "--rates"),
        (base("0"), "--rates"),
        (base("-1"), "--rates"),
        (base("nan"), "--rates"),
        (base("inf"), "--rates"),
        (base("1e300"), "--rates"),
        (with(base("auto"), &["--start-rate", "0"]), "--start-rate"),
        (with(base("auto"), &["--start-rate", "-2"]), "--start-rate"),
        (with(base("1"), &["--max-requests", "0"]), "--max-requests"),
        (with(search.clone(), &["--slo", "ttft_p42=1"]), "--slo"),
        (slo(&["--start-rate", "0"]), "--start-rate"),
        (slo(&["--start-rate", "-1"]), "--start-rate"),
        (slo(&["--start-rate", "NaN"]), "--start-rate"),
        (slo(&["--start-rate", "inf"]), "--start-rate"),
        (slo(&["--grid", "8:4:1"]), "--grid"),
        (slo(&["--grid", "0:4:1"]), "--grid"),
        (slo(&["--grid", "1:inf:1"]), "--grid"),
        (slo(&["--tolerance", "nan"]), "--tolerance"),
        (slo(&["--goodput", "nan"]), "--goodput"),
        (slo(&["--max-requests", "0"]), "--max-requests"),
    ];
    for (args, want) in cases {
        let (code, _, stderr) = run(&args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
        assert!(!dir.exists(), "{args:?}: output folder left behind");
    }
    // A replay of no request is refused too, before any log is written.
    let log = tmp.path().join("none.msgpack");
    let (code, _, stderr) = run(&[
        "replay".into(),
        burst.display().to_string(),
        "--backend".into(),
        "vllm".into(),
        "--endpoint".into(),
        "http://127.0.0.1:9".into(),
        "--max-requests".into(),
        "0".into(),
        "-o".into(),
        log.display().to_string(),
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--max-requests"), "{stderr}");
    assert!(!log.exists());
}

/// Arrivals bunched at both ends of the trace, sparse in the middle: the middle 80% of
/// a run offers 3.3 req/s where the whole offers 4. An idle server completes each
/// request as it arrives: its achieved rate (middle 80% of the completions) is 3.3,
/// which against the whole span's 4 req/s read as saturation ("knee: none").
#[test]
fn an_idle_server_with_uneven_arrivals_is_not_saturated() {
    let _timing = common::timing_sensitive();
    use formats::{
        Arrival, LengthDist, SyntheticSpec, TokenizerInfo, TraceHeader, TraceRequest, TraceSpec,
        TraceWriter,
    };
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("uneven.msgpack");
    // 5 requests 1 ms apart, 30 spread over 1..9 s, 5 requests 1 ms apart at 10 s.
    let arrivals: Vec<u64> = (0..5)
        .map(|i| i * 1_000_000)
        .chain((0..30).map(|i| 1_000_000_000 + i * 8_000_000_000 / 29))
        .chain((0..5).map(|i| 10_000_000_000 + i * 1_000_000))
        .collect();
    let header = TraceHeader::new(
        TraceSpec::Synthetic(SyntheticSpec {
            name: "uneven".into(),
            seed: 1,
            requests: arrivals.len() as u64,
            prompt_tokens: LengthDist::Fixed { value: 3, floor: 1 },
            output_tokens: LengthDist::Fixed { value: 4, floor: 1 },
            arrival: Arrival::Constant { rate: 4.0 },
            ignore_eos: true,
            prefix: None,
            sessions: None,
        }),
        TokenizerInfo {
            kind: "builtin-words".into(),
            name: "cli".into(),
            sha256: None,
        },
        arrivals.len() as u64,
        "test",
    );
    let mut w = TraceWriter::create(&trace, &header).unwrap();
    for (id, &t) in arrivals.iter().enumerate() {
        w.write(&TraceRequest {
            id: id as u64,
            arrival_ns: t,
            prompt: "a b c".into(),
            prompt_tokens: 3,
            max_tokens: 4,
            ignore_eos: true,
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
    let dir = tmp.path().join("sweep");
    let (code, stdout, stderr) = run(&[
        "sweep".into(),
        trace.display().to_string(),
        "--backend".into(),
        "vllm".into(),
        "--simulate".into(),
        "--speedup".into(),
        "10".into(),
        "--rates".into(),
        "2,4".into(),
        "-q".into(),
        "-o".into(),
        dir.display().to_string(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("on uneven: 4 req/s"), "{stdout}");
    let cap = json(&dir.join("analysis/capacity.json"));
    let points = cap["curves"][0]["points"].as_array().unwrap();
    assert_eq!(points.len(), 2);
    for p in points {
        assert!(p["saturated"].is_null(), "{p}");
        let (achieved, window) = (
            p["achieved_rate"].as_f64().unwrap(),
            p["offered_window_rate"].as_f64().unwrap(),
        );
        assert!(achieved < 0.9 * p["offered_rate"].as_f64().unwrap(), "{p}");
        assert!((achieved / window - 1.0).abs() < 0.1, "{p}");
    }
}

/// The server dies between two runs of a sweep: the run measured is kept and analysed,
/// the manifest says why the sweep stopped, and the command exits 2 in one line (not
/// 130: nothing interrupted it).
#[test]
fn a_server_that_dies_mid_sweep_leaves_the_runs_measured_analysed() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("steady.msgpack");
    write_trace(
        &trace,
        "steady",
        20,
        25_000_000,
        "a b",
        formats::LengthDist::Fixed { value: 3, floor: 1 },
        |_| 3,
    );
    let sim = common::SimProcess::start("vllm", &[]);
    let dir = tmp.path().join("s");
    let child = Command::new(LLMIB)
        .args(["sweep", trace.to_str().unwrap(), "--backend", "vllm"])
        .args([
            "--endpoint",
            &sim.url,
            "--rates",
            "5,6",
            "--pause",
            "5",
            "-q",
        ])
        .args(["-o", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let manifest_path = dir.join("sweep.json");
    common::dies_after_first_run(child, sim, &manifest_path, "sweep");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest_path).unwrap()).unwrap();
    assert_eq!(m["runs"].as_array().unwrap().len(), 1, "{m}");
    assert_eq!(m["result"]["stopped"], "server_failed", "{m}");
    assert!(dir.join(m["runs"][0]["log"].as_str().unwrap()).is_file());
    // The analysis of the run measured was written.
    let analysis = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| e.path().is_dir());
    assert!(analysis, "no analysis beside the logs in {}", dir.display());
}
