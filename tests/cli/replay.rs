//! `llmib replay` as a user runs it: against `llmib sim` in another process, interrupted
//! with SIGINT or SIGTERM mid-run, against an endpoint that is down, with outputs it must
//! not destroy, and the exit statuses of each case.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use formats::{
    Arrival, LengthDist, LogEnd, Outcome, SyntheticSpec, TokenizerInfo, TraceHeader, TraceRequest,
    TraceSpec, TraceWriter, read_log,
};

use crate::common;

use common::{LLMIB, SimProcess};

fn write_trace(path: &Path, n: u64, gap_ns: u64) {
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "cli".into(),
        seed: 1,
        requests: n,
        prompt_tokens: LengthDist::Fixed { value: 8, floor: 1 },
        output_tokens: LengthDist::Fixed {
            value: 16,
            floor: 1,
        },
        arrival: Arrival::Constant {
            rate: 1e9 / gap_ns as f64,
        },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let header = TraceHeader::new(
        spec,
        TokenizerInfo {
            kind: "builtin-words".into(),
            name: "cli".into(),
            sha256: None,
        },
        n,
        "test",
    );
    let mut w = TraceWriter::create(path, &header).unwrap();
    for id in 0..n {
        w.write(&TraceRequest {
            id,
            arrival_ns: id * gap_ns,
            prompt: "a b c d e f g h".into(),
            prompt_token_ids: None,
            prompt_tokens: 8,
            max_tokens: 16,
            ignore_eos: true,
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
}

/// Starts `llmib sim` on port 0 and returns it with its printed address.
struct Kill(std::process::Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn replay_runs_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace, 30, 1_000_000);
    let sim = SimProcess::start("openai", &[]);
    let url = sim.url.clone();
    let out = dir.path().join("run.msgpack");
    let o = Command::new(LLMIB)
        .args([
            "replay",
            trace.to_str().unwrap(),
            "--backend",
            "openai-chat",
            "--endpoint",
            &url,
        ])
        .args([
            "-o",
            out.to_str().unwrap(),
            "--warmup",
            "2",
            "--header",
            "X-Team: bench",
            "--quiet",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        stdout.contains("client health: dispatch lateness p50"),
        "{stdout}"
    );
    let log = read_log(&out).unwrap();
    assert!(matches!(log.end, LogEnd::Trailer(ref t) if t.complete));
    assert_eq!(log.records.len(), 30);
    assert!(log.records.iter().all(|r| r.outcome == Outcome::Ok));
    assert_eq!(log.records.iter().filter(|r| r.warmup).count(), 2);
    assert_eq!(log.header.options.header_names, vec!["X-Team".to_string()]);
    assert_eq!(log.header.backend.kind, "openai-chat");
}

#[test]
fn sigint_mid_run_leaves_a_complete_readable_log_and_exits_130() {
    signal_mid_run("-INT");
}

#[test]
fn sigterm_mid_run_is_handled_like_ctrl_c() {
    signal_mid_run("-TERM");
}

fn signal_mid_run(signal: &str) {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    // 500 requests over 10 s: the interrupt always lands mid-run.
    write_trace(&trace, 500, 20_000_000);
    let sim = SimProcess::start("tgi", &[]);
    let url = sim.url.clone();
    let out = dir.path().join("run.msgpack");
    let child = Command::new(LLMIB)
        .args([
            "replay",
            trace.to_str().unwrap(),
            "--backend",
            "tgi",
            "--endpoint",
            &url,
        ])
        .args(["-o", out.to_str().unwrap(), "--quiet", "--grace", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut child = Kill(child);
    // Wait until some records were flushed (the writer flushes every 500 ms).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(log) = read_log(&out)
            && log.records.len() >= 5
        {
            assert!(!log.has_trailer());
            break;
        }
        assert!(Instant::now() < deadline, "no records flushed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.0.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit {status:?}");
    let log = read_log(&out).unwrap();
    let LogEnd::Trailer(t) = &log.end else {
        panic!("no trailer after SIGINT")
    };
    assert!(!t.complete);
    // The client's health is in the trailer even when the run was cut short.
    assert!(t.client_cpu_ms.is_some() && t.client_cores.is_some_and(|c| c >= 1));
    assert!(t.client_cpu_bound.is_some());
    assert_eq!(log.records.len(), 500);
    let mut ids: Vec<u64> = log.records.iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 500, "no duplicate ids");
    let not_sent = log
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::NotSent)
        .count();
    assert!(not_sent > 0);
    assert!(log.records.iter().any(|r| r.outcome == Outcome::Ok));
}

#[test]
fn endpoint_down_fails_fast_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace, 3, 1_000_000);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let o = Command::new(LLMIB)
        .args([
            "replay",
            trace.to_str().unwrap(),
            "--backend",
            "vllm",
            "--endpoint",
            &url,
        ])
        .args(["-o", dir.path().join("r.msgpack").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.starts_with("error: cannot reach"), "{err}");
    assert!(err.contains(&url), "{err}");
}

/// `llmib replay` with `args` appended to `replay TRACE --backend tgi --endpoint URL`.
fn replay_cmd(trace: &Path, url: &str, args: &[&str]) -> std::process::Output {
    Command::new(LLMIB)
        .args(["replay", trace.to_str().unwrap(), "--backend", "tgi"])
        .args(["--endpoint", url, "--quiet"])
        .args(args)
        .output()
        .unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn every_request_failing_exits_1_with_a_complete_log() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace, 4, 1_000_000);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let out = dir.path().join("r.msgpack");
    let o = replay_cmd(&trace, &url, &["--no-check", "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no request succeeded"),
        "{}",
        stderr(&o)
    );
    let log = read_log(&out).unwrap();
    assert!(log.has_trailer());
    assert_eq!(log.records.len(), 4);
    assert!(
        log.records
            .iter()
            .all(|r| r.outcome == Outcome::ConnectError)
    );
}

#[test]
fn zero_timeout_is_rejected_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace, 2, 1_000_000);
    let out = dir.path().join("r.msgpack");
    let o = replay_cmd(
        &trace,
        "http://127.0.0.1:1",
        &["--no-check", "--timeout", "0", "-o", out.to_str().unwrap()],
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("--timeout must be greater than 0"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn output_naming_the_trace_is_refused_even_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace, 2, 1_000_000);
    let before = std::fs::read(&trace).unwrap();
    let link = dir.path().join("link.msgpack");
    std::os::unix::fs::symlink(&trace, &link).unwrap();
    for out in [&trace, &link] {
        for force in [false, true] {
            let mut args = vec!["--no-check", "-o", out.to_str().unwrap()];
            if force {
                args.push("--force");
            }
            let o = replay_cmd(&trace, "http://127.0.0.1:1", &args);
            assert_eq!(o.status.code(), Some(2));
            let err = stderr(&o);
            assert!(err.contains("the trace being replayed"), "{err}");
            assert_eq!(err.lines().count(), 1, "{err}");
        }
    }
    assert_eq!(std::fs::read(&trace).unwrap(), before, "trace untouched");
}

#[test]
fn existing_run_log_is_kept_unless_force() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace, 3, 1_000_000);
    let sim = SimProcess::start("tgi", &[]);
    let url = sim.url.clone();
    let out = dir.path().join("r.msgpack");
    std::fs::write(&out, b"yesterday's run").unwrap();
    let o = replay_cmd(&trace, &url, &["-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("already exists (use --force"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"yesterday's run");
    let o = replay_cmd(&trace, &url, &["-o", out.to_str().unwrap(), "--force"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(read_log(&out).unwrap().records.len(), 3);
}

#[test]
fn device_nodes_and_directories_are_never_written() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    write_trace(&trace, 2, 1_000_000);
    for (out, what) in [
        ("/dev/null", "device node"),
        (dir.path().to_str().unwrap(), "directory"),
    ] {
        let o = replay_cmd(
            &trace,
            "http://127.0.0.1:1",
            &["--no-check", "--force", "-o", out],
        );
        assert_eq!(o.status.code(), Some(2));
        assert!(stderr(&o).contains(what), "{}", stderr(&o));
    }
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
}
