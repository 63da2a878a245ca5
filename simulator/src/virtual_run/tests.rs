//! Virtual runs against an engine with simple step costs, checked against values worked
//! out by hand: prefill 1 ms + 10 µs/token, decode 5 ms + 100 µs/seq (V1 policy, one
//! step may prefill and decode together).

use std::path::Path;
use std::time::Duration;

use formats::{
    Arrival, LengthDist, LogEnd, Outcome, SyntheticSpec, TokenizerInfo, TraceHeader, TraceRequest,
    TraceSpec, TraceWriter,
};

use super::*;

fn engine(prefix_cache: bool) -> EngineParams {
    EngineParams {
        kv_capacity_tokens: 1000 * 16,
        max_batch_size: 8,
        max_prefill_tokens: 4096,
        block_size: 16,
        watermark: 0.0,
        waiting_served_ratio: 1.2,
        max_waiting_tokens: 20,
        separate_prefill: false,
        prefill_base_us: 1000.0,
        prefill_per_token_us: 10.0,
        decode_base_us: 5000.0,
        decode_per_seq_us: 100.0,
        decode_per_ctx_token_us: 0.0,
        prefill_per_ctx_token_us: 0.0,
        prefix_cache,
    }
}

/// Writes `reqs` (arrival ms, prompt, output tokens) as a trace.
fn trace(path: &Path, reqs: &[(u64, String, u32)]) {
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "virtual".into(),
        seed: 1,
        requests: reqs.len() as u64,
        prompt_tokens: LengthDist::Fixed { value: 1, floor: 1 },
        output_tokens: LengthDist::Fixed { value: 1, floor: 1 },
        arrival: Arrival::Constant { rate: 1.0 },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let tok = TokenizerInfo {
        kind: "builtin-words".into(),
        name: "test".into(),
        sha256: None,
    };
    let header = TraceHeader::new(spec, tok, reqs.len() as u64, "test");
    let mut w = TraceWriter::create(path, &header).unwrap();
    for (id, (ms, prompt, out)) in reqs.iter().enumerate() {
        w.write(&TraceRequest {
            id: id as u64,
            arrival_ns: ms * 1_000_000,
            prompt: prompt.clone(),
            prompt_tokens: prompt.split_whitespace().count() as u32,
            max_tokens: *out,
            ignore_eos: true,
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
}

fn words(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{prefix}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn run(dir: &Path, params: EngineParams) -> VirtualRun {
    VirtualRun {
        trace: dir.join("t.msgpack"),
        log: dir.join("run.msgpack"),
        profile: "test".into(),
        params,
        policy: Policy::VllmV1,
        backend: "openai".into(),
        model: None,
        time_scale: 1.0,
        max_requests: None,
        concurrency: None,
        timeout: None,
        duration: None,
        grace: Duration::from_secs(5),
        offered_rate: None,
    }
}

const MS: u64 = 1_000_000;

/// One request of 100 prompt tokens and 3 output tokens: the first step prefills it
/// and makes token 1 (1 ms + 100 x 10 µs), then two decode steps of 5.1 ms. The log reads back complete and says it is virtual.
#[test]
fn a_virtual_run_writes_the_engine_times_as_a_run_log() {
    let dir = tempfile::tempdir().unwrap();
    trace(&dir.path().join("t.msgpack"), &[(10, words("w", 100), 3)]);
    let r = run(dir.path(), engine(false));
    let s = write_log(&r).unwrap();
    assert_eq!((s.records, s.ok, s.not_sent, s.complete), (1, 1, 0, true));
    let log = formats::read_log(&r.log).unwrap();
    assert!(matches!(&log.end, LogEnd::Trailer(t) if t.complete));
    let sim = log.header.backend.simulated.as_ref().unwrap();
    assert!(sim.virtual_time);
    assert_eq!(log.header.backend.endpoint, "virtual:test");
    assert_eq!(log.header.host, VIRTUAL_HOST);
    let rec = &log.records[0];
    assert_eq!(rec.outcome, Outcome::Ok);
    assert_eq!(rec.dispatched_ns, Some(10 * MS));
    let first = 12 * MS;
    assert_eq!(
        rec.events.t_ns,
        vec![first, first + 5_100_000, first + 10_200_000]
    );
    assert_eq!(rec.events.tokens, vec![1, 1, 1]);
    assert_eq!(rec.end_ns, Some(first + 10_200_000));
    assert_eq!(rec.output_tokens, Some(3));
}

/// `--concurrency 1`: the second request, due while the first answers, is sent when
/// the first ends; open loop it is sent on time.
#[test]
fn a_concurrency_cap_holds_a_request_until_a_slot_frees() {
    let dir = tempfile::tempdir().unwrap();
    trace(
        &dir.path().join("t.msgpack"),
        &[(0, words("a", 100), 3), (1, words("b", 100), 3)],
    );
    let mut r = run(dir.path(), engine(false));
    write_log(&r).unwrap();
    let open = formats::read_log(&r.log).unwrap();
    assert_eq!(open.records[1].dispatched_ns, Some(MS));
    r.concurrency = Some(1);
    write_log(&r).unwrap();
    let capped = formats::read_log(&r.log).unwrap();
    let first_end = capped.records[0].end_ns.unwrap();
    assert_eq!(capped.records[1].dispatched_ns, Some(first_end));
    assert_eq!(capped.records[1].scheduled_ns, MS);
    assert!(capped.records[1].events.t_ns[0] > first_end);
}

/// `--duration`: requests due after it are not sent; one still answering `grace`
/// after it is cancelled with the tokens it had; the trailer says incomplete.
#[test]
fn the_duration_leaves_later_requests_unsent_and_cuts_long_answers() {
    let dir = tempfile::tempdir().unwrap();
    trace(
        &dir.path().join("t.msgpack"),
        &[
            (0, words("a", 10), 1000),
            (20, words("b", 10), 2),
            (500, words("c", 10), 2),
        ],
    );
    let mut r = run(dir.path(), engine(false));
    r.duration = Some(Duration::from_millis(100));
    r.grace = Duration::from_millis(100);
    let s = write_log(&r).unwrap();
    assert!(!s.complete);
    let log = formats::read_log(&r.log).unwrap();
    assert!(matches!(&log.end, LogEnd::Trailer(t) if !t.complete));
    let outcomes: Vec<Outcome> = log.records.iter().map(|r| r.outcome).collect();
    assert_eq!(
        outcomes,
        [Outcome::Cancelled, Outcome::Ok, Outcome::NotSent]
    );
    let cut = &log.records[0];
    assert_eq!(cut.end_ns, Some(200 * MS));
    assert!(cut.events.t_ns.iter().all(|&t| t <= 200 * MS));
    assert_eq!(cut.output_tokens, Some(cut.events.len() as u32));
    assert!(cut.events.len() > 10 && cut.events.len() < 1000);
}

/// `--timeout`: a request answering longer than it ends as `timeout` at its
/// dispatch + timeout.
#[test]
fn a_timeout_ends_a_long_answer() {
    let dir = tempfile::tempdir().unwrap();
    trace(&dir.path().join("t.msgpack"), &[(0, words("a", 10), 100)]);
    let mut r = run(dir.path(), engine(false));
    r.timeout = Some(Duration::from_millis(50));
    write_log(&r).unwrap();
    let log = formats::read_log(&r.log).unwrap();
    let rec = &log.records[0];
    assert_eq!(rec.outcome, Outcome::Timeout);
    assert_eq!(rec.end_ns, Some(50 * MS));
}

/// Prompts sharing their first 64 words (4 blocks of 16): the second, sent after the
/// first has ended, finds those blocks cached (at most the blocks before its last
/// token), and its first token comes sooner than without a prefix cache.
#[test]
fn prompts_that_share_a_prefix_hit_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let shared = words("s", 64);
    trace(
        &dir.path().join("t.msgpack"),
        &[
            (0, format!("{shared} {}", words("a", 36)), 2),
            (100, format!("{shared} {}", words("b", 36)), 2),
        ],
    );
    let ttft = |cache: bool| {
        let r = run(dir.path(), engine(cache));
        write_log(&r).unwrap();
        let log = formats::read_log(&r.log).unwrap();
        let rec = log.records[1].clone();
        (
            rec.events.t_ns[0] - rec.dispatched_ns.unwrap(),
            rec.server_cached_tokens,
        )
    };
    let (with, cached) = ttft(true);
    let (without, none) = ttft(false);
    assert_eq!(none, None);
    // Words of 2-3 bytes: the cut at 16 tokens x the trace's bytes per token lands
    // within the shared text for 3 or 4 blocks.
    let cached = cached.unwrap();
    assert!(cached == 48 || cached == 64, "{cached}");
    assert_eq!(without - with, cached as u64 * 10_000);
}

/// Sessions cannot run in virtual time (a turn's arrival depends on the previous
/// answer): refused in one line, nothing written.
#[test]
fn a_trace_of_sessions_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    trace(
        &dir.path().join("t.msgpack"),
        &[(0, words("a", 10), 2), (0, words("b", 10), 2)],
    );
    let (h, mut reqs) = formats::read_trace(dir.path().join("t.msgpack")).unwrap();
    for (turn, r) in reqs.iter_mut().enumerate() {
        r.session_id = Some(0);
        r.turn = Some(turn as u32);
        r.think_ns = (turn > 0).then_some(0);
    }
    let mut w = TraceWriter::create(dir.path().join("s.msgpack"), &h.with_sessions()).unwrap();
    reqs.iter().for_each(|r| w.write(r).unwrap());
    w.finish().unwrap();
    let mut r = run(dir.path(), engine(false));
    r.trace = dir.path().join("s.msgpack");
    let e = write_log(&r).unwrap_err().to_string();
    assert!(e.contains("later turn of a session"), "{e}");
    assert!(!r.log.exists());
}
