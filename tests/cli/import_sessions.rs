//! `llmib import sharegpt|jsonl --sessions` through the real binary on the multi-turn
//! samples in `tests/data/`: byte-identical regeneration, conversations kept as
//! sessions with their recorded history, the documented file order, exact counts under
//! a tokenizer (`LLMIB_TOKENIZER` for a real one), and bad `--think-time` values as
//! one-line errors with exit status 2 and no output file.

use crate::common;

use std::path::Path;

use common::*;
use formats::{ChatMessage, TraceRequest};

/// Session rules and order: sessions numbered by first turn, turns in order with
/// `arrival = previous + think_ns`, each turn's chat extends the previous one's, file
/// sorted by (arrival, turn, session).
fn check_order(reqs: &[TraceRequest]) {
    let mut last: Vec<&TraceRequest> = Vec::new();
    for r in reqs {
        let m = r.messages.as_ref().unwrap();
        assert_eq!(r.prompt, formats::render_messages(m));
        let (sid, turn) = (r.session_id.unwrap() as usize, r.turn.unwrap());
        if turn == 0 {
            assert_eq!(sid, last.len());
            last.push(r);
            continue;
        }
        let prev = std::mem::replace(&mut last[sid], r);
        assert_eq!(prev.turn, Some(turn - 1));
        assert_eq!(r.arrival_ns, prev.arrival_ns + r.think_ns.unwrap());
    }
    let key = |r: &TraceRequest| (r.arrival_ns, r.turn, r.session_id);
    assert!(reqs.windows(2).all(|w| key(&w[0]) < key(&w[1])));
}

fn chat(r: &TraceRequest) -> Vec<(&str, &str)> {
    let m: &[ChatMessage] = r.messages.as_ref().unwrap();
    m.iter()
        .map(|m| (m.role.as_str(), m.content.as_str()))
        .collect()
}

#[test]
fn sharegpt_sessions_regenerate_and_keep_the_recorded_history() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("sharegpt-sessions-sample.json");
    let run = |out: &Path, seed: &str| {
        ok(&[
            "import",
            "sharegpt",
            s(&input),
            "-o",
            s(out),
            "--sessions",
            "--think-time",
            "exponential:5",
            "--rate",
            "0.5",
            "--seed",
            seed,
            "--output-tokens",
            "{ dist = \"uniform\", lo = 4, hi = 64 }",
        ])
    };
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let stdout = run(&a, "1");
    // mt-5 has no human turn: 7 sessions, 17 user turns.
    assert!(
        stdout.contains("17 requests in 7 sessions from 8 conversations"),
        "{stdout}"
    );
    run(&b, "1");
    run(&c, "2");
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    assert_ne!(std::fs::read(&a).unwrap(), std::fs::read(&c).unwrap());
    let (h, reqs) = formats::read_trace(&a).unwrap();
    assert_eq!(h.version, formats::TRACE_VERSION_SESSIONS);
    let formats::TraceSpec::ShareGpt(spec) = &h.spec else {
        panic!("{:?}", h.spec)
    };
    assert!(spec.sessions);
    assert_eq!(
        spec.think,
        Some(formats::ThinkTime::Exponential { mean_s: 5.0 })
    );
    check_order(&reqs);
    let last = reqs
        .iter()
        .find(|r| r.turn == Some(2) && chat(r)[0].0 == "system")
        .unwrap();
    assert_eq!(
        chat(last),
        [
            ("system", "You are a patient geography tutor."),
            ("user", "What is the capital of France?"),
            ("assistant", "The capital of France is Paris."),
            ("user", "And of Italy?"),
            ("assistant", "Rome is the capital of Italy."),
            ("user", "Which of the two cities is older?"),
        ]
    );
    for r in &reqs {
        assert_eq!(
            r.prompt_tokens as usize,
            r.prompt.split_whitespace().count()
        );
        assert!((4..=64).contains(&r.max_tokens));
    }
    // --requests counts turns; the last session sampled is cut short.
    let d = dir.path().join("d");
    let stdout = ok(&[
        "import",
        "sharegpt",
        s(&input),
        "-o",
        s(&d),
        "--sessions",
        "--requests",
        "9",
        "--seed",
        "4",
        "--output-tokens",
        "{ dist = \"fixed\", value = 8 }",
    ]);
    assert!(stdout.contains("9 requests in"), "{stdout}");
    let (_, reqs) = formats::read_trace(&d).unwrap();
    assert_eq!(reqs.len(), 9);
    check_order(&reqs);
    assert!(reqs.iter().all(|r| r.arrival_ns == 0 || r.turn > Some(0)));
}

#[test]
fn jsonl_sessions_group_by_session_id_on_their_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("jsonl-sessions-sample.jsonl");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    let stdout = ok(&["import", "jsonl", s(&input), "-o", s(&a), "--sessions"]);
    assert!(
        stdout.contains("7 requests in 4 sessions from 4 conversations"),
        "{stdout}"
    );
    ok(&["import", "jsonl", s(&input), "-o", s(&b), "--sessions"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (_, reqs) = formats::read_trace(&a).unwrap();
    check_order(&reqs);
    // Session "chat-1" (lines 1, 5, 8), the untagged line, session 7 (lines 3, 4), then
    // session "7" (a string: another session): starts and think times are the
    // recorded timestamps.
    let got: Vec<(u64, u64, u32, Option<u64>, u32)> = reqs
        .iter()
        .map(|r| {
            (
                r.arrival_ns / 1_000_000,
                r.session_id.unwrap(),
                r.turn.unwrap(),
                r.think_ns.map(|t| t / 1_000_000),
                r.max_tokens,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (0, 0, 0, None, 24),
            (500, 1, 0, None, 8),
            (1000, 2, 0, None, 40),
            (1600, 2, 1, Some(600), 40),
            (3000, 0, 1, Some(3000), 32),
            (3200, 3, 0, None, 16),
            (8000, 0, 2, Some(5000), 64),
        ]
    );
    assert_eq!(chat(&reqs[1]), [("user", "日本の首都はどこですか？")]);
    assert_eq!(chat(&reqs[6]).len(), 6);
    // Arrival flags start the sessions instead; --think-time replaces the gaps.
    let c = dir.path().join("c");
    ok(&[
        "import",
        "jsonl",
        s(&input),
        "-o",
        s(&c),
        "--sessions",
        "--arrival",
        "constant",
        "--rate",
        "1",
        "--think-time",
        "fixed:2",
    ]);
    let (_, reqs) = formats::read_trace(&c).unwrap();
    check_order(&reqs);
    let at: Vec<u64> = reqs.iter().map(|r| r.arrival_ns / 1_000_000).collect();
    assert_eq!(at, [0, 1000, 2000, 2000, 3000, 4000, 4000]);
}

#[test]
fn session_imports_with_a_tokenizer_re_encode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (tok, real) = test_tokenizer();
    let source = generator::PromptSource::from_tokenizer_file(&tok, None).unwrap();
    for (kind, file) in [
        ("sharegpt", "sharegpt-sessions-sample.json"),
        ("jsonl", "jsonl-sessions-sample.jsonl"),
    ] {
        let out = dir.path().join(format!("{kind}.msgpack"));
        let stdout = ok(&[
            "import",
            kind,
            s(&data(file)),
            "-o",
            s(&out),
            "--sessions",
            "--tokenizer",
            s(&tok),
        ]);
        let (_, reqs) = formats::read_trace(&out).unwrap();
        check_order(&reqs);
        for r in &reqs {
            let ids = r.prompt_token_ids.as_deref();
            generator::prompt::verify_prompt(&source, &r.prompt, ids, r.prompt_tokens)
                .unwrap_or_else(|e| panic!("{kind} request {}: {e}", r.id));
        }
        if kind == "sharegpt" && real {
            // mt-5 has no human turn, mt-3's first human turn no answer, mt-2's last
            // turn no answer (cut).
            assert!(
                stdout.contains("14 requests in 6 sessions from 8 conversations"),
                "{stdout}"
            );
            assert!(stdout.contains("2 without a user turn and answer, and 1 later turns"));
        }
    }
}

#[test]
fn bad_think_times_are_one_line_exit_2_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("jsonl-sessions-sample.jsonl");
    let out = dir.path().join("out.msgpack");
    for (extra, want) in [
        (
            vec!["--sessions", "--think-time", "fixed:-1"],
            "value_s must be",
        ),
        (
            vec!["--sessions", "--think-time", "exponential:0"],
            "mean_s must be",
        ),
        (
            vec!["--sessions", "--think-time", "gaussian:1"],
            "unknown distribution",
        ),
        (
            vec!["--sessions", "--think-time", "uniform:5:1"],
            "lo_s 5 > hi_s 1",
        ),
        (vec!["--sessions", "--think-time", "fixed:inf"], "inf"),
        (vec!["--think-time", "fixed:1"], "--sessions"),
    ] {
        let mut args = vec!["import", "jsonl", s(&input), "-o", s(&out)];
        args.extend(extra);
        let o = llmib(&args);
        let stderr = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.contains(want), "{stderr} / {want}");
        assert!(!out.exists());
    }
}

#[test]
fn bad_session_files_are_one_line_exit_2_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.msgpack");
    let ok_line = "{\"session_id\":\"a\",\"prompt\":\"hi\",\"max_tokens\":4,\"timestamp\":10}\n";
    for (body, want) in [
        (
            format!(
                "{ok_line}{{\"session_id\":{{}},\"prompt\":\"x\",\"max_tokens\":1,\"timestamp\":20}}\n"
            ),
            "s.jsonl:2: session_id: expected a string or an integer, found {}",
        ),
        (
            format!(
                "{ok_line}{{\"session_id\":\"a\",\"messages\":[{{\"role\":\"user\",\"content\":\"q\"}},{{\"role\":\"assistant\",\"content\":\"r\"}}],\"max_tokens\":1,\"timestamp\":20}}\n"
            ),
            "s.jsonl:2: messages: with --sessions the last message must be a user message",
        ),
        (
            format!(
                "{ok_line}{{\"session_id\":\"a\",\"prompt\":\"later\",\"max_tokens\":1,\"timestamp\":5}}\n"
            ),
            "line 2: timestamp 5 is before the previous turn's (10, line 1)",
        ),
    ] {
        let input = dir.path().join("s.jsonl");
        std::fs::write(&input, body).unwrap();
        let o = llmib(&["import", "jsonl", s(&input), "-o", s(&out), "--sessions"]);
        let stderr = String::from_utf8(o.stderr).unwrap();
        assert_eq!(o.status.code(), Some(2), "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
        assert!(stderr.contains(want), "{stderr} / {want}");
        assert!(!out.exists());
    }
}
