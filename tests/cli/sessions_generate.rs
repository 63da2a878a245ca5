//! `llmib generate` of specs with `[sessions]` through the real binary: byte-identical
//! regeneration, another seed gives other bytes, every session obeys the rules and the
//! documented file order, exact counts under a tokenizer (`LLMIB_TOKENIZER` for a real
//! one), and bad session parameters are one-line errors with exit status 2.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use formats::TraceRequest;

fn example() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benchmark_configs/specs/multi-turn-chat.toml")
}

/// The session rules and the documented order: ids in file order, sessions numbered by
/// first turn, turns 0, 1, 2... with `arrival = previous arrival + think_ns`, the history
/// of turn k+1 = turn k's messages, an assistant answer of turn k's `max_tokens` words
/// and a user message, `prompt` = the rendering, `prompt_tokens` its word count, and
/// the file sorted by (arrival, turn, session).
fn check_sessions(reqs: &[TraceRequest]) -> usize {
    let words = |t: &str| t.split_whitespace().count() as u32;
    let mut last: Vec<&TraceRequest> = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(r.id, i as u64);
        let m = r.messages.as_ref().unwrap();
        assert_eq!(r.prompt, formats::render_messages(m));
        assert_eq!(r.prompt_tokens, words(&r.prompt));
        assert_eq!(m.last().unwrap().role, "user");
        let (sid, turn) = (r.session_id.unwrap() as usize, r.turn.unwrap());
        if turn == 0 {
            assert_eq!(sid, last.len());
            assert!(r.think_ns.is_none());
            last.push(r);
            continue;
        }
        let prev = std::mem::replace(&mut last[sid], r);
        assert_eq!(prev.turn, Some(turn - 1));
        let pm = prev.messages.as_ref().unwrap();
        assert_eq!(&m[..pm.len()], &pm[..]);
        assert_eq!(m.len(), pm.len() + 2);
        assert_eq!(m[pm.len()].role, "assistant");
        assert_eq!(words(&m[pm.len()].content), prev.max_tokens);
        assert_eq!(r.arrival_ns, prev.arrival_ns + r.think_ns.unwrap());
    }
    let key = |r: &TraceRequest| (r.arrival_ns, r.turn, r.session_id);
    assert!(reqs.windows(2).all(|w| key(&w[0]) < key(&w[1])));
    last.len()
}

#[test]
fn sessions_spec_regenerates_and_obeys_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let run = |out: &Path, seed: &str| {
        ok(&[
            "generate",
            s(&example()),
            "-o",
            s(out),
            "--requests",
            "300",
            "--seed",
            seed,
        ])
    };
    let stdout = run(&p("a"), "5");
    assert!(stdout.contains("300 requests"), "{stdout}");
    run(&p("b"), "5");
    run(&p("c"), "6");
    let read = |n: &str| std::fs::read(p(n)).unwrap();
    assert_eq!(read("a"), read("b"));
    assert_ne!(read("a"), read("c"));
    let (h, reqs) = formats::read_trace(p("a")).unwrap();
    assert_eq!(h.version, formats::TRACE_VERSION_SESSIONS);
    let sessions = check_sessions(&reqs);
    assert!((40..=100).contains(&sessions), "{sessions} sessions");
    assert!(reqs.iter().any(|r| r.turn == Some(7)));
    // The header's spec regenerates the same bytes.
    let formats::TraceSpec::Synthetic(spec) = h.spec else {
        panic!()
    };
    assert!(spec.sessions.is_some());
    let again = p("spec.toml");
    std::fs::write(&again, generator::spec_to_toml(&spec)).unwrap();
    ok(&["generate", s(&again), "-o", s(&p("d"))]);
    assert_eq!(read("a"), read("d"));
    let inspect = ok(&["trace", "inspect", s(&p("a"))]);
    assert!(inspect.contains("v3"), "{inspect}");
    let line = format!("sessions           {sessions}   single-shot requests 0");
    assert!(inspect.contains(&line), "{inspect}");
    let turns = inspect
        .lines()
        .find(|l| l.starts_with("turns/session"))
        .unwrap();
    assert!(turns.split_whitespace().nth(5) == Some("8"), "{turns}");
    assert!(inspect.contains("think (s)"), "{inspect}");
}

#[test]
fn sessions_with_a_tokenizer_re_encode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, _) = test_tokenizer();
    let source = generator::PromptSource::from_tokenizer_file(&tok, None).unwrap();
    let out = dir.path().join("t.msgpack");
    ok(&[
        "generate",
        s(&example()),
        "-o",
        s(&out),
        "--requests",
        "60",
        "--tokenizer",
        s(&tok),
    ]);
    let (_, reqs) = formats::read_trace(&out).unwrap();
    for r in &reqs {
        let ids = r.prompt_token_ids.as_deref();
        generator::prompt::verify_prompt(&source, &r.prompt, ids, r.prompt_tokens)
            .unwrap_or_else(|e| panic!("request {}: {e}", r.id));
        assert_eq!(
            r.prompt,
            formats::render_messages(r.messages.as_ref().unwrap())
        );
    }
}

#[test]
fn bad_session_parameters_are_one_line_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example()).unwrap();
    for (from, to, want) in [
        (
            "mean_s = 5.0",
            "mean_s = -5.0",
            "sessions.think: mean_s must be",
        ),
        (
            "lo = 1, hi = 8",
            "lo = 0, hi = 8, floor = 0",
            "at least one turn",
        ),
        ("mean_s = 5.0", "mean = 5.0", "unknown field"),
    ] {
        let spec = dir.path().join("bad.toml");
        std::fs::write(&spec, text.replace(from, to)).unwrap();
        let out = dir.path().join("bad.msgpack");
        let o = llmib(&["generate", s(&spec), "-o", s(&out)]);
        let stderr = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.contains(want), "{stderr} / {want}");
        assert!(!out.exists());
    }
}
