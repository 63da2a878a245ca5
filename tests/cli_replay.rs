//! `llmib replay` as a user runs it: against `llmib sim` in another process, interrupted
//! with SIGINT mid-run, and against an endpoint that is down.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use formats::{
    Arrival, LengthDist, LogEnd, Outcome, SyntheticSpec, TokenizerInfo, TraceHeader, TraceRequest,
    TraceSpec, TraceWriter, read_log,
};

const LLMIB: &str = env!("CARGO_BIN_EXE_llmib");

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
        })
        .unwrap();
    }
    w.finish().unwrap();
}

/// Starts `llmib sim` on port 0 and returns it with its printed address.
fn start_sim(dialect: &str) -> (std::process::Child, String) {
    let mut child = Command::new(LLMIB)
        .args([
            "sim",
            "--dialect",
            dialect,
            "--profile",
            "tiny",
            "--port",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    assert!(url.starts_with("http://"), "sim printed {url:?}");
    (child, url)
}

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
    let (sim, url) = start_sim("openai");
    let _sim = Kill(sim);
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
fn sigint_mid_run_leaves_a_complete_readable_log() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    // 500 requests over 10 s: the interrupt always lands mid-run.
    write_trace(&trace, 500, 20_000_000);
    let (sim, url) = start_sim("tgi");
    let _sim = Kill(sim);
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
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = child.0.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    let log = read_log(&out).unwrap();
    let LogEnd::Trailer(t) = &log.end else {
        panic!("no trailer after SIGINT")
    };
    assert!(!t.complete);
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
