//! `llmib sweep` and `llmib search` with `--profile` and no `--endpoint`: every run is
//! made by the profile's engine model in virtual time (`simulator::virtual_run`) and
//! written as a run log, then analysed and searched over exactly as measured runs are.
//! Deterministic, so a search and a grid over the same runs agree, and the same sweep
//! twice gives the same records.

use crate::common;

use std::path::Path;

use common::{llmib, write_trace};

/// One request at a time, 10 ms steps, 5-token answers: 50 ms each, 20 req/s at most.
fn capacity_profile(dir: &Path) -> String {
    let p = dir.join("cap.toml");
    std::fs::write(
        &p,
        common::one_at_a_time_profile(10000.0, "capacity 20 req/s for 5-token answers"),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

/// 400 requests 25 ms apart (40 req/s), 5-token answers.
fn steady_trace(dir: &Path) -> String {
    let t = dir.join("steady.msgpack");
    write_trace(
        &t,
        "steady",
        400,
        25_000_000,
        "a b c d",
        formats::LengthDist::Fixed { value: 5, floor: 1 },
        |_| 5,
    );
    t.to_str().unwrap().to_string()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn succeed(args: &[&str]) -> String {
    let out = llmib(args);
    assert!(
        out.status.success(),
        "llmib {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Below 20 req/s no request waits (TTFT one 10 ms step); above, the queue grows by
/// (rate - 20) requests a second, 50 ms each: over a 3 s run the median request waits
/// about 0.075 s per req/s above 20, so `ttft_p50=0.25` holds to about 23 req/s.
#[test]
fn a_search_on_a_twin_runs_in_virtual_time_and_agrees_with_its_grid() {
    let tmp = tempfile::tempdir().unwrap();
    let (profile, trace) = (capacity_profile(tmp.path()), steady_trace(tmp.path()));
    let search = |name: &str, extra: &[&str]| {
        let dir = tmp.path().join(name);
        let args = [
            "search",
            &trace,
            "--backend",
            "vllm",
            "--profile",
            &profile,
            "--slo",
            "ttft_p50=0.25",
            "--run-duration",
            "3s",
            "-q",
            "-o",
            dir.to_str().unwrap(),
        ];
        let stdout = succeed(&[&args[..], extra].concat());
        assert!(stdout.contains("highest rate meeting"), "{stdout}");
        let m = json(&dir.join("search.json"));
        assert_eq!(m["simulated"]["virtual_time"], true, "{m}");
        (m, dir)
    };
    let (found, dir) = search("search", &["--start-rate", "10", "--repeats", "3"]);
    let (grid, _) = search("grid", &["--grid", "16:30:1", "--repeats", "1"]);
    let s = found["result"]["rate"]
        .as_f64()
        .expect("a rate meets the SLO");
    let g = grid["result"]["rate"]
        .as_f64()
        .expect("a grid rate meets the SLO");
    assert!(
        (22.0..=24.0).contains(&g),
        "grid {g}: the SLO holds to about 23"
    );
    assert!((s / g - 1.0).abs() <= 0.05, "search {s} vs grid {g}");
    // Repeats of one rate replay the same requests through the same model: they agree.
    for end in found["result"]["noise"].as_array().unwrap() {
        let (runs, met) = (end["runs"].as_u64().unwrap(), end["met"].as_u64().unwrap());
        assert!(met == 0 || met == runs, "{end}");
    }
    // Every run is a run log that says what made it.
    for r in found["runs"].as_array().unwrap() {
        let log = formats::read_log(dir.join(r["log"].as_str().unwrap())).unwrap();
        let sim = log.header.backend.simulated.as_ref().unwrap();
        assert!(sim.virtual_time);
        assert_eq!(log.header.host, "virtual");
        assert!(log.header.backend.endpoint.starts_with("virtual:"));
    }
}

/// A sweep on a twin writes logs, a manifest and the analysis as one against a server
/// does; the rows are labelled virtual time; the same sweep again gives the same records.
#[test]
fn a_sweep_on_a_twin_is_analysed_like_a_measured_one_and_repeats_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let (profile, trace) = (capacity_profile(tmp.path()), steady_trace(tmp.path()));
    let sweep = |name: &str| {
        let dir = tmp.path().join(name);
        succeed(&[
            "sweep",
            &trace,
            "--backend",
            "vllm",
            "--profile",
            &profile,
            "--rates",
            "10,20,40",
            "--duration",
            "4",
            "-q",
            "-o",
            dir.to_str().unwrap(),
        ]);
        dir
    };
    let (a, b) = (sweep("a"), sweep("b"));
    let tables = std::fs::read_to_string(a.join("analysis/tables.md")).unwrap();
    assert!(tables.contains("virtual time"), "{tables}");
    let m = json(&a.join("sweep.json"));
    assert_eq!(m["runs"].as_array().unwrap().len(), 3, "{m}");
    for name in [
        "rate-0000010.0000",
        "rate-0000020.0000",
        "rate-0000040.0000",
    ] {
        let (la, lb) = (
            formats::read_log(a.join(format!("{name}.msgpack"))).unwrap(),
            formats::read_log(b.join(format!("{name}.msgpack"))).unwrap(),
        );
        assert_eq!(la.records, lb.records, "{name}");
    }
    // At 40 req/s (twice the capacity) over 4 s, dispatching stops at 4 s: the later
    // requests are not sent and the queue's tail is cut off 5 s later (grace).
    let over = formats::read_log(a.join("rate-0000040.0000.msgpack")).unwrap();
    let outcome = |o: formats::Outcome| over.records.iter().filter(|r| r.outcome == o).count();
    assert!(outcome(formats::Outcome::NotSent) > 0);
    assert!(outcome(formats::Outcome::Ok) > 100);
    let ttft = |r: &formats::LogRecord| r.events.t_ns[0] - r.dispatched_ns.unwrap();
    let ok: Vec<&formats::LogRecord> = over
        .records
        .iter()
        .filter(|r| r.outcome == formats::Outcome::Ok)
        .collect();
    assert!(
        ttft(ok.last().unwrap()) > 10 * ttft(ok[0]),
        "the queue grows"
    );
}

#[test]
fn flags_that_do_not_fit_a_twin_are_refused_in_one_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (profile, trace) = (capacity_profile(tmp.path()), steady_trace(tmp.path()));
    let out_dir = tmp.path().join("out");
    let base = [
        "sweep",
        &trace,
        "--backend",
        "vllm",
        "--profile",
        &profile,
        "--rates",
        "10",
        "-o",
        out_dir.to_str().unwrap(),
    ];
    for (extra, says) in [
        (&["--speedup", "10"][..], "--speedup"),
        (&["--no-reset-prefix-cache"][..], "empty prefix cache"),
        (&["--endpoint", "http://127.0.0.1:9"][..], "--endpoint"),
    ] {
        let out = llmib(&[&base[..], extra].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(says), "{extra:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(!out_dir.exists(), "{extra:?} left {}", out_dir.display());
    }
}
