//! `llmib calibrate` end to end: logs of the simulator (V1 policy, known step costs)
//! replayed at two rates give a profile that reproduces them and predicts a third rate;
//! the same calibration twice gives the same bytes; the profile serves as a twin; logs
//! of different servers and bad flags are one line.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::llmib;

/// A V1 server with costs of a few ms (so a loaded machine moves them little): 8
/// sequences, 512-token budget (below the context: prompts are chunked, so the 2023
/// policies cannot serve it, and `scheduler` makes V1 its default), 16-token blocks.
const PROFILE: &str = r#"
name = "known"
model = "known-model"
max_input_length = 1023
max_total_tokens = 1024
scheduler = "vllm-v1"
[engine]
kv_capacity_tokens = 16384
max_batch_size = 8
max_prefill_tokens = 512
block_size = 16
separate_prefill = false
prefill_base_us = 2000.0
prefill_per_token_us = 10.0
decode_base_us = 4000.0
decode_per_seq_us = 500.0
decode_per_ctx_token_us = 0.0
"#;

fn spec(dir: &Path, name: &str, rate: f64, n: u32) -> PathBuf {
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(
        &spec,
        format!(
            r#"
name = "{name}"
seed = 3
requests = {n}
ignore_eos = true
[prompt_tokens]
dist = "uniform"
lo = 8
hi = 600
[output_tokens]
dist = "uniform"
lo = 4
hi = 24
[arrival]
process = "poisson"
rate = {rate}
"#
        ),
    )
    .unwrap();
    let trace = dir.join(format!("{name}.trace.msgpack"));
    common::ok(&["generate", s(&spec), "-o", s(&trace)]);
    trace
}

fn replay(url: &str, trace: &Path, out: &Path) {
    common::ok(&[
        "replay",
        s(trace),
        "--backend",
        "openai",
        "--endpoint",
        url,
        "-o",
        s(out),
        "-q",
    ]);
}

/// The command failed with exit 2 and one line on stderr that contains `needle`.
fn one_line_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains(needle), "{stderr}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn a_twin_fitted_to_two_rates_reproduces_them_and_predicts_a_third() {
    let _timing = common::timing_sensitive();
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("known.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let sim = common::SimProcess::start_profile("openai", s(&profile), &[]);
    let logs: Vec<PathBuf> = [("light", 4.0, 40), ("busy", 16.0, 80), ("held", 10.0, 60)]
        .iter()
        .map(|&(name, rate, n)| {
            let trace = spec(dir.path(), name, rate, n);
            let log = dir.path().join(format!("{name}.msgpack"));
            replay(&sim.url, &trace, &log);
            log
        })
        .collect();
    sim.stop();
    let twin = dir.path().join("twin.toml");
    let args = |out: &Path| -> Vec<String> {
        let mut a: Vec<String> = ["calibrate", s(&logs[0]), s(&logs[1]), "--holdout"]
            .map(String::from)
            .to_vec();
        a.extend(
            [
                s(&logs[2]),
                "--max-num-seqs",
                "8",
                "--max-num-batched-tokens",
                "512",
            ]
            .map(String::from),
        );
        a.extend(["-o", s(out)].map(String::from));
        a
    };
    let run = |a: Vec<String>| common::ok(&a.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = run(args(&twin));
    eprintln!("{stdout}");
    // Every p50 of TTFT, TPOT and E2E, and the throughput, fitted and held out, within
    // 25% (real time on a shared machine: the simulator's own steps wander a little).
    let mut rows = 0;
    for line in stdout
        .lines()
        .filter(|l| l.starts_with("| ") && l.contains(".msgpack"))
    {
        let p50: f64 = line
            .split('(')
            .nth(1)
            .unwrap()
            .split('%')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(p50.abs() <= 25.0, "{line}\n{stdout}");
        rows += 1;
    }
    // Fitted: 2 logs x (throughput, TTFT, TPOT, E2E); held out: 1 x (the same and ITL).
    assert_eq!(rows, 13, "{stdout}");
    // The held-out log's CDF figures, beside the profile.
    for f in [
        "holdout-1-ttft.png",
        "holdout-1-ttft.svg",
        "holdout-1-e2e.svg",
    ] {
        assert!(dir.path().join("twin-holdout").join(f).is_file(), "{f}");
    }
    let text = std::fs::read_to_string(&twin).unwrap();
    assert!(text.contains("scheduler = \"vllm-v1\""), "{text}");
    assert!(
        text.contains("max_batch_size = 8") && text.contains("block_size = 16"),
        "{text}"
    );
    assert!(text.contains("trace_sha256 = "), "{text}");
    // The same calibration again: the same bytes.
    let again = dir.path().join("again.toml");
    run(args(&again));
    assert_eq!(std::fs::read(&again).unwrap(), text.as_bytes());
    // A held-out run given twice (a copy: a repeat whose spread is 0) gets the repeat
    // table: per metric and percentile, the mean, the spread, the error and its bound.
    let copy = dir.path().join("held-copy.msgpack");
    std::fs::copy(&logs[2], &copy).unwrap();
    let mut a = args(&dir.path().join("repeats.toml"));
    a.insert(4, s(&copy).to_string());
    let stdout = run(a);
    assert!(
        stdout.contains("held out, 2 repeats of one run"),
        "{stdout}"
    );
    let repeat_rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("| 0.0% |") && (l.ends_with("| yes |") || l.ends_with("| no |")))
        .collect();
    assert_eq!(repeat_rows.len(), 12, "4 metrics x 3 percentiles: {stdout}");
    // The twin predicts, with an interval from its fit's errors.
    let held_trace = dir.path().join("held.trace.msgpack");
    let predicted = common::ok(&["predict", s(&held_trace), "--profile", s(&twin)]);
    let ttft = predicted
        .lines()
        .find(|l| l.starts_with("| ttft |"))
        .unwrap();
    let cells: Vec<&str> = ttft.split('|').map(str::trim).collect();
    // The interval is where the measured value lies if the fit's errors repeat: not
    // necessarily around the prediction (a fit that over-predicted everywhere puts it
    // below).
    let (p50, interval) = (cells[2].parse::<f64>().unwrap(), cells[6]);
    let (lo, hi) = interval.split_once(" - ").expect(ttft);
    let (lo, hi): (f64, f64) = (lo.parse().unwrap(), hi.parse().unwrap());
    assert!(0.0 < lo && lo <= hi && hi < 2.0 * p50, "{ttft}");
    // The twin serves.
    let twin_sim = common::SimProcess::start_profile("openai", s(&twin), &[]);
    twin_sim.stop();
}

#[test]
fn logs_of_different_servers_and_bad_flags_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = spec(dir.path(), "t", 20.0, 12);
    let mut logs = Vec::new();
    for (i, profile) in ["tiny", "a800-llama2-13b"].iter().enumerate() {
        let sim = common::SimProcess::start_profile("openai", profile, &["--speedup", "50"]);
        let log = dir.path().join(format!("{i}.msgpack"));
        replay(&sim.url, &trace, &log);
        sim.stop();
        logs.push(log);
    }
    let out_path = dir.path().join("x.toml");
    let out = llmib(&["calibrate", s(&logs[0]), s(&logs[1]), "-o", s(&out_path)]);
    one_line_error(&out, "different servers");
    assert!(!out_path.exists());
    let out = llmib(&[
        "calibrate",
        s(&logs[0]),
        "--policy",
        "nope",
        "-o",
        s(&out_path),
    ]);
    one_line_error(&out, "--policy");
    let out = llmib(&["calibrate", s(&trace), "-o", s(&out_path)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!out_path.exists());
}

/// `llmib predict` on the profile with known costs: the trace's percentiles and
/// throughput, from virtual time; a rate doubles the load; bad flags are one line.
#[test]
fn predict_gives_the_tables_of_a_trace_on_a_profile() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("known.toml");
    std::fs::write(&profile, PROFILE).unwrap();
    let trace = spec(dir.path(), "p", 10.0, 200);
    let predict = |extra: &[&str]| {
        let mut a = vec!["predict", s(&trace), "--profile", s(&profile)];
        a.extend_from_slice(extra);
        common::ok(&a)
    };
    let base = predict(&[]);
    assert!(
        base.contains("200 requests") && base.contains("200 completed"),
        "{base}"
    );
    let p50 = |out: &str, metric: &str| -> f64 {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("| {metric} |")))
            .unwrap();
        line.split('|').nth(2).unwrap().trim().parse().unwrap()
    };
    // Twice the rate on a server this small queues: TTFT grows.
    let busy = predict(&["--rate", "40"]);
    assert!(p50(&busy, "ttft") > p50(&base, "ttft"), "{base}\n{busy}");
    // Deterministic.
    assert_eq!(predict(&[]), base);
    let out = llmib(&[
        "predict",
        s(&trace),
        "--profile",
        s(&profile),
        "--rate",
        "0",
    ]);
    one_line_error(&out, "--rate");
    let out = llmib(&["predict", s(&trace), "--profile", "nope"]);
    one_line_error(&out, "--profile");
}
