//! Multi-turn session traces for the replayer's tests (trace version 3), a replay of
//! one against an in-process simulator, and the closed-loop rule checked on a run log.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use formats::{
    Arrival, ChatMessage, LengthDist, LogEnd, LogRecord, Outcome, SyntheticSpec, TokenizerInfo,
    TraceHeader, TraceRequest, TraceSpec, TraceWriter, read_log, render_messages,
};
use replayer::{BackendKind, ReplayConfig, ReplaySummary, StopHandle, replay};
use simulator::SimConfig;

/// One turn: the user's message, the recorded answer the next turn's history carries,
/// and the think time before it (ignored on a first turn).
#[derive(Debug, Clone)]
pub struct Turn {
    pub user: String,
    pub answer: String,
    pub think_ns: u64,
    pub max_tokens: u32,
}

/// A session: when its first turn arrives, then its turns.
#[derive(Debug, Clone)]
pub struct Session {
    pub start_ns: u64,
    pub turns: Vec<Turn>,
}

/// `n` words `{tag}{i}`.
pub fn words(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The chat of turn `k`: every earlier user message and recorded answer, then turn
/// `k`'s user message.
fn history(turns: &[Turn], k: usize) -> Vec<ChatMessage> {
    let mut m = Vec::with_capacity(2 * k + 1);
    for t in &turns[..k] {
        m.push(ChatMessage::new("user", &t.user));
        m.push(ChatMessage::new("assistant", &t.answer));
    }
    m.push(ChatMessage::new("user", &turns[k].user));
    m
}

/// Writes `sessions` as a version 3 trace (file order: trace lower bound, then session,
/// then turn; ids in that order) and returns its requests.
pub fn write_session_trace(path: &Path, sessions: &[Session]) -> Vec<TraceRequest> {
    let mut order = Vec::new();
    for (s, session) in sessions.iter().enumerate() {
        let mut arrival = session.start_ns;
        for (k, t) in session.turns.iter().enumerate() {
            if k > 0 {
                arrival += t.think_ns;
            }
            order.push((arrival, s, k));
        }
    }
    order.sort();
    let requests: Vec<TraceRequest> = order
        .iter()
        .enumerate()
        .map(|(id, &(arrival_ns, s, k))| {
            let turns = &sessions[s].turns;
            let messages = history(turns, k);
            let prompt = render_messages(&messages);
            TraceRequest {
                id: id as u64,
                arrival_ns,
                prompt_tokens: prompt.split_whitespace().count() as u32,
                prompt,
                max_tokens: turns[k].max_tokens,
                ignore_eos: true,
                session_id: Some(s as u64),
                turn: Some(k as u32),
                think_ns: (k > 0).then_some(turns[k].think_ns),
                messages: Some(messages),
                ..Default::default()
            }
        })
        .collect();
    let n = requests.len() as u64;
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "sessions".into(),
        seed: 1,
        requests: n,
        prompt_tokens: LengthDist::Fixed { value: 8, floor: 1 },
        output_tokens: LengthDist::Fixed { value: 8, floor: 1 },
        arrival: Arrival::Burst,
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let tokenizer = TokenizerInfo {
        kind: "builtin-words".into(),
        name: "test".into(),
        sha256: None,
    };
    let header = TraceHeader::new(spec, tokenizer, n, "test").with_sessions();
    let mut w = TraceWriter::create(path, &header).unwrap();
    for r in &requests {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    requests
}

/// What a replay left.
pub struct SessionRun {
    pub summary: ReplaySummary,
    pub records: Vec<LogRecord>,
    pub complete: bool,
}

/// Replays `trace` with the chat dialect against a fresh in-process simulator
/// configured by `sim`, the replayer configured by `tweak`.
pub async fn replay_sessions(
    dir: &Path,
    name: &str,
    trace: &Path,
    sim: SimConfig,
    tweak: impl FnOnce(&mut ReplayConfig),
) -> SessionRun {
    let server = simulator::start(sim).await.unwrap();
    let out = dir.join(format!("run-{name}.msgpack"));
    let mut cfg = ReplayConfig::new(BackendKind::OpenaiChat, server.base_url(), out.clone());
    cfg.model = Some("llmib-sim-tiny".into());
    cfg.timeout = Some(Duration::from_secs(60));
    tweak(&mut cfg);
    let summary = replay(trace, cfg, StopHandle::new()).await.unwrap();
    server.shutdown().await.unwrap();
    let log = read_log(&out).unwrap();
    let complete = matches!(&log.end, LogEnd::Trailer(t) if t.complete);
    assert_eq!(summary.internal_anomalies, 0);
    SessionRun {
        summary,
        records: log.records,
        complete,
    }
}

/// Records by trace id; every trace request has exactly one, with the trace's session
/// and turn.
pub fn by_id<'a>(reqs: &[TraceRequest], records: &'a [LogRecord]) -> HashMap<u64, &'a LogRecord> {
    let map: HashMap<u64, &LogRecord> = records.iter().map(|r| (r.id, r)).collect();
    assert_eq!(map.len(), records.len(), "one record per id");
    assert_eq!(records.len(), reqs.len(), "one record per trace request");
    for q in reqs {
        let r = map[&q.id];
        assert_eq!(
            (r.session_id, r.turn),
            (q.session_id, q.turn),
            "id {}",
            q.id
        );
    }
    map
}

/// The record of each (session, turn).
pub fn by_turn<'a>(records: &[&'a LogRecord]) -> HashMap<(u64, u32), &'a LogRecord> {
    records
        .iter()
        .filter_map(|r| Some(((r.session_id?, r.turn?), *r)))
        .collect()
}

/// The closed-loop rule on every sent later turn: due (`scheduled_ns`) exactly at its
/// previous turn's `end_ns` plus its think time scaled, and neither dispatched nor
/// written to the wire before then; a first turn is due at its trace time scaled.
/// Returns how many later turns were checked.
pub fn check_closed_loop(reqs: &[TraceRequest], records: &[LogRecord], time_scale: f64) -> usize {
    let ids = by_id(reqs, records);
    let turns = by_turn(&records.iter().collect::<Vec<_>>());
    let scale = |ns: u64| (ns as f64 / time_scale).round() as u64;
    let mut checked = 0;
    for q in reqs {
        let r = ids[&q.id];
        if r.outcome == Outcome::NotSent {
            continue;
        }
        let (Some(s), Some(k)) = (q.session_id, q.turn) else {
            assert_eq!(r.scheduled_ns, scale(q.arrival_ns));
            continue;
        };
        if k == 0 {
            assert_eq!(r.scheduled_ns, scale(q.arrival_ns), "id {}", q.id);
            continue;
        }
        let prev = turns[&(s, k - 1)];
        let due = prev.end_ns.expect("previous turn ended") + scale(q.think_ns.unwrap());
        assert_eq!(r.scheduled_ns, due, "session {s} turn {k}");
        let dispatched = r.dispatched_ns.unwrap();
        assert!(
            dispatched >= due,
            "session {s} turn {k}: dispatched {dispatched} < {due}"
        );
        if let Some(sent) = r.sent_ns {
            assert!(sent >= due, "session {s} turn {k}: sent {sent} < {due}");
        }
        checked += 1;
    }
    checked
}
