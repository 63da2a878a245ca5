//! Hand-built run logs for the analyzer's tests: every time is chosen so each metric's
//! answer can be worked out by hand.
#![allow(dead_code)]

pub mod sessions_log;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use formats::{
    Arrival, BackendInfo, Events, LengthDist, LogHeader, LogRecord, LogWriter, Outcome,
    ReplayOptions, SimulatedInfo, SyntheticSpec, TraceRef, TraceSpec,
};

pub const S: u64 = 1_000_000_000;
pub const MS: u64 = 1_000_000;

/// A trace spec: burst with an output cap (`rate = None`) or Poisson at `rate`.
pub fn spec(name: &str, cap: u32, rate: Option<f64>) -> TraceSpec {
    TraceSpec::Synthetic(SyntheticSpec {
        name: name.into(),
        seed: 1,
        requests: 4,
        prompt_tokens: LengthDist::Fixed {
            value: 100,
            floor: 1,
        },
        output_tokens: LengthDist::CappedExponential {
            mean: 128.0,
            cap,
            floor: 1,
        },
        arrival: match rate {
            Some(rate) => Arrival::Poisson { rate },
            None => Arrival::Burst,
        },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    })
}

pub fn header(backend: &str, trace: &str, sha: &str, spec: Option<TraceSpec>) -> LogHeader {
    LogHeader::new(
        TraceRef {
            name: trace.into(),
            sha256: sha.into(),
            request_count: 4,
            spec,
        },
        BackendInfo {
            kind: backend.into(),
            endpoint: "http://127.0.0.1:1".into(),
            model: Some("m".into()),
            simulated: None,
        },
        1_700_000_000 * S,
        "test",
        "host",
        ReplayOptions::default(),
    )
}

pub fn simulated(mut h: LogHeader, profile: &str) -> LogHeader {
    h.backend.simulated = Some(SimulatedInfo {
        dialect: h.backend.kind.clone(),
        profile: profile.into(),
        speedup: None,
        virtual_time: false,
    });
    h
}

/// An `ok` streamed record: events at the given (time, tokens).
pub fn ok(
    id: u64,
    scheduled: u64,
    dispatched: u64,
    events: &[(u64, u32)],
    end: u64,
    prompt: u32,
    max_tokens: u32,
) -> LogRecord {
    let mut ev = Events::default();
    for (t, k) in events {
        ev.push(*t, *k);
    }
    let out = ev.total_tokens() as u32;
    LogRecord {
        id,
        scheduled_ns: scheduled,
        dispatched_ns: Some(dispatched),
        connect_start_ns: None,
        connect_ns: None,
        sent_ns: None,
        resends: 0,
        first_byte_ns: Some(dispatched + MS),
        events: ev,
        end_ns: Some(end),
        outcome: Outcome::Ok,
        http_status: Some(200),
        error: None,
        prompt_tokens: prompt,
        max_tokens,
        output_tokens: Some(out),
        server_output_tokens: None,
        server_prompt_tokens: None,
        server_cached_tokens: None,
        first_reasoning_ns: None,
        first_answer_ns: None,
        reasoning_tokens: None,
        server_reasoning_tokens: None,
        tool_calls: None,
        tool_calls_valid: None,
        first_tool_ns: None,
        tool_tokens: None,
        token_count_method: Some("per_event".into()),
        count_flags: Vec::new(),
        finish_reason: Some("length".into()),
        warmup: false,
        server_timing: BTreeMap::new(),
        session_id: None,
        turn: None,
    }
}

pub fn failed(id: u64, scheduled: u64, dispatched: u64, end: u64, status: u16) -> LogRecord {
    let mut r = LogRecord::not_sent(id, scheduled, 10, 4, false);
    r.dispatched_ns = Some(dispatched);
    r.end_ns = Some(end);
    r.outcome = Outcome::HttpError;
    r.http_status = Some(status);
    r.error = Some("overloaded".into());
    r
}

/// Writes a complete log (with trailer).
pub fn write_log(path: &Path, header: &LogHeader, records: &[LogRecord]) -> PathBuf {
    let mut w = LogWriter::create(path, header).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    let end = records.iter().filter_map(|r| r.end_ns).max().unwrap_or(0);
    w.finish(true, end).unwrap();
    path.to_path_buf()
}

/// Writes a log without trailer, as a killed replayer leaves it.
pub fn write_truncated(path: &Path, header: &LogHeader, records: &[LogRecord]) -> PathBuf {
    let mut w = LogWriter::create(path, header).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    w.flush().unwrap();
    drop(w);
    path.to_path_buf()
}

/// `n` tokens, one per event, evenly spaced over (start, end].
pub fn even_events(start: u64, end: u64, n: u32) -> Vec<(u64, u32)> {
    (1..=n as u64)
        .map(|k| (start + (end - start) * k / n as u64, 1))
        .collect()
}

/// A burst throughput run: 4 requests of 100 prompt tokens and `cap` output tokens,
/// all dispatched at 0, request k ending at (k+1) * `t` seconds. Its throughput is
/// exactly (100 + cap) / t tokens/s.
pub fn throughput_run(
    dir: &Path,
    file: &str,
    backend: &str,
    trace: &str,
    sha: &str,
    cap: u32,
    t_s: f64,
) -> PathBuf {
    let t = (t_s * 1e9) as u64;
    let recs: Vec<LogRecord> = (0..4u64)
        .map(|k| {
            let end = (k + 1) * t;
            ok(k, 0, 0, &even_events(0, end, cap), end, 100, cap)
        })
        .collect();
    write_log(
        &dir.join(file),
        &header(backend, trace, sha, Some(spec(trace, cap, None))),
        &recs,
    )
}

/// A latency run at `qps`: 3 requests of 10 output tokens, request k scheduled and
/// dispatched at k / qps, lasting (k+1) * `l` seconds. Median request latency is
/// 2 l, median per-token latency 0.2 l.
pub fn latency_header(backend: &str, trace: &str, sha: &str, qps: f64) -> LogHeader {
    header(backend, trace, sha, Some(spec(trace, 512, Some(qps))))
}

pub fn latency_records(qps: f64, l_s: f64) -> Vec<LogRecord> {
    let l = (l_s * 1e9) as u64;
    (0..3u64)
        .map(|k| {
            let s = (k as f64 / qps * 1e9) as u64;
            let end = s + (k + 1) * l;
            ok(k, s, s, &even_events(s, end, 10), end, 50, 10)
        })
        .collect()
}

/// `records` written as one latency run (QPS 1) of `backend` and loaded; the directory
/// holds the log.
pub fn load_latency_run(
    backend: &str,
    records: &[LogRecord],
) -> (tempfile::TempDir, analyzer::Runs) {
    let dir = tempfile::tempdir().unwrap();
    let h = latency_header(backend, "lat", "aa", 1.0);
    let p = write_log(&dir.path().join("r.msgpack"), &h, records);
    let runs = analyzer::load_runs(&[p]).unwrap();
    (dir, runs)
}

/// [`load_latency_run`], analysed with the default options.
pub fn latency_report(
    backend: &str,
    records: &[LogRecord],
) -> (tempfile::TempDir, analyzer::Report) {
    let (dir, runs) = load_latency_run(backend, records);
    let rep = analyzer::report(&runs, &analyzer::AnalyzeOptions::default()).unwrap();
    (dir, rep)
}
