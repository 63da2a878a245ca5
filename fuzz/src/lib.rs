//! What every fuzz target checks, and the input layouts they share.
//!
//! The targets (`fuzz_targets/`) feed libFuzzer's bytes to the public entry points of
//! each reader and parser. A crash is a panic (or an abort: out-of-memory, stack
//! overflow); an error that is not one short line is turned into a panic here, so
//! libFuzzer reports it like a crash, with the input saved under `artifacts/`.

use replayer::BackendKind;
use replayer::adapter::{Accum, ReqCtx};
use replayer::decode::StreamBody;

/// Longest acceptable error line, in bytes. Errors quote the input's own values (a
/// damaged field name, an unknown variant, a CSV cell) tidied and cut to at most 200
/// characters, up to 4 bytes each in UTF-8; anything longer is an unbounded echo.
pub const MAX_ERROR: usize = 1024;

/// Panics unless `msg` is fit to show a user: one non-empty line of at most `max` bytes.
pub fn assert_one_line(msg: &str, max: usize) {
    assert!(!msg.trim().is_empty(), "empty error message");
    assert!(
        !msg.contains(['\n', '\r']),
        "error message on several lines: {msg:?}"
    );
    let mut head = msg.len().min(300);
    while !msg.is_char_boundary(head) {
        head -= 1;
    }
    assert!(
        msg.len() <= max,
        "error message of {} bytes (limit {max}): {:?}...",
        msg.len(),
        &msg[..head]
    );
}

/// Control bytes in front of a `stream_parsers` input; the rest is the response body.
pub const STREAM_HEADER: usize = 8;

/// The backends in the order the control byte selects them.
pub const BACKENDS: [BackendKind; 7] = [
    BackendKind::Tgi,
    BackendKind::Vllm,
    BackendKind::Lightllm,
    BackendKind::Openai,
    BackendKind::OpenaiChat,
    BackendKind::Sglang,
    BackendKind::Llamacpp,
];

/// How a `stream_parsers` input is decoded, from its control bytes:
/// `[backend | flags, max_tokens, prompt_bytes, bound, cut seed (4 bytes)]`.
#[derive(Debug, Clone, Copy)]
pub struct StreamCase {
    pub backend: BackendKind,
    pub streamed: bool,
    pub clean_end: bool,
    pub ctx: ReqCtx,
    /// Bound of one SSE line / NUL object: a tight one now and then.
    pub max_event: usize,
    pub cut_seed: u32,
}

impl StreamCase {
    /// Splits an input into its case and body; `None` when too short.
    pub fn parse(data: &[u8]) -> Option<(StreamCase, &[u8])> {
        let (h, body) = data.split_at_checked(STREAM_HEADER)?;
        let case = StreamCase {
            backend: BACKENDS[(h[0] & 0x0f) as usize % BACKENDS.len()],
            streamed: h[0] & 0x10 == 0,
            clean_end: h[0] & 0x20 == 0,
            ctx: ReqCtx {
                max_tokens: u32::from(h[1]).max(1),
                prompt_bytes: usize::from(h[2]),
                ignore_eos_sent: h[0] & 0x40 != 0,
            },
            max_event: if h[3] < 0xf0 {
                replayer::MAX_EVENT_BYTES
            } else {
                16 << (h[3] & 0x0f)
            },
            cut_seed: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
        };
        Some((case, body))
    }

    /// The control bytes of a case (for seed corpora).
    pub fn header(backend: usize, streamed: bool, max_tokens: u8) -> [u8; STREAM_HEADER] {
        let flags = if streamed { 0 } else { 0x10 };
        [backend as u8 | flags, max_tokens, 0, 0, 1, 2, 3, 4]
    }
}

/// Up to 7 cut points of a `len`-byte body, drawn from `seed` (xorshift).
pub fn cut_points(len: usize, seed: u32) -> Vec<usize> {
    let mut x = seed | 1;
    let n = (seed >> 29) as usize;
    let mut cuts: Vec<usize> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as usize % (len + 1)
        })
        .collect();
    cuts.sort_unstable();
    cuts
}

/// Feeds `parts` (part `i` received at time `i`) the way a replay's request task does:
/// a decoder that stops ends the response (cleanly unless it recorded a protocol
/// error); otherwise the body ends cleanly (`clean_end`) or breaks off.
pub fn decode_streamed(case: &StreamCase, parts: &[&[u8]]) -> Accum {
    let ctx = &case.ctx;
    let mut acc = Accum::with_capacity(ctx.max_tokens as usize + 1);
    let mut body = StreamBody::new(case.backend, ctx, case.max_event);
    for (t, part) in parts.iter().enumerate() {
        if !body.feed(part, t as u64, &mut acc) {
            let eof = acc.protocol_error.is_none();
            body.finish(&mut acc, t as u64, false, eof, ctx);
            return acc;
        }
    }
    body.finish(
        &mut acc,
        parts.len() as u64,
        case.clean_end,
        case.clean_end,
        ctx,
    );
    acc
}

/// Everything a decoded response amounts to except event times.
pub fn summary(a: &Accum) -> impl PartialEq + std::fmt::Debug + use<> {
    (
        a.events.tokens.clone(),
        a.text_bytes.clone(),
        (
            a.output_tokens,
            a.server_output_tokens,
            a.server_prompt_tokens,
        ),
        (a.finish_reason.clone(), a.method, a.complete),
        (a.server_error.clone(), a.protocol_error.clone()),
    )
}

/// Invariants of any finished response (see `replayer/tests/fuzz_parsers.rs`).
pub fn check_accum(acc: &Accum, streamed: bool) {
    let ev = &acc.events;
    assert_eq!(ev.t_ns.len(), ev.tokens.len());
    assert_eq!(ev.tokens.len(), acc.text_bytes.len());
    assert!(ev.t_ns.windows(2).all(|w| w[0] <= w[1]), "times go back");
    for msg in [&acc.server_error, &acc.protocol_error]
        .into_iter()
        .flatten()
    {
        assert_one_line(msg, replayer::adapter::ERROR_LIMIT + 3);
    }
    let sum = ev.total_tokens().min(u64::from(u32::MAX)) as u32;
    match acc.method {
        Some("none") => assert!(!streamed && acc.output_tokens.is_none()),
        Some(_) => assert_eq!(acc.output_tokens, Some(sum), "output = sum of events"),
        None => assert!(!streamed && acc.protocol_error.is_some() || acc.server_error.is_some()),
    }
}
