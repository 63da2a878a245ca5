//! `llmib compare` end to end on runs made in virtual time (`sweep --profile`: the same
//! trace through engine profiles whose costs are known, so the true difference is known
//! and the runs are exactly repeatable): an A/A pair finds no difference and passes the
//! gate, a 10% slower decode is found slower and fails it; bad input is one line.

use crate::common;

use std::path::{Path, PathBuf};

use common::{llmib, write_trace};

/// A V1 engine, 8 sequences, decode step `decode_us` (+ 200 µs a sequence).
fn profile(dir: &Path, name: &str, decode_us: f64) -> String {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(
        &p,
        format!(
            r#"
name = "{name}"
description = "compare test"
model = "cmp"
max_input_length = 256
max_total_tokens = 512
scheduler = "vllm-v1"
[engine]
kv_capacity_tokens = 65536
max_batch_size = 8
max_prefill_tokens = 2048
block_size = 16
separate_prefill = false
prefill_base_us = 2000.0
prefill_per_token_us = 20.0
decode_base_us = {decode_us:.1}
decode_per_seq_us = 200.0
"#
        ),
    )
    .unwrap();
    p.to_str().unwrap().to_string()
}

/// 300 requests 40 ms apart, outputs of 8..40 tokens.
fn trace(dir: &Path, name: &str) -> String {
    let t = dir.join(format!("{name}.msgpack"));
    write_trace(
        &t,
        name,
        300,
        40_000_000,
        "a b c d e f g h",
        formats::LengthDist::Uniform {
            lo: 8,
            hi: 40,
            floor: 1,
        },
        |id| 8 + (id * 7 % 33) as u32,
    );
    t.to_str().unwrap().to_string()
}

/// A run of `trace` on `profile` in virtual time; the directory holding its log.
fn run(dir: &Path, name: &str, trace: &str, profile: &str) -> PathBuf {
    let out = dir.join(name);
    let o = llmib(&[
        "sweep",
        trace,
        "--backend",
        "vllm",
        "--profile",
        profile,
        "--rates",
        "20",
        "-q",
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Writes the run log in `run_dir` again at `to`, each record through `f`, the trailer
/// with `client`.
fn rewrite(
    run_dir: &Path,
    to: &Path,
    client: Option<formats::ClientCpu>,
    f: impl Fn(&formats::LogRecord) -> formats::LogRecord,
) {
    let log = std::fs::read_dir(run_dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|x| x == "msgpack"))
        .unwrap();
    let run = formats::read_log(&log).unwrap();
    let mut w = formats::LogWriter::create(to, &run.header).unwrap();
    for r in &run.records {
        w.write(&f(r)).unwrap();
    }
    w.finish_with_client(true, 0, client).unwrap();
}

fn compare(args: &[&str]) -> (Option<i32>, String, String) {
    let o = llmib(&[&["compare"], args].concat());
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn row<'a>(table: &'a str, metric: &str, stat: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.starts_with(&format!("| {metric} | {stat} |")))
        .unwrap_or_else(|| panic!("no {metric} {stat} row in\n{table}"))
}

#[test]
fn a_slower_decode_is_found_and_fails_the_gate_and_a_a_does_not() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let t = trace(d, "steady");
    let (fast, slow) = (profile(d, "fast", 10000.0), profile(d, "slow", 11000.0));
    let a = run(d, "a", &t, &fast);
    let a2 = run(d, "a2", &t, &fast);
    let b = run(d, "b", &t, &slow);
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let json = d.join("cmp.json");
    let figs = d.join("figs");
    let (code, out, err) = compare(&[
        &s(&a),
        &s(&b),
        "--fail-if",
        "tpot_p50>+5%",
        "--json",
        json.to_str().unwrap(),
        "-o",
        figs.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("paired by request: 300 pairs"), "{out}");
    // Decode steps of 10.2-11.8 ms against 11.2-12.8 ms: TPOT 8-10% higher.
    let tpot = row(&out, "tpot", "p50");
    assert!(tpot.contains("slower"), "{tpot}");
    assert!(
        out.contains("--fail-if tpot_p50>+5%:") && out.contains("-> FAIL"),
        "{out}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let r = j["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["metric"] == "tpot" && r["stat"] == "p50")
        .unwrap();
    let (lo, hi) = (
        r["interval"][0].as_f64().unwrap(),
        r["interval"][1].as_f64().unwrap(),
    );
    let rel = r["relative"].as_f64().unwrap();
    assert!(
        (0.05..0.12).contains(&rel) && lo <= rel && rel <= hi && lo > 0.05,
        "{r}"
    );
    assert_eq!(j["paired"], true);
    // The figures: the forest plot and a CDF of the paired differences per metric.
    for f in [
        "compare-forest.png",
        "compare-forest.svg",
        "compare-tpot.svg",
        "compare-e2e.png",
    ] {
        assert!(figs.join(f).is_file(), "{f}");
    }
    let forest = std::fs::read_to_string(figs.join("compare-forest.svg")).unwrap();
    assert!(
        forest.contains("tpot p50") && forest.contains("e2e p90"),
        "the rows are labelled"
    );
    // Output tokens are the trace's on both sides: no difference.
    assert!(
        row(&out, "output_tokens", "p50").contains("no detectable difference"),
        "{out}"
    );
    // A/A: the same runs again, no difference, the gate passes.
    let (code, out, err) = compare(&[&s(&a), &s(&a2), "--fail-if", "tpot_p50>+5%"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        row(&out, "tpot", "p50").contains("no detectable difference"),
        "{out}"
    );
    assert!(out.contains("-> pass"), "{out}");
    // Unpaired, the same A/B: a wider interval than paired.
    let (_, unpaired, _) = compare(&[&s(&a), &s(&b), "--unpaired"]);
    assert!(unpaired.contains("unpaired (distributions)"), "{unpaired}");
    // Goodput under a TPOT limit between the two decode steps: most of A's requests meet
    // it, few of B's; one run a side gives no interval, so its rule passes and says why.
    let (code, out, err) = compare(&[
        &s(&a),
        &s(&b),
        "--slo",
        "tpot=0.0115",
        "--fail-if",
        "goodput<-3%",
        "--block",
        "1",
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("good requests/s (--slo) (run level)"), "{out}");
    assert!(out.contains("blocks of 1 (arrival order)"), "{out}");
    assert!(
        out.contains("--fail-if goodput<-3%:") && out.contains("one run a side"),
        "{out}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let g = &j["goodput"];
    assert!(g["relative"].as_f64().unwrap() < -0.5, "{g}");
    assert_eq!(g["slo"]["tpot_s"], 0.0115, "{g}");
    assert_eq!(j["block"], 1);
}

#[test]
fn bad_input_is_one_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (t1, t2) = (trace(d, "one"), trace(d, "two"));
    let p = profile(d, "p", 10000.0);
    let (a, b) = (run(d, "a", &t1, &p), run(d, "b", &t2, &p));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let json = d.join("out.json");
    let j = json.to_str().unwrap();
    // A log with no ok request: A's records, every one not sent.
    let none = d.join("none.msgpack");
    rewrite(&a, &none, None, |r| {
        formats::LogRecord::not_sent(r.id, r.scheduled_ns, r.prompt_tokens, r.max_tokens, false)
    });
    for (args, says) in [
        (
            vec![s(&a), s(&b), "--paired".into()],
            "pairing needs the same trace",
        ),
        (vec![s(&a), s(&none)], "no ok request"),
        (
            vec![s(&a), s(&a), "--fail-if".into(), "tpot>5".into()],
            "--fail-if",
        ),
        (vec![s(&a)], "give two runs"),
        (vec![s(&a), s(&a), "--block".into(), "0".into()], "--block"),
        (vec![s(&a), s(&a), "--slo".into(), "tpot".into()], "--slo"),
    ] {
        let mut v: Vec<&str> = args.iter().map(String::as_str).collect();
        v.extend(["--json", j]);
        let (code, out, err) = compare(&v);
        assert_eq!(code, Some(2), "{args:?}: {out}{err}");
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(!json.exists(), "{args:?} wrote {j}");
    }
    // Different traces without --paired: compared unpaired, and said so.
    let (code, out, _) = compare(&[&s(&a), &s(&b)]);
    assert_eq!(code, Some(0));
    assert!(
        out.contains("unpaired (distributions)") && out.contains("trace: different"),
        "{out}"
    );
}

/// Several runs a side (`--vs`): each request's mean over its side's runs is paired, and
/// the run-level throughput gets Welch's interval; `--baseline` compares every other run
/// against one (a JSON list, one comparison each).
#[test]
fn several_runs_a_side_and_a_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let t = trace(d, "steady");
    let (fast, slow) = (profile(d, "fast", 10000.0), profile(d, "slow", 11000.0));
    let s = |p: &Path| p.to_str().unwrap().to_string();
    let a: Vec<String> = (1..=2)
        .map(|i| s(&run(d, &format!("a{i}"), &t, &fast)))
        .collect();
    let b: Vec<String> = (1..=2)
        .map(|i| s(&run(d, &format!("b{i}"), &t, &slow)))
        .collect();
    let json = d.join("vs.json");
    let (code, out, err) = compare(&[
        &a[0],
        &a[1],
        "--vs",
        &b[0],
        &b[1],
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("300 pairs") && row(&out, "tpot", "p50").contains("slower"),
        "{out}"
    );
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["throughput"]["a"].as_array().unwrap().len(), 2);
    assert_eq!(j["throughput"]["sd"][0], 0.0, "{j}");
    assert!(out.contains("(mean ") && out.contains("cv 0.0%"), "{out}");
    // Virtual-time runs repeat exactly: no spread within a side, so no t-interval.
    assert!(j["throughput"]["welch"].is_null(), "{j}");
    let (code, out, err) = compare(&[
        &a[0],
        &a[1],
        &b[0],
        "--baseline",
        &a[0],
        "--json",
        json.to_str().unwrap(),
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    let j: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let list = j.as_array().expect("one comparison per other run");
    assert_eq!(list.len(), 2);
    assert!(list[1]["b"].as_str().unwrap().contains("b1"), "{}", list[1]);
}

/// A run whose client was CPU-bound (the replayer records it in the trailer) is said at
/// the top of the comparison.
#[test]
fn a_cpu_bound_client_is_said_at_the_top() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let t = trace(d, "steady");
    let a = run(d, "a", &t, &profile(d, "p", 10000.0));
    let bound = d.join("bound.msgpack");
    let cpu = formats::ClientCpu {
        cpu_ms: 11_500,
        cores: 2,
        bound: true,
    };
    rewrite(&a, &bound, Some(cpu), Clone::clone);
    let (code, out, err) = compare(&[a.to_str().unwrap(), bound.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("A: ")
            && out.contains(
                "WARNING: the client was CPU-bound in B's run 1: 11.5 s of CPU on 2 cores"
            ),
        "{out}"
    );
    let (_, out, _) = compare(&[a.to_str().unwrap(), a.to_str().unwrap()]);
    assert!(!out.contains("CPU-bound"), "{out}");
}
