//! `llmib replay` on a multi-turn session trace (version 3) against `llmib sim` in
//! another process: every record carries its request's `session_id` and `turn`, later
//! turns go after their previous turn ended, the chat backend sends the recorded
//! `messages` and the completions backend their rendering (the simulator's prompt count
//! tells which: it counts message contents, not the `role:` labels of the rendering).

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;

use formats::{
    Arrival, ChatMessage, LengthDist, LogEnd, Outcome, SyntheticSpec, TokenizerInfo, TraceHeader,
    TraceRequest, TraceSpec, TraceWriter, read_log, render_messages,
};

use crate::common;

use common::{LLMIB, SimProcess};

const SESSIONS: u64 = 3;
const TURNS: u32 = 3;
const THINK_NS: u64 = 2_000_000;

/// Session `s`, turn `k`: the chat so far (recorded answers), this turn's user message.
fn messages(s: u64, k: u32) -> Vec<ChatMessage> {
    let mut m = vec![ChatMessage::new("system", format!("be brief s{s}"))];
    for j in 0..=k {
        m.push(ChatMessage::new(
            "user",
            format!("question {j} of s{s} please"),
        ));
        if j < k {
            m.push(ChatMessage::new("assistant", format!("answer {j} of s{s}")));
        }
    }
    m
}

fn content_words(m: &[ChatMessage]) -> u32 {
    m.iter()
        .map(|m| m.content.split_whitespace().count() as u32)
        .sum()
}

/// Sessions start 1 ms apart; file order: by trace lower bound, then session.
fn write_trace(path: &Path) -> Vec<TraceRequest> {
    let mut order: Vec<(u64, u64, u32)> = (0..SESSIONS)
        .flat_map(|s| (0..TURNS).map(move |k| (s * 1_000_000 + k as u64 * THINK_NS, s, k)))
        .collect();
    order.sort();
    let reqs: Vec<TraceRequest> = order
        .into_iter()
        .enumerate()
        .map(|(id, (arrival_ns, s, k))| {
            let m = messages(s, k);
            let prompt = render_messages(&m);
            TraceRequest {
                id: id as u64,
                arrival_ns,
                prompt_tokens: prompt.split_whitespace().count() as u32,
                prompt,
                max_tokens: 4,
                ignore_eos: true,
                session_id: Some(s),
                turn: Some(k),
                think_ns: (k > 0).then_some(THINK_NS),
                messages: Some(m),
                ..Default::default()
            }
        })
        .collect();
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "cli-sessions".into(),
        seed: 1,
        requests: reqs.len() as u64,
        prompt_tokens: LengthDist::Fixed { value: 8, floor: 1 },
        output_tokens: LengthDist::Fixed { value: 4, floor: 1 },
        arrival: Arrival::Burst,
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let tokenizer = TokenizerInfo {
        kind: "builtin-words".into(),
        name: "cli".into(),
        sha256: None,
    };
    let header = TraceHeader::new(spec, tokenizer, reqs.len() as u64, "test").with_sessions();
    let mut w = TraceWriter::create(path, &header).unwrap();
    for r in &reqs {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    reqs
}

#[test]
fn replay_of_a_session_trace_records_sessions_and_sends_messages() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("sessions.msgpack");
    let reqs = write_trace(&trace);
    let sim = SimProcess::start("openai", &[]);
    for backend in ["openai-chat", "openai"] {
        let out = dir.path().join(format!("run-{backend}.msgpack"));
        let o = Command::new(LLMIB)
            .args(["replay", trace.to_str().unwrap(), "--backend", backend])
            .args(["--endpoint", &sim.url, "-o", out.to_str().unwrap(), "-q"])
            .args(["--concurrency", "2"])
            .output()
            .unwrap();
        assert!(
            o.status.success(),
            "{backend}: {} {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        let log = read_log(&out).unwrap();
        assert!(matches!(log.end, LogEnd::Trailer(ref t) if t.complete));
        let recs: HashMap<u64, _> = log.records.iter().map(|r| (r.id, r)).collect();
        assert_eq!(recs.len(), reqs.len());
        let turn_end: HashMap<(u64, u32), u64> = log
            .records
            .iter()
            .map(|r| ((r.session_id.unwrap(), r.turn.unwrap()), r.end_ns.unwrap()))
            .collect();
        for q in &reqs {
            let r = recs[&q.id];
            assert_eq!(r.outcome, Outcome::Ok, "{backend}: {r:?}");
            assert_eq!((r.session_id, r.turn), (q.session_id, q.turn), "{backend}");
            let (s, k) = (q.session_id.unwrap(), q.turn.unwrap());
            if k > 0 {
                let due = turn_end[&(s, k - 1)] + THINK_NS;
                assert_eq!(r.scheduled_ns, due, "{backend}: session {s} turn {k}");
                assert!(r.dispatched_ns.unwrap() >= due);
            }
            let expected = if backend == "openai-chat" {
                content_words(q.messages.as_ref().unwrap())
            } else {
                q.prompt_tokens
            };
            assert_eq!(
                r.server_prompt_tokens,
                Some(expected),
                "{backend}: id {}",
                q.id
            );
        }
    }
    sim.stop();
}
