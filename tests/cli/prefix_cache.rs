//! The server's identity and its prefix cache, through the real binary against `llmib
//! sim`: every run log's header says which server answered (`server_identity`);
//! `--reset-prefix-cache` drops the simulated cache before the run and records it;
//! sweeps and searches reset between rates by default (each rate starts cold; without
//! the reset later rates run warm); a server without a reset endpoint is a warning,
//! not a failure.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{SimProcess, llmib, s, write_trace};

/// 40 words: two full blocks of the tiny profile's 16-token blocks, cached as 32 tokens.
const PROMPT: &str = "w01 w02 w03 w04 w05 w06 w07 w08 w09 w10 w11 w12 w13 w14 w15 w16 \
                      w17 w18 w19 w20 w21 w22 w23 w24 w25 w26 w27 w28 w29 w30 w31 w32 \
                      w33 w34 w35 w36 w37 w38 w39 w40";

/// `n` requests of [`PROMPT`] (all the same: every one after the first can hit the
/// cache), 100 ms apart, 4 output tokens each.
fn trace(dir: &Path, n: u64) -> PathBuf {
    let path = dir.join("same-prompt.msgpack");
    write_trace(
        &path,
        "same-prompt",
        n,
        100_000_000,
        PROMPT,
        formats::LengthDist::Fixed { value: 4, floor: 1 },
        |_| 4,
    );
    path
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn succeeded(out: &Output) -> (String, String) {
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "exit {:?}: {stderr}", out.status);
    (stdout, stderr)
}

/// The first request's cached prompt tokens as the server reported them.
fn first_cached(log: &Path) -> u32 {
    let run = formats::read_log(log).unwrap();
    let first = run.records.iter().find(|r| r.id == 0).unwrap();
    first
        .server_cached_tokens
        .expect("the simulator reports cached tokens")
}

fn replay(trace: &Path, url: &str, backend: &str, log: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "replay",
        s(trace),
        "--backend",
        backend,
        "--endpoint",
        url,
        "-q",
        "-o",
        s(log),
    ];
    args.extend_from_slice(extra);
    llmib(&args)
}

#[test]
fn replay_records_the_server_identity_and_the_reset() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = trace(tmp.path(), 3);
    let sim = SimProcess::start("openai", &[]);
    let log = |name: &str| tmp.path().join(name);

    // A first run warms the cache: without a reset the next run's first request hits.
    succeeded(&replay(&trace, &sim.url, "openai", &log("a.msgpack"), &[]));
    succeeded(&replay(
        &trace,
        &sim.url,
        "openai",
        &log("warm.msgpack"),
        &[],
    ));
    assert_eq!(first_cached(&log("warm.msgpack")), 32);
    let warm = formats::read_log(log("warm.msgpack")).unwrap().header;
    assert_eq!(warm.prefix_cache_reset, None, "no reset asked for");

    let reset = log("reset.msgpack");
    succeeded(&replay(
        &trace,
        &sim.url,
        "openai",
        &reset,
        &["--reset-prefix-cache"],
    ));
    assert_eq!(first_cached(&reset), 0, "the reset dropped the cache");
    let h = formats::read_log(&reset).unwrap().header;
    let r = h.prefix_cache_reset.expect("the reset is recorded");
    assert_eq!(r.outcome, "ok");
    assert_eq!(r.request.as_deref(), Some("POST /reset_prefix_cache"));
    assert_eq!(r.http_status, Some(200));
    assert_eq!(r.answer.as_deref(), Some(r#"{"success":true}"#));
    assert!(r.at_unix_ns > 0 && r.at_unix_ns <= h.started_unix_ns);
    assert_eq!(r.before_start_ns, h.started_unix_ns - r.at_unix_ns);

    // Who answered: the simulator, its model and limit, its cache settings.
    let id = h.server_identity.expect("the identity is recorded");
    assert_eq!(id.kind.as_deref(), Some("llmib-sim"));
    assert_eq!(id.models.len(), 1);
    assert_eq!(id.models[0].id, "llmib-sim-tiny");
    assert_eq!(id.models[0].max_model_len, Some(2048));
    assert_eq!(id.cache_config["block_size"], "16");
    assert_eq!(id.cache_config["enable_prefix_caching"], "True");
    let requests: Vec<&str> = id.sources.iter().map(|s| s.request.as_str()).collect();
    assert!(requests.contains(&"GET /v1/models"), "{requests:?}");
    assert!(requests.contains(&"GET /metrics"), "{requests:?}");

    // The analysis says which server and cache state each run measured.
    let out = llmib(&["analyze", s(&reset), s(&log("warm.msgpack"))]);
    let (stdout, _) = succeeded(&out);
    assert!(stdout.contains("## Servers"), "{stdout}");
    assert!(
        stdout.contains(
            "llmib-sim; model llmib-sim-tiny (max_model_len 2048); cache \
             enable_prefix_caching=True, block_size=16"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("prefix cache reset before the run: ok (POST /reset_prefix_cache"),
        "{stdout}"
    );
}

#[test]
fn sglang_flushes_its_cache_with_its_own_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = trace(tmp.path(), 2);
    let sim = SimProcess::start("sglang", &[]);
    let (a, b) = (tmp.path().join("a.msgpack"), tmp.path().join("b.msgpack"));
    succeeded(&replay(&trace, &sim.url, "sglang", &a, &[]));
    succeeded(&replay(
        &trace,
        &sim.url,
        "sglang",
        &b,
        &["--reset-prefix-cache"],
    ));
    assert_eq!(first_cached(&b), 0);
    let r = formats::read_log(&b)
        .unwrap()
        .header
        .prefix_cache_reset
        .unwrap();
    assert_eq!(
        (r.outcome.as_str(), r.request.as_deref()),
        ("ok", Some("POST /flush_cache"))
    );
    assert_eq!(r.tried, ["POST /flush_cache"]);
}

#[test]
fn a_server_without_a_reset_endpoint_is_a_warning_not_a_failure() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = trace(tmp.path(), 3);
    // llama.cpp's server has no reset endpoint.
    let sim = SimProcess::start("llamacpp", &[]);
    let log = tmp.path().join("run.msgpack");
    let out = replay(
        &trace,
        &sim.url,
        "llamacpp",
        &log,
        &["--reset-prefix-cache"],
    );
    let (stdout, stderr) = succeeded(&out);
    let all = format!("{stdout}{stderr}");
    assert!(
        all.contains("prefix cache not reset: the server has no reset endpoint"),
        "{all}"
    );
    let h = formats::read_log(&log).unwrap().header;
    let r = h.prefix_cache_reset.unwrap();
    assert_eq!(r.outcome, "unsupported");
    assert_eq!(r.request, None);
    assert_eq!(r.tried, ["POST /reset_prefix_cache", "POST /flush_cache"]);
    assert_eq!(r.http_status, Some(404));
    assert_eq!(
        h.server_identity.unwrap().version.as_deref(),
        Some("b1-llmib-sim")
    );

    // A sweep says once that later rates run warm, and records it.
    let dir = tmp.path().join("sweep");
    let out = llmib(&[
        "sweep",
        s(&trace),
        "--backend",
        "llamacpp",
        "--endpoint",
        &sim.url,
        "--rates",
        "20,40",
        "-q",
        "-o",
        s(&dir),
    ]);
    let (_, stderr) = succeeded(&out);
    assert_eq!(
        stderr.matches("later rates run warm").count(),
        1,
        "{stderr}"
    );
    let m = manifest(&dir.join("sweep.json"));
    assert_eq!(m["prefix_cache"]["reset"], "each_run");
    assert_eq!(m["prefix_cache"]["outcome"], "unsupported");
    assert_eq!(m["prefix_cache"]["warm_between_runs"], true);
}

fn manifest(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The sweep's run logs, by rate.
fn logs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "msgpack"))
        .collect();
    v.sort();
    v
}

fn sweep(trace: &Path, dir: &Path, extra: &[&str]) -> (String, String) {
    let mut args = vec![
        "sweep",
        s(trace),
        "--backend",
        "openai",
        "--simulate",
        "--rates",
        "20,40,80",
        "-q",
        "-o",
        s(dir),
    ];
    args.extend_from_slice(extra);
    succeeded(&llmib(&args))
}

#[test]
fn a_sweep_resets_the_cache_before_each_rate_unless_told_not_to() {
    let _timing = common::timing_sensitive();
    let tmp = tempfile::tempdir().unwrap();
    let trace = trace(tmp.path(), 6);

    let dir = tmp.path().join("reset");
    let (stdout, stderr) = sweep(&trace, &dir, &[]);
    assert!(
        stdout.contains("prefix cache: reset before each run (POST /reset_prefix_cache)"),
        "{stdout}"
    );
    assert!(!stderr.contains("run warm"), "{stderr}");
    let runs = logs(&dir);
    assert_eq!(runs.len(), 3);
    for log in &runs {
        assert_eq!(first_cached(log), 0, "{} starts cold", log.display());
        let r = formats::read_log(log).unwrap().header.prefix_cache_reset;
        assert_eq!(r.unwrap().outcome, "ok");
    }
    let m = manifest(&dir.join("sweep.json"));
    assert_eq!(m["prefix_cache"]["reset"], "each_run");
    assert_eq!(m["prefix_cache"]["outcome"], "ok");
    assert_eq!(m["prefix_cache"]["request"], "POST /reset_prefix_cache");
    assert_eq!(m["prefix_cache"]["warm_between_runs"], false);
    assert_eq!(m["settings"]["reset_prefix_cache"], true);

    let dir = tmp.path().join("warm");
    let (stdout, _) = sweep(&trace, &dir, &["--no-reset-prefix-cache"]);
    assert!(
        stdout.contains("prefix cache: not reset between runs"),
        "{stdout}"
    );
    let cached: Vec<u32> = logs(&dir).iter().map(|l| first_cached(l)).collect();
    assert_eq!(
        cached,
        [0, 32, 32],
        "later rates start with the earlier ones' cache"
    );
    let m = manifest(&dir.join("sweep.json"));
    assert_eq!(m["prefix_cache"]["reset"], "off");
    assert_eq!(m["prefix_cache"]["warm_between_runs"], true);
}

#[test]
fn a_search_resets_between_runs_by_default() {
    let tmp = tempfile::tempdir().unwrap();
    let trace = trace(tmp.path(), 20);
    let dir = tmp.path().join("search");
    let out = llmib(&[
        "search",
        s(&trace),
        "--backend",
        "openai",
        "--simulate",
        "--slo",
        "ttft_p99=10",
        "--grid",
        "20:40:20",
        "--run-duration",
        "0.5s",
        "--repeats",
        "1",
        "-q",
        "-o",
        s(&dir),
    ]);
    let (stdout, _) = succeeded(&out);
    assert!(
        stdout.contains("prefix cache: reset before each run"),
        "{stdout}"
    );
    let runs = logs(&dir);
    assert!(runs.len() >= 2, "{runs:?}");
    for log in &runs {
        assert_eq!(first_cached(log), 0, "{} starts cold", log.display());
    }
    let m = manifest(&dir.join("search.json"));
    assert_eq!(m["prefix_cache"]["outcome"], "ok");
}
