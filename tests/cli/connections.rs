//! Connection warm-up and request timing through the real `llmib replay` binary against
//! `llmib sim` in another process: with as many warm connections as the concurrency cap
//! no request opens one; without a warm-up the first requests do, and their
//! `connect_ns` lies between their dispatch and their send; `sent_ns` always lies
//! between dispatch and the response headers.

use std::path::Path;
use std::process::Command;

use formats::{
    Arrival, LengthDist, LogRecord, Outcome, RunLog, SyntheticSpec, TokenizerInfo, TraceHeader,
    TraceRequest, TraceSpec, TraceWriter, read_log,
};

use crate::common;

use common::{LLMIB, SimProcess};
/// Requests per burst; bursts are [`GAP_NS`] apart, far longer than a request takes
/// on the `tiny` profile (about 10 ms), so each burst finds the previous one's
/// connections idle.
const BURST: u64 = 4;
const BURSTS: u64 = 5;
const GAP_NS: u64 = 400_000_000;

fn write_trace(path: &Path) {
    let n = BURST * BURSTS;
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "bursts".into(),
        seed: 1,
        requests: n,
        prompt_tokens: LengthDist::Fixed { value: 8, floor: 1 },
        output_tokens: LengthDist::Fixed {
            value: 16,
            floor: 1,
        },
        arrival: Arrival::Constant {
            rate: 1e9 / GAP_NS as f64,
        },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let tokenizer = TokenizerInfo {
        kind: "builtin-words".into(),
        name: "cli".into(),
        sha256: None,
    };
    let header = TraceHeader::new(spec, tokenizer, n, "test");
    let mut w = TraceWriter::create(path, &header).unwrap();
    for id in 0..n {
        w.write(&TraceRequest {
            id,
            arrival_ns: (id / BURST) * GAP_NS,
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

/// Replays the burst trace with `flags`; returns the log and the summary (stdout).
fn replay(dir: &Path, sim: &SimProcess, name: &str, flags: &[&str]) -> (RunLog, String) {
    replay_as(dir, sim, "tgi", name, flags)
}

/// [`replay`] with the given `--backend`.
fn replay_as(
    dir: &Path,
    sim: &SimProcess,
    backend: &str,
    name: &str,
    flags: &[&str],
) -> (RunLog, String) {
    let trace = dir.join("bursts.msgpack");
    if !trace.exists() {
        write_trace(&trace);
    }
    let out = dir.join(name);
    let o = Command::new(LLMIB)
        .args(["replay", trace.to_str().unwrap(), "--backend", backend])
        .args([
            "--endpoint",
            &sim.url,
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .args(flags)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let log = read_log(&out).unwrap();
    assert_eq!(log.records.len() as u64, BURST * BURSTS);
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
        assert_sent_between_dispatch_and_answer(r);
    }
    (log, stdout)
}

fn assert_sent_between_dispatch_and_answer(r: &LogRecord) {
    let (d, s, f) = (
        r.dispatched_ns.unwrap(),
        r.sent_ns.expect("every sent request has sent_ns"),
        r.first_byte_ns.unwrap(),
    );
    assert!(d <= s && s <= f, "request {}: {d} {s} {f}", r.id);
}

#[test]
fn warm_connections_keep_connection_setup_out_of_the_requests() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("tgi", &[]);
    let cap = BURST.to_string();
    let flags = ["--concurrency", &cap, "--connections", &cap];
    let (log, stdout) = replay(dir.path(), &sim, "warm.msgpack", &flags);
    let warm = log.header.options.warm_connections.clone().unwrap();
    assert_eq!(
        (warm.requested, warm.opened, warm.basis.as_str()),
        (4, 4, "flag")
    );
    assert!(
        stdout.contains("connections: 4 of 4 opened before the clock"),
        "{stdout}"
    );
    assert!(stdout.contains("; 0 opened during the run"), "{stdout}");
    for r in &log.records {
        assert_eq!(r.connect_start_ns, None, "request {} connected", r.id);
        assert_eq!(r.connect_ns, None, "request {} connected", r.id);
    }
}

/// uvicorn (vLLM, SGLang) writes `data: [DONE]` and the chunked terminator separately:
/// a client that drops the response at the marker closes the connection, and every
/// later request opens a new one inside its timings. The simulator's
/// `--stream-end-gap-ms` sends them 20 ms apart; the replayer must read the body's end
/// and keep every warmed connection.
#[test]
fn a_terminator_written_after_the_end_marker_keeps_the_connection() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("openai", &["--stream-end-gap-ms", "20"]);
    let cap = BURST.to_string();
    let flags = ["--concurrency", &cap, "--connections", &cap];
    let (log, stdout) = replay_as(dir.path(), &sim, "openai", "gap.msgpack", &flags);
    assert!(
        stdout.contains("connections: 4 of 4 opened before the clock"),
        "{stdout}"
    );
    assert!(stdout.contains("; 0 opened during the run"), "{stdout}");
    for r in &log.records {
        assert_eq!(r.connect_ns, None, "request {} connected", r.id);
        assert_eq!(r.output_tokens, Some(16), "request {}", r.id);
    }
}

#[test]
fn without_a_warm_up_the_first_requests_connect_between_dispatch_and_send() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("tgi", &[]);
    let (log, stdout) = replay(dir.path(), &sim, "cold.msgpack", &["--connections", "0"]);
    let warm = log.header.options.warm_connections.clone().unwrap();
    assert_eq!((warm.requested, warm.basis.as_str()), (0, "disabled"));
    assert!(stdout.contains("connections: no warm-up"), "{stdout}");
    // The simulator probe before the clock leaves one idle connection: the first burst
    // reuses it once and opens the rest.
    let first: Vec<&LogRecord> = log.records.iter().filter(|r| r.id < BURST).collect();
    let connected = first.iter().filter(|r| r.connect_ns.is_some()).count() as u64;
    assert!(
        connected >= BURST - 1,
        "{connected} of the first burst connected"
    );
    for r in log.records.iter().filter(|r| r.connect_ns.is_some()) {
        let (d, c0, c, s) = (
            r.dispatched_ns.unwrap(),
            r.connect_start_ns.unwrap(),
            r.connect_ns.unwrap(),
            r.sent_ns.unwrap(),
        );
        assert!(
            d <= c0 && c0 <= c && c <= s,
            "request {}: {d} {c0} {c} {s}",
            r.id
        );
    }
}

#[test]
fn the_default_warm_up_follows_the_trace_peak() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("tgi", &[]);
    let (log, stdout) = replay(dir.path(), &sim, "default.msgpack", &[]);
    let warm = log.header.options.warm_connections.clone().unwrap();
    // Bursts of 4 at 0, 0.4, 0.8, 1.2 and 1.6 s: at most 3 bursts in any one second.
    assert_eq!(
        (warm.requested, warm.opened, warm.basis.as_str()),
        (12, 12, "trace_peak")
    );
    assert!(stdout.contains("(the trace's busiest second)"), "{stdout}");
    assert!(log.records.iter().all(|r| r.connect_ns.is_none()));
}
