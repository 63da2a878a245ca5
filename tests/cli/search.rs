//! `llmib search` end to end against the in-process simulator (127.0.0.1): its answer
//! agrees with a brute-force grid over the same runs (`--grid`), and repeated searches
//! agree. The agreement checks are slow (real-time runs) and ignored by default
//! (`.ci/run` runs them after the default suite): one on a profile whose capacity is
//! exact (about 100 s), the calibrated `a800-llama2-13b` one (issue 13's must-hold; about
//! 47 runs of 6 s): `cargo test --test cli search -- --ignored --nocapture` prints their
//! numbers. The default run keeps the short searches: budget, failures, a dying server,
//! a trace too short.

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{LLMIB, write_trace};

/// One request at a time, 10 ms steps, 5-token answers: 50 ms each, 20 req/s at most
/// (long steps, so a loaded machine shifts the boundary little).
fn capacity_profile() -> String {
    common::one_at_a_time_profile(10000.0, "capacity 20 req/s for 5-token answers")
}

/// `llmib search` with `extra` flags; returns the manifest's result.
fn search(trace: &Path, dir: &Path, profile: &str, extra: &[&str]) -> serde_json::Value {
    let out = Command::new(LLMIB)
        .args([
            "search",
            trace.to_str().unwrap(),
            "--backend",
            "vllm",
            "--simulate",
            "--profile",
            profile,
            "-q",
            "-o",
            dir.to_str().unwrap(),
        ])
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("highest rate meeting"), "{stdout}");
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("search.json")).unwrap()).unwrap();
    // Every run the search made is a log in its directory, re-analysable offline.
    for r in m["runs"].as_array().unwrap() {
        assert!(dir.join(r["log"].as_str().unwrap()).is_file());
    }
    m["result"].clone()
}

fn rate(result: &serde_json::Value) -> f64 {
    result["rate"].as_f64().expect("a rate meets the SLO")
}

/// About 27 runs of 3 s in real time (100 s): a slow check, like the a800 one. The
/// search's algorithm is checked in the default run by `src/search.rs`'s tests over
/// tables of verdicts, and end to end by the shorter searches below.
#[test]
#[ignore = "slow (about 100 s of real-time runs): .ci/run runs it after the default suite"]
fn search_agrees_with_a_grid_over_the_same_runs() {
    let _timing = common::timing_sensitive();
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("cap.toml");
    std::fs::write(&profile, capacity_profile()).unwrap();
    let trace = tmp.path().join("steady.msgpack");
    write_trace(
        &trace,
        "steady",
        200,
        25_000_000,
        "a b c d",
        formats::LengthDist::Fixed { value: 5, floor: 1 },
        |_| 5,
    );
    let p = profile.to_str().unwrap();
    // Below 20 req/s a request waits for nothing (TTFT ~ one 10 ms step); above, the
    // queue grows by (rate - 20) requests a second, 50 ms each: over a 3 s run the
    // median request waits ~0.075 s per req/s above 20, so the SLO holds to ~23 req/s.
    let flags = ["--slo", "ttft_p50=0.25", "--run-duration", "3s"];
    let found = search(
        &trace,
        &tmp.path().join("search"),
        p,
        &[&flags[..], &["--start-rate", "10", "--repeats", "3"]].concat(),
    );
    let grid = search(
        &trace,
        &tmp.path().join("grid"),
        p,
        &[&flags[..], &["--grid", "16:30:1", "--repeats", "1"]].concat(),
    );
    let (s, g) = (rate(&found), rate(&grid));
    eprintln!("search {s} req/s ({} runs), grid {g} req/s", found["runs"]);
    assert!((s / g - 1.0).abs() <= 0.10, "search {s} vs grid {g}");
    assert!((20.0..=28.0).contains(&s), "search {s}: capacity is 20");
    assert_eq!(found["method"], "search");
    assert_eq!(grid["method"], "grid");
    // The interval brackets the answer and the noise names the SLO at both ends.
    assert_eq!(found["interval"][0].as_f64(), Some(s));
    assert!(found["interval"][1].as_f64().unwrap() > s);
    assert_eq!(found["noise"].as_array().unwrap().len(), 2);
    // Each end was repeated (3 runs) unless noise flipped a majority in the last round,
    // which leaves the new bracket with the runs it had (one test in three saw that on
    // a loaded machine): at least one run, and no more met than ran.
    for end in found["noise"].as_array().unwrap() {
        let runs = end["runs"].as_u64().unwrap();
        assert!(runs >= 1 && end["met"].as_u64().unwrap() <= runs, "{end}");
    }
    assert_eq!(found["noise"][0]["targets"][0][0], "ttft_p50");
    assert!(found["stopped"].is_null());
}

#[test]
fn a_budget_stops_the_search_with_the_bracket_reached() {
    let tmp = tempfile::tempdir().unwrap();
    let profile = tmp.path().join("cap.toml");
    std::fs::write(&profile, capacity_profile()).unwrap();
    let trace = tmp.path().join("steady.msgpack");
    write_trace(
        &trace,
        "steady",
        100,
        25_000_000,
        "a b",
        formats::LengthDist::Fixed { value: 5, floor: 1 },
        |_| 5,
    );
    // Each run spans 2 s: a 5 s budget has room for two runs, never a converged search.
    let r = search(
        &trace,
        &tmp.path().join("s"),
        profile.to_str().unwrap(),
        &[
            "--slo",
            "ttft_p50=0.25",
            "--run-duration",
            "2s",
            "--start-rate",
            "10",
            "--budget",
            "5s",
        ],
    );
    assert_eq!(r["stopped"], "budget");
    assert!(r["runs"].as_u64().unwrap() <= 2, "{r}");
}

/// Issue 13's must-hold on the calibrated profile: see the README's Capacity section
/// for the numbers. The simulator runs 10 times faster (`--speedup 10`; decode steps
/// of 2.5 ms and more), so each 60 s (profile time) run takes 6 s.
#[test]
#[ignore = "slow (about 6 minutes): .ci/run runs it after the default suite"]
fn a800_search_is_within_10_percent_of_the_grid_and_repeatable() {
    let _timing = common::timing_sensitive();
    let trace = Path::new(env!("CARGO_MANIFEST_DIR")).join("traces/latency-qps8.msgpack");
    let tmp = tempfile::tempdir().unwrap();
    let flags = [
        "--speedup",
        "10",
        "--slo",
        "tpot_p50=0.045",
        "--run-duration",
        "60s",
    ];
    let run = |name: &str, extra: &[&str]| {
        let t = std::time::Instant::now();
        let r = search(
            &trace,
            &tmp.path().join(name),
            "a800-llama2-13b",
            &[&flags[..], extra].concat(),
        );
        eprintln!("{name}: {r} ({:.0} s)", t.elapsed().as_secs_f64());
        r
    };
    let a = rate(&run("search-1", &["--start-rate", "2", "--repeats", "3"]));
    let b = rate(&run("search-2", &["--start-rate", "3", "--repeats", "3"]));
    let g = rate(&run("grid", &["--grid", "4:9:0.25", "--repeats", "1"]));
    eprintln!("search {a}, search {b}, grid {g}");
    assert!((a / g - 1.0).abs() <= 0.10, "search {a} vs grid {g}");
    assert!((b / g - 1.0).abs() <= 0.10, "search {b} vs grid {g}");
    assert!((a / b - 1.0).abs() <= 0.10, "searches {a} and {b}");
}

/// `llmib search ARGS` as it ends: (exit code, stdout, stderr).
fn search_cmd(args: &[impl AsRef<std::ffi::OsStr>]) -> (Option<i32>, String, String) {
    let out = Command::new(LLMIB)
        .arg("search")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The flags of a `--grid GRID` search (one run per rate, 2 s each, SLO `ttft_p99=5`) of
/// `trace` against `url` into `dir`, then `extra`.
fn grid_args(trace: &Path, url: &str, grid: &str, dir: &Path, extra: &[&str]) -> Vec<String> {
    let base = [
        trace.to_str().unwrap(),
        "--backend",
        "vllm",
        "--endpoint",
        url,
        "--slo",
        "ttft_p99=5",
        "--run-duration",
        "2s",
        "--grid",
        grid,
        "--repeats",
        "1",
        "-q",
        "-o",
        dir.to_str().unwrap(),
    ];
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("search.json")).unwrap()).unwrap()
}

fn steady(dir: &Path, n: u64) -> std::path::PathBuf {
    let trace = dir.join("steady.msgpack");
    write_trace(
        &trace,
        "steady",
        n,
        25_000_000,
        "a b",
        formats::LengthDist::Fixed { value: 3, floor: 1 },
        |_| 3,
    );
    trace
}

/// A server failing most requests (HTTP 500) answers the few others fast: their TTFT
/// alone met the SLO. A failed request meets no latency SLO.
#[test]
fn failed_requests_count_against_the_slo() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = steady(tmp.path(), 40);
    let sim = common::SimProcess::start("vllm", &["--fault-500", "0.875", "--seed", "7"]);
    let dir = tmp.path().join("s");
    let (code, stdout, stderr) = search_cmd(&grid_args(&trace, &sim.url, "20:20:1", &dir, &[]));
    assert_eq!(code, Some(0), "{stderr}");
    let m = manifest(&dir);
    let run = &m["runs"][0];
    assert_eq!(run["meets_slo"], false, "{m}");
    assert!(m["result"]["rate"].is_null(), "{m}");
    assert!(stdout.contains("no rate tried meets"), "{stdout}");
    // Its worst statistic / limit is infinite (written null): failures decided.
    assert!(run["slo_ratio"].is_null(), "{m}");
    sim.stop();
}

/// A 40-request trace fills a 1 s run only up to 40 req/s: faster runs would last
/// less than a second (0.4 ms at 100,000 req/s) and measure nothing. The search stops
/// there with a lower bound and one line; a start or grid above it is refused.
#[test]
fn runs_the_trace_cannot_fill_are_never_a_capacity() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = steady(tmp.path(), 40);
    let t = trace.to_str().unwrap();
    let base = |dir: &Path| -> Vec<String> {
        [
            t,
            "--backend",
            "vllm",
            "--simulate",
            "--speedup",
            "10",
            "--slo",
            "ttft_p99=30",
            "--run-duration",
            "1s",
            "-q",
            "-o",
            dir.to_str().unwrap(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let dir = tmp.path().join("s");
    let (code, stdout, stderr) = search_cmd(&base(&dir));
    assert_eq!(code, Some(0), "{stderr}");
    let m = manifest(&dir);
    assert_eq!(m["result"]["stopped"], "trace_too_short", "{m}");
    assert_eq!(m["result"]["fillable_rate"].as_f64(), Some(40.0));
    let found = m["result"]["rate"].as_f64().unwrap();
    assert!(found <= 40.0, "{found}");
    for r in m["runs"].as_array().unwrap() {
        assert!(r["rate"].as_f64().unwrap() <= 40.0, "{r}");
    }
    assert!(stdout.contains("at least"), "{stdout}");
    let line: Vec<&str> = stderr.lines().filter(|l| l.contains("too short")).collect();
    assert_eq!(line.len(), 1, "{stderr}");
    assert!(line[0].contains("only up to 40 req/s"), "{stderr}");

    for (extra, want) in [
        (&["--grid", "10:80:10"][..], "--grid 80 req/s"),
        (&["--start-rate", "100"][..], "--start-rate 100 req/s"),
    ] {
        let dir = tmp.path().join(format!("r{}", extra[1].replace(':', "-")));
        let mut args = base(&dir);
        args.extend(extra.iter().map(|s| s.to_string()));
        let (code, _, stderr) = search_cmd(&args);
        assert_eq!(code, Some(2), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(want) && stderr.contains("too short"),
            "{stderr}"
        );
    }
}

/// The server dies between two runs: the search reports it in one line and exits 2
/// (not 130, nothing interrupted it), keeping the run measured.
#[test]
fn a_server_that_dies_is_reported_not_an_interruption() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = steady(tmp.path(), 40);
    let sim = common::SimProcess::start("vllm", &[]);
    let dir = tmp.path().join("s");
    let child = Command::new(LLMIB)
        .arg("search")
        .args(grid_args(
            &trace,
            &sim.url,
            "5:6:1",
            &dir,
            &["--pause", "5"],
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::dies_after_first_run(child, sim, &dir.join("search.json"), "search");
    let m = manifest(&dir);
    assert_eq!(m["runs"].as_array().unwrap().len(), 1, "{m}");
    assert_eq!(m["result"]["stopped"], "server_failed", "{m}");
    assert!(dir.join(m["runs"][0]["log"].as_str().unwrap()).is_file());
}
