//! Reasoning streams through the decoding a replay runs ([`crate::decode::StreamBody`]):
//! vLLM chat streams reconstructed from its source (`tests/fixtures/vllm-reasoning/`),
//! whole, split at every byte boundary and in three pieces, and one event per chunk to
//! check the first reasoning and first answer times.

use crate::BackendKind;
use crate::decode::{StreamBody, parse_answer};
use crate::dialect::adapter::{Accum, ReqCtx};
use crate::dialect::reasoning::ReasoningFields;

const CTX: ReqCtx = ReqCtx {
    max_tokens: 64,
    prompt_bytes: 0,
    ignore_eos_sent: false,
};

/// vLLM after the rename, with the copy kept for old clients: `reasoning` and
/// `reasoning_content` both carry the text; `include_usage`.
const COPIED: &[u8] =
    include_bytes!("../../../tests/fixtures/vllm-reasoning/chat_reasoning_stream.body");
/// vLLM sending `reasoning` only; `continuous_usage_stats`.
const CONTINUOUS: &[u8] = include_bytes!(
    "../../../tests/fixtures/vllm-reasoning/chat_reasoning_continuous_usage_stream.body"
);

/// What a decoded response amounts to.
#[derive(Debug, PartialEq)]
struct Outcome {
    tokens: Vec<u32>,
    output: Option<u32>,
    server_output: Option<u32>,
    method: Option<&'static str>,
    finish: Option<String>,
    complete: bool,
    error: bool,
    fields: ReasoningFields,
}

/// Decodes `parts`, part `i` received at time `i`.
fn decode(parts: &[&[u8]]) -> Outcome {
    let mut acc = Accum::with_capacity(16);
    let mut body = StreamBody::new(BackendKind::OpenaiChat, &CTX, 1 << 16);
    for (t, part) in parts.iter().enumerate() {
        if !body.feed(part, t as u64, &mut acc) {
            break;
        }
    }
    body.finish(&mut acc, parts.len() as u64, true, true, &CTX);
    let counted = acc.method.is_some() && acc.output_tokens.is_some();
    Outcome {
        fields: acc.reasoning.fields(&acc.events, counted),
        tokens: acc.events.tokens.clone(),
        output: acc.output_tokens,
        server_output: acc.server_output_tokens,
        method: acc.method,
        finish: acc.finish_reason.clone(),
        complete: acc.complete,
        error: acc.protocol_error.is_some() || acc.server_error.is_some(),
    }
}

/// Times aside, every 2-way split and a grid of 3-way splits decode as the whole body.
fn check_splits(body: &[u8]) -> Outcome {
    let untimed = |mut o: Outcome| {
        o.fields.first_reasoning_ns = o.fields.first_reasoning_ns.map(|_| 0);
        o.fields.first_answer_ns = o.fields.first_answer_ns.map(|_| 0);
        o
    };
    let whole = decode(&[body]);
    let reference = untimed(decode(&[body]));
    for i in 0..=body.len() {
        let o = decode(&[&body[..i], &body[i..]]);
        if let (Some(r), Some(a)) = (o.fields.first_reasoning_ns, o.fields.first_answer_ns) {
            assert!(r <= a, "split at {i}");
        }
        assert_eq!(untimed(o), reference, "split at {i}");
    }
    let step = (body.len() / 40).max(1);
    for i in (0..=body.len()).step_by(step) {
        for j in (i..=body.len()).step_by(step) {
            let o = decode(&[&body[..i], &body[i..j], &body[j..]]);
            assert_eq!(untimed(o), reference, "split at {i},{j}");
        }
    }
    whole
}

/// The body's SSE events, one per part (each ends with its blank line).
fn events(body: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    for i in 0..body.len().saturating_sub(1) {
        if &body[i..i + 2] == b"\n\n" {
            parts.push(&body[start..i + 2]);
            start = i + 2;
        }
    }
    assert_eq!(start, body.len(), "body ends with a blank line");
    parts
}

#[test]
fn copied_reasoning_fields_count_once() {
    let o = check_splits(COPIED);
    assert!(!o.error && o.complete);
    assert_eq!(o.finish.as_deref(), Some("stop"));
    // 16 reasoning events, the empty one of </think>, and 9 answer events; the
    // server's 28 tokens (with <think> and EOS, which have no chunk of their own): one
    // per event, the other 2 by text bytes.
    assert_eq!(
        (o.method, o.output, o.server_output),
        (Some("final_usage"), Some(28), Some(28))
    );
    assert_eq!(o.tokens.len(), 26);
    // Counted twice, the reasoning bytes would take a larger share.
    // <think>, 16 reasoning tokens and </think>: 18 (the estimate happens to be exact).
    assert_eq!(o.fields.reasoning_tokens, Some(18));
    assert_eq!(o.fields.server_reasoning_tokens, None);
}

#[test]
fn continuous_usage_counts_reasoning_exactly() {
    let o = check_splits(CONTINUOUS);
    assert!(!o.error && o.complete);
    assert_eq!((o.method, o.output), (Some("usage_delta"), Some(28)));
    // <think> made no chunk: the first reasoning chunk carries 2 tokens; </think> and
    // EOS are events of one token without text, neither reasoning nor answer.
    assert_eq!(o.tokens.len(), 27);
    assert_eq!(o.tokens[0], 2);
    assert_eq!(o.fields.reasoning_tokens, Some(17));
}

#[test]
fn first_reasoning_and_first_answer_times() {
    for body in [COPIED, CONTINUOUS] {
        let parts = events(body);
        // Chunk 0: the role; 1..=16: reasoning; 17: </think>; 18: the first answer text.
        let o = decode(&parts);
        assert_eq!(o.fields.first_reasoning_ns, Some(1));
        assert_eq!(o.fields.first_answer_ns, Some(18));
    }
}

#[test]
fn answer_never_came() {
    // The length limit hit while reasoning: no answer time, every token reasoning.
    let body = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"Hmm\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\" so\"},\"finish_reason\":\"length\"}],",
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":2,\"reasoning_tokens\":2}}\n\n",
        "data: [DONE]\n\n"
    );
    let o = check_splits(body.as_bytes());
    assert_eq!(o.output, Some(2));
    assert_eq!(o.fields.first_answer_ns, None);
    assert_eq!(o.fields.first_reasoning_ns, Some(0));
    assert_eq!(o.fields.reasoning_tokens, Some(2));
    assert_eq!(o.fields.server_reasoning_tokens, Some(2));
}

#[test]
fn plain_answers_have_an_answer_time_and_no_reasoning() {
    let body = b"data: {\"choices\":[{\"index\":0,\"text\":\" a\",\"finish_reason\":\"length\"}]}\n\ndata: [DONE]\n\n";
    let mut acc = Accum::with_capacity(4);
    let mut sb = StreamBody::new(BackendKind::Openai, &CTX, 1 << 16);
    sb.feed(body, 7, &mut acc);
    sb.finish(&mut acc, 8, true, true, &CTX);
    let f = acc.reasoning.fields(&acc.events, true);
    assert_eq!((f.first_reasoning_ns, f.first_answer_ns), (None, Some(7)));
    assert_eq!(f.reasoning_tokens, None);
}

#[test]
fn whole_answer_counts_reasoning_by_bytes() {
    let body = br#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"four","reasoning":"12345678901234567890","reasoning_content":"12345678901234567890"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"total_tokens":15,"completion_tokens":12,"completion_tokens_details":{"reasoning_tokens":9}}}"#;
    let mut acc = Accum::with_capacity(1);
    parse_answer(BackendKind::OpenaiChat, body, 5, &CTX, &mut acc);
    let f = acc
        .reasoning
        .fields(&acc.events, acc.output_tokens.is_some());
    // 20 of 24 text bytes are reasoning: 10 of the 12 tokens.
    assert_eq!(f.reasoning_tokens, Some(10));
    assert_eq!(f.server_reasoning_tokens, Some(9));
    assert_eq!((f.first_reasoning_ns, f.first_answer_ns), (None, None));
}

#[test]
fn llama_cpp_style_reasoning_stream() {
    // llama-server with --reasoning-format deepseek: a role delta with null content,
    // `reasoning_content` deltas, then `content`; the last chunk an empty delta with the
    // usage and llama.cpp's timings.
    let body = concat!(
        "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":null}}],\"object\":\"chat.completion.chunk\"}\n\n",
        "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"reasoning_content\":\"We\"}}],\"object\":\"chat.completion.chunk\"}\n\n",
        "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"reasoning_content\":\" should\"}}],\"object\":\"chat.completion.chunk\"}\n\n",
        "data: {\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"Hi\"}}],\"object\":\"chat.completion.chunk\"}\n\n",
        "data: {\"choices\":[{\"finish_reason\":\"stop\",\"index\":0,\"delta\":{}}],\"object\":\"chat.completion.chunk\",",
        "\"usage\":{\"completion_tokens\":5,\"prompt_tokens\":9,\"total_tokens\":14},",
        "\"timings\":{\"prompt_n\":9,\"predicted_n\":5,\"predicted_ms\":20.5}}\n\n",
        "data: [DONE]\n\n"
    );
    let o = check_splits(body.as_bytes());
    assert!(!o.error && o.complete);
    assert_eq!((o.method, o.output), (Some("final_usage"), Some(5)));
    assert_eq!(o.tokens.len(), 3);
    // 9 of 11 text bytes are reasoning: 5 tokens split 1 + 3 (reasoning), 1 (answer).
    assert_eq!(o.fields.reasoning_tokens, Some(4));
    let timed = decode(&events(body.as_bytes()));
    assert_eq!(
        (
            timed.fields.first_reasoning_ns,
            timed.fields.first_answer_ns
        ),
        (Some(1), Some(3))
    );
}
