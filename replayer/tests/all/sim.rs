//! End to end against the in-process simulator (127.0.0.1, port 0): every backend,
//! streamed and not; injected faults checked request by request against the
//! simulator's truth log; concurrency cap, warmup, time scale, max requests, duration,
//! stop and abort.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::write_trace;
use formats::{LogRecord, Outcome, read_log};
use replayer::{BackendKind, ReplayConfig, ReplaySummary, StopHandle, replay};
use simulator::truth::{Outcome as Truth, TruthRecord, read_truth_log};
use simulator::{Dialect, Faults, Profile, SimConfig};

fn dialect(b: BackendKind) -> Dialect {
    match b {
        BackendKind::Tgi => Dialect::Tgi,
        BackendKind::Vllm => Dialect::Vllm,
        BackendKind::Lightllm => Dialect::Lightllm,
        // vLLM's OpenAI server speaks the Responses and Messages APIs too.
        BackendKind::Openai
        | BackendKind::OpenaiChat
        | BackendKind::OpenaiResponses
        | BackendKind::Anthropic => Dialect::Openai,
        BackendKind::Sglang => Dialect::Sglang,
        BackendKind::Llamacpp => Dialect::Llamacpp,
    }
}

struct Run {
    summary: ReplaySummary,
    records: Vec<LogRecord>,
    truth: HashMap<u64, TruthRecord>,
    complete: bool,
    simulated: Option<formats::SimulatedInfo>,
}

async fn run_sim(
    dir: &Path,
    backend: BackendKind,
    trace: &Path,
    faults: Faults,
    tweak: impl FnOnce(&mut ReplayConfig),
    stop: StopHandle,
) -> Run {
    let truth_path = dir.join(format!("truth-{}.jsonl", backend.as_str()));
    let mut sc = SimConfig::new(dialect(backend), Profile::builtin("tiny").unwrap());
    sc.truth_log = Some(truth_path.clone());
    sc.faults = faults;
    sc.seed = 7;
    let sim = simulator::start(sc).await.unwrap();
    let out = dir.join(format!("run-{}.msgpack", backend.as_str()));
    let mut cfg = ReplayConfig::new(backend, sim.base_url(), out.clone());
    // Each backend's log path is reused by the streamed and non-streamed runs.
    cfg.overwrite = true;
    cfg.model = Some("llmib-sim-tiny".into());
    cfg.timeout = Some(Duration::from_secs(30));
    tweak(&mut cfg);
    let summary = replay(trace, cfg, stop).await.unwrap();
    sim.shutdown().await.unwrap();
    let log = read_log(&out).unwrap();
    let complete = match &log.end {
        formats::LogEnd::Trailer(t) => t.complete,
        _ => panic!("no trailer"),
    };
    let truth = read_truth_log(&truth_path)
        .unwrap()
        .into_iter()
        .filter_map(|t| Some((t.request_id.as_ref()?.parse().ok()?, t)))
        .collect();
    // Exactly one record per request id, whatever happened.
    let mut ids: Vec<u64> = log.records.iter().map(|r| r.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), log.records.len(), "duplicate ids");
    assert_eq!(summary.internal_anomalies, 0);
    assert_eq!(summary.records, log.records.len() as u64);
    Run {
        summary,
        records: log.records,
        truth,
        complete,
        simulated: log.header.backend.simulated,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_streamed_and_not_matches_truth() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), 24, 2_000_000, 12, 6);
    for backend in BackendKind::ALL {
        for stream in [true, false] {
            let r = run_sim(
                dir.path(),
                backend,
                &trace,
                Faults::default(),
                |c| c.stream = stream,
                StopHandle::new(),
            )
            .await;
            let what = format!("{backend} stream={stream}");
            assert!(r.complete, "{what}");
            // Not told, the replayer still learns from the server that it is simulated.
            let sim = r.simulated.as_ref().expect("run recorded as simulated");
            assert_eq!(sim.profile, "tiny", "{what}");
            assert_eq!(sim.dialect, dialect(backend).as_str(), "{what}");
            assert_eq!(r.records.len(), 24, "{what}");
            for rec in &r.records {
                assert_eq!(rec.outcome, Outcome::Ok, "{what}: {:?}", rec.error);
                let t = &r.truth[&rec.id];
                assert_eq!(t.outcome, Some(Truth::Ok), "{what}");
                assert_eq!(t.stream, stream);
                // Tokens counted by the client = tokens the server wrote.
                assert_eq!(
                    rec.output_tokens,
                    Some(t.output_tokens),
                    "{what} id {}",
                    rec.id
                );
                assert_eq!(rec.http_status, Some(200));
                assert!(rec.token_count_method.is_some());
                let d = rec.dispatched_ns.unwrap();
                assert!(d >= rec.scheduled_ns);
                assert!(rec.first_byte_ns.unwrap() >= d);
                assert!(rec.end_ns.unwrap() >= *rec.events.t_ns.last().unwrap());
                if stream && backend == BackendKind::Lightllm {
                    // LightLLM sends only the latest of the tokens ready together (was:
                    // one event per token); ignore_eos makes the count exact anyway.
                    let lost = (rec.events.len() as u32) < t.output_tokens;
                    assert_eq!(rec.count_flags.contains(&"events_lost".into()), lost);
                } else if stream && backend != BackendKind::Vllm {
                    // One event per token on these dialects' simulated streams.
                    assert_eq!(rec.events.len() as u32, t.output_tokens, "{what}");
                }
            }
            assert_eq!(r.summary.count(Outcome::Ok), 24);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_match_truth_request_by_request() {
    let dir = tempfile::tempdir().unwrap();
    let n = 120;
    let trace = write_trace(&dir.path().join("t.msgpack"), n, 500_000, 8, 12);
    let faults = Faults {
        http_429: 0.04,
        http_500: 0.03,
        http_503: 0.03,
        disconnect: 0.1,
        stall: 0.1,
        stall_ms: 30,
        slow_first_byte: 0.05,
        slow_first_byte_ms: 30,
        generation_error: 0.0,
    };
    for backend in [
        BackendKind::Tgi,
        BackendKind::Vllm,
        BackendKind::Lightllm,
        BackendKind::Openai,
        BackendKind::Sglang,
        BackendKind::Llamacpp,
    ] {
        // TGI's generation errors (424; a 200 + error event on streams) are TGI's alone.
        let faults = match backend {
            BackendKind::Tgi => Faults {
                generation_error: 0.05,
                ..faults.clone()
            },
            _ => faults.clone(),
        };
        for stream in [true, false] {
            let r = run_sim(
                dir.path(),
                backend,
                &trace,
                faults.clone(),
                |c| c.stream = stream,
                StopHandle::new(),
            )
            .await;
            let what = format!("{backend} stream={stream}");
            assert_eq!(r.records.len() as u64, n, "{what}");
            assert!(r.complete);
            let mut seen_fault = 0;
            let mut generation_errors = 0;
            for rec in &r.records {
                let t = r
                    .truth
                    .get(&rec.id)
                    .unwrap_or_else(|| panic!("{what}: id {} not in truth", rec.id));
                let expect = match t.outcome.unwrap() {
                    Truth::Ok => Outcome::Ok,
                    Truth::Http429 | Truth::Http500 | Truth::Http503 | Truth::Http424 => {
                        Outcome::HttpError
                    }
                    Truth::Disconnect => Outcome::StreamError,
                    other => panic!("{what}: unexpected truth outcome {other:?}"),
                };
                assert_eq!(
                    rec.outcome, expect,
                    "{what} id {} fault {:?}: {:?}",
                    rec.id, t.fault, rec.error
                );
                if expect == Outcome::HttpError {
                    assert_eq!(rec.http_status, Some(t.http_status), "{what}");
                    assert!(rec.error.is_some());
                }
                if t.outcome == Some(Truth::Http424) {
                    // 424 on /generate, 200 + the error event on /generate_stream.
                    assert_eq!(t.http_status, if stream { 200 } else { 424 }, "{what}");
                    let e = rec.error.as_deref().unwrap_or_default();
                    assert!(
                        e.contains("Request failed during generation: Server error:"),
                        "{what}: {e}"
                    );
                    generation_errors += 1;
                }
                if t.fault.is_some() {
                    seen_fault += 1;
                }
                if stream && expect != Outcome::HttpError {
                    // Partial streams keep what arrived.
                    let counted = rec.output_tokens.unwrap_or(0);
                    if backend == BackendKind::Lightllm && expect != Outcome::Ok {
                        // A cut LightLLM stream counts the events that came: lost ones
                        // are not known (was: exact).
                        assert!(counted <= t.output_tokens, "{what} id {}", rec.id);
                    } else if backend != BackendKind::Vllm || expect == Outcome::Ok {
                        assert_eq!(counted, t.output_tokens, "{what} id {}", rec.id);
                    }
                }
            }
            assert!(
                seen_fault > 10,
                "{what}: faults were injected ({seen_fault})"
            );
            assert_eq!(
                generation_errors > 0,
                backend == BackendKind::Tgi,
                "{what}: {generation_errors} generation errors"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_cuts_stalled_requests() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), 6, 1_000_000, 8, 4);
    let faults = Faults {
        stall: 1.0,
        stall_ms: 3_000,
        ..Faults::default()
    };
    let r = run_sim(
        dir.path(),
        BackendKind::Openai,
        &trace,
        faults,
        |c| c.timeout = Some(Duration::from_millis(150)),
        StopHandle::new(),
    )
    .await;
    for rec in &r.records {
        assert_eq!(rec.outcome, Outcome::Timeout);
        let elapsed = rec.end_ns.unwrap() - rec.dispatched_ns.unwrap();
        assert!(elapsed >= 150_000_000, "{elapsed}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_cap_waits_and_never_drops() {
    let dir = tempfile::tempdir().unwrap();
    let n = 30;
    let trace = write_trace(&dir.path().join("t.msgpack"), n, 0, 8, 10);
    let r = run_sim(
        dir.path(),
        BackendKind::Tgi,
        &trace,
        Faults::default(),
        |c| c.concurrency = Some(3),
        StopHandle::new(),
    )
    .await;
    assert_eq!(r.summary.count(Outcome::Ok), n);
    // On the server's own clock, never more than 3 requests were open at once: a slot
    // is freed only after the client read a response's end, which the server wrote first.
    let mut edges: Vec<(u64, i32)> = Vec::new();
    for t in r.truth.values() {
        edges.push((t.received_ns, 1));
        edges.push((t.finished_ns, -1));
    }
    edges.sort_by_key(|&(t, d)| (t, d));
    let (mut open, mut peak) = (0, 0);
    for (_, d) in edges {
        open += d;
        peak = peak.max(open);
    }
    assert!(peak <= 3, "peak {peak}");
    assert!(peak >= 2, "the cap was used (peak {peak})");
    // Waiters are logged with their wait: dispatched_ns - scheduled_ns grows.
    let mut waits: Vec<u64> = r
        .records
        .iter()
        .map(|x| x.dispatched_ns.unwrap() - x.scheduled_ns)
        .collect();
    waits.sort();
    assert!(waits[n as usize - 1] > 10 * waits[0].max(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warmup_time_scale_and_max_requests() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), 40, 3_000_000, 8, 3);
    let r = run_sim(
        dir.path(),
        BackendKind::Lightllm,
        &trace,
        Faults::default(),
        |c| {
            c.warmup = 4;
            c.time_scale = 2.0;
            c.max_requests = Some(25);
        },
        StopHandle::new(),
    )
    .await;
    assert_eq!(r.records.len(), 25);
    assert!(r.complete);
    for rec in &r.records {
        assert_eq!(rec.warmup, rec.id < 4, "id {}", rec.id);
        assert_eq!(rec.scheduled_ns, rec.id * 1_500_000);
        assert_eq!(rec.outcome, Outcome::Ok);
    }
}

/// Requests are handed to the runtime ahead of their deadlines (the dispatcher's lead),
/// yet none may start before it: every dispatch time is at or after its scheduled time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_handoff_never_sends_early() {
    let dir = tempfile::tempdir().unwrap();
    let trace = write_trace(&dir.path().join("t.msgpack"), 60, 2_000_000, 8, 2);
    let r = run_sim(
        dir.path(),
        BackendKind::Tgi,
        &trace,
        Faults::default(),
        |_| {},
        StopHandle::new(),
    )
    .await;
    assert_eq!(r.records.len(), 60);
    for rec in &r.records {
        let d = rec.dispatched_ns.unwrap();
        assert!(
            d >= rec.scheduled_ns,
            "id {} sent {} ns early",
            rec.id,
            rec.scheduled_ns - d
        );
        assert_eq!(rec.outcome, Outcome::Ok);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duration_stops_dispatching() {
    let dir = tempfile::tempdir().unwrap();
    // 100 requests over 10 s; stop dispatching after 200 ms.
    let trace = write_trace(&dir.path().join("t.msgpack"), 100, 100_000_000, 8, 3);
    let r = run_sim(
        dir.path(),
        BackendKind::Vllm,
        &trace,
        Faults::default(),
        |c| c.duration = Some(Duration::from_millis(200)),
        StopHandle::new(),
    )
    .await;
    assert_eq!(r.records.len(), 100);
    assert!(!r.complete);
    for rec in &r.records {
        if rec.scheduled_ns < 200_000_000 {
            assert_eq!(rec.outcome, Outcome::Ok);
        } else {
            assert_eq!(rec.outcome, Outcome::NotSent);
            assert!(!r.truth.contains_key(&rec.id));
        }
    }
    assert_eq!(r.summary.count(Outcome::NotSent), 98);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_then_abort_leaves_one_record_each() {
    let dir = tempfile::tempdir().unwrap();
    // Stalls keep requests in flight; the trace lasts 20 s, so the stop always lands
    // mid-run whenever it comes.
    let trace = write_trace(&dir.path().join("t.msgpack"), 200, 100_000_000, 8, 5);
    let faults = Faults {
        stall: 1.0,
        stall_ms: 60_000,
        ..Faults::default()
    };
    let stop = StopHandle::new();
    let s2 = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(350)).await;
        s2.stop();
    });
    let r = run_sim(
        dir.path(),
        BackendKind::Tgi,
        &trace,
        faults,
        |c| c.grace = Duration::from_millis(100),
        stop,
    )
    .await;
    assert_eq!(r.records.len(), 200);
    assert!(!r.complete);
    let cancelled = r.summary.count(Outcome::Cancelled);
    let not_sent = r.summary.count(Outcome::NotSent);
    assert!(
        cancelled >= 1,
        "stalled in-flight requests are cancelled after the grace"
    );
    assert_eq!(cancelled + not_sent, 200);
    for rec in &r.records {
        match rec.outcome {
            Outcome::Cancelled => assert!(rec.dispatched_ns.is_some() && rec.end_ns.is_some()),
            Outcome::NotSent => assert!(rec.dispatched_ns.is_none()),
            o => panic!("unexpected {o}"),
        }
    }
}
