//! Property-based fuzzing of every response parser: the SSE and NUL framing, each
//! dialect's stream decoder (tgi, vllm, lightllm, openai, openai-chat), the non-streamed
//! answer parsers and the error-body reader, all through [`replayer::decode`], the code a
//! replay runs.
//!
//! Inputs are the captured real-server bodies and the synthetic bodies of each dialect
//! (`tests/fixtures/`), mutated and truncated at random positions (see `formats/tests/mutate`),
//! delivered in random chunks. Properties: nothing panics; every error is one bounded
//! line; events and counts are consistent; and the result does not depend on where the
//! network cut the body (times aside). Longer runs: `fuzz/` (`stream_parsers` target).

use crate::mutate;

use proptest::prelude::*;
use replayer::BackendKind;
use replayer::adapter::{Accum, ERROR_LIMIT, ReqCtx};
use replayer::decode::{StreamBody, error_body_message, parse_answer};

/// Cases per property (each decodes one body 2 to 3 times): the whole file runs in a few
/// seconds in the debug test profile.
const CASES: u32 = 8192;

/// `bounded()` appends an ellipsis (3 bytes) to a message cut at [`ERROR_LIMIT`].
const MAX_ERROR: usize = ERROR_LIMIT + 3;

const BACKENDS: [BackendKind; 7] = [
    BackendKind::Tgi,
    BackendKind::Vllm,
    BackendKind::Lightllm,
    BackendKind::Openai,
    BackendKind::OpenaiChat,
    BackendKind::Sglang,
    BackendKind::Llamacpp,
];

/// Every body under `tests/fixtures/` (real-server captures and the synthetic dialect
/// bodies), in a fixed order.
fn seeds() -> Vec<Vec<u8>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths = Vec::new();
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for f in std::fs::read_dir(&dir).unwrap() {
                let f = f.unwrap().path();
                if f.extension().is_some_and(|e| e == "body") {
                    paths.push(f);
                }
            }
        }
    }
    paths.sort();
    assert!(
        paths.len() >= 20,
        "fixtures missing under {}",
        root.display()
    );
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

/// What a decoded response amounts to, times left out (they follow the chunking).
#[derive(Debug, PartialEq)]
struct Decoded {
    tokens: Vec<u32>,
    text_bytes: Vec<u32>,
    output_tokens: Option<u32>,
    server_output_tokens: Option<u32>,
    server_prompt_tokens: Option<u32>,
    finish_reason: Option<String>,
    method: Option<&'static str>,
    complete: bool,
    server_error: Option<String>,
    protocol_error: Option<String>,
}

impl From<&Accum> for Decoded {
    fn from(a: &Accum) -> Self {
        Decoded {
            tokens: a.events.tokens.clone(),
            text_bytes: a.text_bytes.clone(),
            output_tokens: a.output_tokens,
            server_output_tokens: a.server_output_tokens,
            server_prompt_tokens: a.server_prompt_tokens,
            finish_reason: a.finish_reason.clone(),
            method: a.method,
            complete: a.complete,
            server_error: a.server_error.clone(),
            protocol_error: a.protocol_error.clone(),
        }
    }
}

/// Feeds `parts` (part `i` received at time `i`) the way a request task does
/// (`request::drive`): a decoder that stops ends the response (cleanly unless it recorded
/// a protocol error); otherwise the body ends cleanly (`clean_end`) or breaks off.
fn decode_streamed(
    backend: BackendKind,
    ctx: &ReqCtx,
    max_event: usize,
    parts: &[&[u8]],
    clean_end: bool,
) -> Accum {
    let mut acc = Accum::with_capacity(ctx.max_tokens as usize + 1);
    let mut body = StreamBody::new(backend, ctx, max_event);
    for (t, part) in parts.iter().enumerate() {
        if !body.feed(part, t as u64, &mut acc) {
            let eof = acc.protocol_error.is_none();
            body.finish(&mut acc, t as u64, false, eof, ctx);
            return acc;
        }
    }
    body.finish(&mut acc, parts.len() as u64, clean_end, clean_end, ctx);
    assert!(body.is_finished());
    acc
}

/// Invariants of any finished response.
fn check(acc: &Accum, streamed: bool) {
    let ev = &acc.events;
    assert_eq!(ev.t_ns.len(), ev.tokens.len());
    assert_eq!(ev.tokens.len(), acc.text_bytes.len());
    assert!(ev.t_ns.windows(2).all(|w| w[0] <= w[1]), "times go back");
    for msg in [&acc.server_error, &acc.protocol_error]
        .into_iter()
        .flatten()
    {
        mutate::assert_one_line(msg, MAX_ERROR);
    }
    if let Some(r) = &acc.finish_reason {
        // Copied verbatim from the server, but only from a parsed JSON string.
        assert!(r.len() < 1 << 20);
    }
    let sum = ev.total_tokens().min(u64::from(u32::MAX)) as u32;
    match acc.method {
        Some("none") => {
            assert!(!streamed);
            assert_eq!(acc.output_tokens, None);
        }
        Some(_) => assert_eq!(acc.output_tokens, Some(sum), "output = sum of events"),
        // Only a non-streamed answer that failed to parse settles nothing.
        None => assert!(!streamed && acc.protocol_error.is_some() || acc.server_error.is_some()),
    }
}

fn ctx() -> impl Strategy<Value = ReqCtx> {
    (1u32..64, 0usize..32, any::<bool>()).prop_map(|(max_tokens, prompt_bytes, ignore_eos)| {
        ReqCtx {
            max_tokens,
            prompt_bytes,
            ignore_eos_sent: ignore_eos,
        }
    })
}

fn backend() -> impl Strategy<Value = BackendKind> {
    proptest::sample::select(BACKENDS.as_slice())
}

/// A tight bound now and then, so oversized lines are exercised too.
fn max_event() -> impl Strategy<Value = usize> {
    prop_oneof![3 => Just(replayer::MAX_EVENT_BYTES), 1 => 16usize..256]
}

proptest! {
    #![proptest_config(mutate::config(CASES))]

    #[test]
    fn streams_decode_the_same_in_any_chunks(
        body in mutate::mutated(seeds(), 6),
        backend in backend(),
        ctx in ctx(),
        max_event in max_event(),
        cuts in mutate::cuts(),
        clean_end in any::<bool>(),
    ) {
        let whole = decode_streamed(backend, &ctx, max_event, &[&body[..]], clean_end);
        check(&whole, true);
        let parts = mutate::split(&body, &cuts);
        let chunked = decode_streamed(backend, &ctx, max_event, &parts, clean_end);
        check(&chunked, true);
        prop_assert_eq!(Decoded::from(&chunked), Decoded::from(&whole));
        // One byte at a time: every split point at once.
        let bytes: Vec<&[u8]> = body.chunks(1).collect();
        let bytewise = decode_streamed(backend, &ctx, max_event, &bytes, clean_end);
        prop_assert_eq!(Decoded::from(&bytewise), Decoded::from(&whole));
    }

    #[test]
    fn answers_and_error_bodies_never_panic(
        body in mutate::mutated(seeds(), 6),
        backend in backend(),
        ctx in ctx(),
    ) {
        let mut acc = Accum::default();
        parse_answer(backend, &body, 7, &ctx, &mut acc);
        check(&acc, false);
        if acc.protocol_error.is_none() && acc.server_error.is_none() {
            prop_assert!(acc.complete);
            prop_assert_eq!(acc.events.len(), 1);
        }
        mutate::assert_one_line(&error_body_message(&body), MAX_ERROR);
    }
}

/// A `\r\n` cut between two chunks, and a body ending in a lone `\r`, at every split.
#[test]
fn sse_cr_lf_split_across_chunks() {
    let ctx = ReqCtx {
        max_tokens: 4,
        prompt_bytes: 0,
        ignore_eos_sent: false,
    };
    let body = b"data: {\"choices\":[{\"text\":\"a\"}]}\r\n\r\ndata: {\"choices\":[{\"text\":\"b\",\"finish_reason\":\"stop\"}]}\r";
    let whole = decode_streamed(BackendKind::Openai, &ctx, 1 << 10, &[body], true);
    for i in 0..=body.len() {
        let parts: [&[u8]; 2] = [&body[..i], &body[i..]];
        let r = decode_streamed(BackendKind::Openai, &ctx, 1 << 10, &parts, true);
        assert_eq!(Decoded::from(&r), Decoded::from(&whole), "split at {i}");
    }
    assert_eq!(whole.output_tokens, Some(2));
    assert!(whole.complete);
}

/// Regression (found by the `stream_parsers` fuzz target): an empty chunk between a `\r`
/// and its `\n` made the `\n` a blank line, dispatching an unfinished event.
#[test]
fn empty_chunk_between_cr_and_lf() {
    let ctx = ReqCtx {
        max_tokens: 8,
        prompt_bytes: 0,
        ignore_eos_sent: false,
    };
    let body: &[u8] = b"data:\xdc\r\n\x01";
    let whole = decode_streamed(BackendKind::Tgi, &ctx, 1 << 10, &[body], false);
    assert_eq!(whole.protocol_error, None);
    for i in 0..=body.len() {
        let parts: [&[u8]; 3] = [&body[..i], b"", &body[i..]];
        let r = decode_streamed(BackendKind::Tgi, &ctx, 1 << 10, &parts, false);
        assert_eq!(
            Decoded::from(&r),
            Decoded::from(&whole),
            "empty chunk at {i}"
        );
    }
}

/// Regression (found by the `stream_parsers` fuzz target): a blank `message` was taken
/// for the error text, leaving records with an empty error.
#[test]
fn blank_error_messages_are_not_empty_errors() {
    let ctx = ReqCtx {
        max_tokens: 4,
        prompt_bytes: 0,
        ignore_eos_sent: false,
    };
    let m = error_body_message(br#"{"ob":"or","message":"","c]":399}"#);
    assert_eq!(m, r#"{"ob":"or","message":"","c]":399}"#);
    for (backend, body) in [
        (
            BackendKind::Tgi,
            &b"data:{\"error\":{\"message\":\"\"}}\n\n"[..],
        ),
        (
            BackendKind::Openai,
            b"data: {\"error\":{\"message\":\" \"}}\n\n",
        ),
    ] {
        let acc = decode_streamed(backend, &ctx, 1 << 10, &[body], true);
        let e = acc.server_error.expect("an error event");
        mutate::assert_one_line(&e, MAX_ERROR);
    }
}
