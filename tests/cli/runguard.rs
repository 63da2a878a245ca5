//! The run commands (`replay`, `sweep`, `search`, `sim`) never lose data, never hang and
//! refuse bad flags on one line (issue 21): the `--server-metrics` sidecar follows the
//! run log's output rules, `--start-at` waits are interruptible, HTTP answers read
//! outside the request path are bounded, credentials in an endpoint are never stored,
//! a sweep never destroys another one. Through the real binary, against `llmib sim`.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{LLMIB, SimProcess, s, wait_limited, write_trace};
use formats::{LengthDist, read_log, sidecar_path};

fn trace(dir: &Path, name: &str, n: u64) -> PathBuf {
    let path = dir.join(format!("{name}.msgpack"));
    let fixed = LengthDist::Fixed { value: 4, floor: 1 };
    write_trace(&path, name, n, 10_000_000, "a b c d", fixed, |_| 4);
    path
}

fn replay(trace: &Path, url: &str, out: &Path, extra: &[&str]) -> Output {
    Command::new(LLMIB)
        .args(["replay", s(trace), "--backend", "vllm", "--endpoint", url])
        .args(["-o", s(out), "--quiet"])
        .args(extra)
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Exit 2 with one line on stderr containing `what`.
fn refused(o: &Output, what: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert_eq!(e.trim().lines().count(), 1, "{e}");
    assert!(e.contains(what), "{e}");
}

#[test]
fn the_sidecar_obeys_the_run_logs_output_rules_before_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "t", 5);
    let sim = SimProcess::start("vllm", &[]);
    let metrics = ["--server-metrics", "auto"];
    let out = dir.path().join("run.msgpack");
    let side = sidecar_path(&out);

    // An existing sidecar is kept without --force, and nothing is run.
    std::fs::write(&side, "keep me\n").unwrap();
    let r = replay(&t, &sim.url, &out, &metrics);
    refused(&r, "--force");
    assert_eq!(std::fs::read_to_string(&side).unwrap(), "keep me\n");
    assert!(!out.exists());
    std::fs::remove_file(&side).unwrap();

    // A symbolic link planted at its path is never followed, with or without --force.
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, &side).unwrap();
    refused(&replay(&t, &sim.url, &out, &metrics), "--force");
    assert!(!out.exists());
    let forced = [&metrics[..], &["--force"]].concat();
    let r = replay(&t, &sim.url, &out, &forced);
    assert!(r.status.success(), "{}", stderr(&r));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    let m = std::fs::symlink_metadata(&side).unwrap();
    assert!(m.is_file(), "the sidecar replaced the link");
    formats::read_server_metrics(&side).unwrap();

    // A directory at its path fails before the run, not after a complete log.
    let out2 = dir.path().join("run2.msgpack");
    std::fs::create_dir(sidecar_path(&out2)).unwrap();
    refused(&replay(&t, &sim.url, &out2, &forced), "a directory");
    assert!(!out2.exists());

    // The trace being replayed, named like the sidecar: never replaced, even with --force.
    let out3 = dir.path().join("t3");
    let t3 = sidecar_path(&out3);
    std::fs::copy(&t, &t3).unwrap();
    let before = std::fs::read(&t3).unwrap();
    refused(
        &replay(&t3, &sim.url, &out3, &forced),
        "the trace being replayed",
    );
    assert_eq!(std::fs::read(&t3).unwrap(), before);
    assert!(!out3.exists());
}

#[test]
fn a_start_at_wait_ends_on_sigint_or_sigterm_with_exit_130_and_no_log() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "t", 5);
    let sim = SimProcess::start("vllm", &[]);
    for signal in [libc::SIGTERM, libc::SIGINT] {
        let out = dir.path().join(format!("run-{signal}.msgpack"));
        let mut child = Command::new(LLMIB)
            .args(["replay", s(&t), "--backend", "vllm", "--endpoint", &sim.url])
            .args(["-o", s(&out), "--quiet", "--start-at", "+3600"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        err.read_line(&mut line).unwrap();
        assert!(line.contains("waiting for --start-at"), "{line}");
        // SAFETY: kill(2) on a child this test spawned and has not reaped.
        assert_eq!(unsafe { libc::kill(child.id() as libc::pid_t, signal) }, 0);
        let status = wait_limited(&mut child, Duration::from_secs(20));
        let mut rest = String::new();
        err.read_to_string(&mut rest).unwrap();
        assert_eq!(status.code(), Some(130), "{rest}");
        assert!(rest.contains("nothing was sent"), "{rest}");
        assert!(!out.exists());
    }
}

#[test]
fn a_start_at_instant_out_of_range_is_named_too_far_ahead() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "t", 5);
    let sim = SimProcess::start("vllm", &[]);
    let out = dir.path().join("run.msgpack");
    // 1e11 s overflows nanoseconds; 1e9 s (31 years) and year 2255 are in range of u64.
    for at in ["+1e11", "+1e9", "9000000000000000000"] {
        let r = replay(&t, &sim.url, &out, &["--start-at", at]);
        refused(&r, "too far ahead");
        assert!(!stderr(&r).contains("past"), "{}", stderr(&r));
    }
    assert!(!out.exists());
}

/// A server on 127.0.0.1 that answers every connection with `answer` (run on its own
/// thread per connection); returns its base URL.
fn serve(answer: fn(std::net::TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            std::thread::spawn(move || answer(conn));
        }
    });
    url
}

fn read_request(conn: &mut std::net::TcpStream) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") && conn.read(&mut byte).unwrap_or(0) == 1 {
        buf.push(byte[0]);
    }
}

/// 200 with an endless chunked body of valid Prometheus lines.
fn endless(mut conn: std::net::TcpStream) {
    read_request(&mut conn);
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n";
    if conn.write_all(head.as_bytes()).is_err() {
        return;
    }
    let chunk = "vllm:num_requests_running 1\n".repeat(2048);
    let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
    while conn.write_all(framed.as_bytes()).is_ok() {}
}

/// Accepts, reads the request, never answers.
fn silent(mut conn: std::net::TcpStream) {
    read_request(&mut conn);
    std::thread::sleep(Duration::from_secs(60));
}

/// Runs `llmib ARGS` and reaps it with wait4(2): its output and its peak RSS in KiB.
// The child is reaped by wait4, which clippy does not see.
#[allow(clippy::zombie_processes)]
fn run_measured(args: &[&str]) -> (i32, String, i64) {
    // A child's peak RSS starts at this process's own (Linux counts the spawning
    // process's high-water mark at exec), and every test of the crate runs in this
    // process: bring the mark down to what it holds now (clear_refs 5, Linux >= 4.0).
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let mut child = Command::new(LLMIB)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = String::new();
    let mut pipe = child.stderr.take().unwrap();
    pipe.read_to_string(&mut err).unwrap();
    let mut status = 0;
    // SAFETY: wait4 on the pid of a child this test spawned and has not reaped, into
    // zeroed locals.
    let (code, rss) = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        let pid = libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage);
        assert!(pid > 0);
        (libc::WEXITSTATUS(status), usage.ru_maxrss)
    };
    (code, err, rss)
}

#[test]
fn an_endless_metrics_answer_is_cut_at_its_limit_in_bounded_memory() {
    // No in-process simulator of another test (dilation) grows this process meanwhile.
    let _timing = common::timing_sensitive();
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "t", 5);
    let sim = SimProcess::start("vllm", &[]);
    let metrics = format!("{}/metrics", serve(endless));
    let out = dir.path().join("run.msgpack");
    let args = [
        "replay",
        s(&t),
        "--backend",
        "vllm",
        "--endpoint",
        &sim.url,
        "-o",
        s(&out),
        "--quiet",
        "--server-metrics",
        &metrics,
    ];
    let (code, err, rss_kib) = run_measured(&args);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than 4 MiB"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(rss_kib < 200 * 1024, "peak RSS {rss_kib} KiB");
    assert!(!out.exists());
}

#[test]
fn a_metrics_url_that_never_answers_says_how_long_it_waited() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "t", 5);
    let sim = SimProcess::start("vllm", &[]);
    let metrics = format!("{}/metrics", serve(silent));
    let out = dir.path().join("run.msgpack");
    let r = replay(&t, &sim.url, &out, &["--server-metrics", &metrics]);
    refused(&r, "no answer within 5.0 s");
}

#[test]
fn credentials_in_the_endpoint_are_sent_but_never_stored_or_printed() {
    let dir = tempfile::tempdir().unwrap();
    let t = trace(dir.path(), "t", 5);
    let sim = SimProcess::start("vllm", &[]);
    let url = sim.url.replace("http://", "http://user:s3cret@");
    let out = dir.path().join("run.msgpack");
    let r = replay(&t, &url, &out, &["--server-metrics", "auto"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let log = read_log(&out).unwrap();
    let shown = sim.url.replace("http://", "http://user:***@");
    assert_eq!(log.header.backend.endpoint, shown);
    let sm = log.header.options.server_metrics.unwrap();
    assert_eq!(sm.url, format!("{shown}/metrics"));
    for file in [out.clone(), sidecar_path(&out)] {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(6).any(|w| w == b"s3cret"),
            "{}",
            file.display()
        );
    }
    let printed = format!("{}{}", String::from_utf8_lossy(&r.stdout), stderr(&r));
    assert!(!printed.contains("s3cret"), "{printed}");
    // An endpoint that is down is named without the password either.
    let down = "http://user:s3cret@127.0.0.1:1";
    let r = replay(&t, down, &dir.path().join("x.msgpack"), &[]);
    refused(&r, "user:***@127.0.0.1:1");
    assert!(!stderr(&r).contains("s3cret"));
}

#[test]
fn sim_refuses_a_speedup_out_of_range_on_one_line() {
    for k in ["1e9", "1001", "nan", "inf", "-1", "0.5"] {
        let mut child = Command::new(LLMIB)
            .args(["sim", "--dialect", "vllm", "--port", "0"])
            .arg(format!("--speedup={k}"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_limited(&mut child, Duration::from_secs(20));
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        assert_eq!(status.code(), Some(2), "--speedup {k}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

fn sweep(trace: &Path, dir: &Path, rates: &str, extra: &[&str]) -> Output {
    Command::new(LLMIB)
        .args(["sweep", s(trace), "--backend", "vllm", "--simulate"])
        .args(["--rates", rates, "--max-requests", "4", "-q", "-o", s(dir)])
        .args(extra)
        .output()
        .unwrap()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_sweep_never_replaces_another_traces_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let a = trace(tmp.path(), "a", 8);
    let b = trace(tmp.path(), "b", 9);
    let dir = tmp.path().join("sweep");
    let r = sweep(&a, &dir, "50", &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    let before = files(&dir);
    assert!(before.iter().any(|(n, _)| n == "sweep.json"));

    let r = sweep(&b, &dir, "50", &[]);
    refused(&r, "another run (trace a");
    assert_eq!(files(&dir), before);
    // The same trace again resumes (reuses its complete run).
    let r = sweep(&a, &dir, "50", &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    assert!(stderr(&r).contains("already complete"), "{}", stderr(&r));
    // A log of another trace alone (no manifest) is protected as well.
    let solo = tmp.path().join("solo");
    std::fs::create_dir(&solo).unwrap();
    let (name, bytes) = before
        .iter()
        .find(|(n, _)| n.ends_with(".msgpack"))
        .unwrap();
    std::fs::write(solo.join(name), bytes).unwrap();
    refused(&sweep(&b, &solo, "50", &[]), "is a run of another trace a");
    assert_eq!(&std::fs::read(solo.join(name)).unwrap(), bytes);
    // --force replaces it.
    let r = sweep(&b, &dir, "50", &["--force"]);
    assert!(r.status.success(), "{}", stderr(&r));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("sweep.json")).unwrap()).unwrap();
    assert_eq!(m["trace"]["name"], "b");
}

#[test]
fn rates_that_print_alike_get_their_own_logs() {
    let tmp = tempfile::tempdir().unwrap();
    let a = trace(tmp.path(), "a", 8);
    let dir = tmp.path().join("sweep");
    let r = sweep(&a, &dir, "50.00001,50.00004,50.00001", &[]);
    assert!(r.status.success(), "{}", stderr(&r));
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("sweep.json")).unwrap()).unwrap();
    let runs = m["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let logs: Vec<&str> = runs.iter().map(|r| r["log"].as_str().unwrap()).collect();
    assert_ne!(logs[0], logs[1]);
    for (run, log) in runs.iter().zip(&logs) {
        let l = read_log(dir.join(log)).unwrap();
        let rate = run["rate"].as_f64().unwrap();
        assert!(
            (l.header.options.time_scale / run["time_scale"].as_f64().unwrap() - 1.0).abs() < 1e-12
        );
        assert!(rate == 50.00001 || rate == 50.00004);
    }
}

#[test]
fn early_errors_leave_no_output_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let a = trace(tmp.path(), "a", 8);
    let down = "http://127.0.0.1:1";
    let dir = tmp.path().join("new/sweep");
    let r = Command::new(LLMIB)
        .args(["sweep", s(&a), "--backend", "vllm", "--endpoint", down])
        .args(["--rates", "1", "-o", s(&dir)])
        .output()
        .unwrap();
    refused(&r, "cannot reach");
    assert!(!tmp.path().join("new").exists());
    let r = Command::new(LLMIB)
        .args(["search", s(&a), "--backend", "vllm", "--endpoint", down])
        .args(["--slo", "ttft_p99=1", "-o", s(&dir)])
        .output()
        .unwrap();
    refused(&r, "cannot reach");
    assert!(!tmp.path().join("new").exists());
}

#[test]
fn simulator_flags_without_simulate_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let a = trace(tmp.path(), "a", 8);
    let sim = SimProcess::start("vllm", &[]);
    for flag in [["--speedup", "10"], ["--profile", "a800-llama2-13b"]] {
        let dir = tmp.path().join("sweep");
        let r = Command::new(LLMIB)
            .args(["sweep", s(&a), "--backend", "vllm", "--endpoint", &sim.url])
            .args(["--rates", "1", "-q", "-o", s(&dir)])
            .args(flag)
            .output()
            .unwrap();
        refused(&r, "--simulate");
        assert!(!dir.exists());
    }
}
