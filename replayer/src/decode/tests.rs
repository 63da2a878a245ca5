//! Decoder tests: captured server bytes and synthetic dialect streams, fed through the
//! framing parsers split at every byte boundary (and in three pieces), must give the
//! same events, counts and outcome as the whole body.

use crate::decode::framing::{NulParser, SseParser};
use crate::dialect::adapter::{Accum, Decoder, Prompt, ReqCtx};
use crate::dialect::{lightllm, openai, tgi, vllm};

pub(crate) const CTX: ReqCtx = ReqCtx {
    max_tokens: 8,
    prompt_bytes: 0,
    ignore_eos_sent: true,
};

#[derive(Debug, PartialEq)]
pub(crate) struct Result {
    pub tokens: Vec<u32>,
    pub times: Vec<u64>,
    pub output: Option<u32>,
    pub server_output: Option<u32>,
    pub server_prompt: Option<u32>,
    pub finish: Option<String>,
    pub method: Option<&'static str>,
    pub complete: bool,
    pub server_error: Option<String>,
    pub protocol_error: bool,
    pub flags: Vec<&'static str>,
    pub tools: crate::dialect::tool_calls::ToolFields,
}

/// Feeds `parts` (each received at its index as time) through SSE or NUL framing.
pub(crate) fn run(
    parts: &[&[u8]],
    nul: bool,
    mut dec: Box<dyn Decoder>,
    ctx: &ReqCtx,
    eof: bool,
) -> Result {
    let mut acc = Accum::with_capacity(16);
    let mut sse = SseParser::new(1 << 16);
    let mut nulp = NulParser::new(1 << 16);
    let mut stopped = false;
    for (t, part) in parts.iter().enumerate() {
        let mut cb = |d: &[u8]| dec.payload(d, t as u64, &mut acc);
        let r = if nul {
            nulp.feed(part, &mut cb)
        } else {
            sse.feed(part, &mut cb)
        };
        match r {
            Ok(true) => {}
            Ok(false) => {
                stopped = true;
                break;
            }
            Err(e) => {
                acc.fail_protocol(e);
                stopped = true;
                break;
            }
        }
    }
    if !stopped && eof {
        let t = parts.len() as u64;
        let mut cb = |d: &[u8]| dec.payload(d, t, &mut acc);
        if nul {
            nulp.finish(&mut cb);
        } else {
            sse.finish(&mut cb).unwrap();
        }
    }
    let clean = (eof || stopped) && acc.protocol_error.is_none();
    dec.finish(&mut acc, ctx, clean);
    Result {
        tokens: acc.events.tokens.clone(),
        times: acc.events.t_ns.clone(),
        output: acc.output_tokens,
        server_output: acc.server_output_tokens,
        server_prompt: acc.server_prompt_tokens,
        finish: acc.finish_reason.clone(),
        method: acc.method,
        complete: acc.complete,
        server_error: acc.server_error.clone(),
        protocol_error: acc.protocol_error.is_some(),
        flags: acc.flags.clone(),
        tools: acc.tools.fields(&acc.events),
    }
}

/// Whole-body result; asserts every 2- and 3-way split gives the same (times aside).
pub(crate) fn check_splits(
    body: &[u8],
    nul: bool,
    make: &dyn Fn() -> Box<dyn Decoder>,
    ctx: &ReqCtx,
) -> Result {
    let whole = run(&[body], nul, make(), ctx, true);
    let strip = |mut r: Result| {
        r.times.clear();
        r.tools.first_tool_ns = None;
        r
    };
    let reference = strip(run(&[body], nul, make(), ctx, true));
    for i in 0..=body.len() {
        let r = run(&[&body[..i], &body[i..]], nul, make(), ctx, true);
        assert_eq!(strip(r), reference, "split at {i}");
    }
    let step = (body.len() / 40).max(1);
    for i in (0..=body.len()).step_by(step) {
        for j in (i..=body.len()).step_by(step) {
            let r = run(
                &[&body[..i], &body[i..j], &body[j..]],
                nul,
                make(),
                ctx,
                true,
            );
            assert_eq!(strip(r), reference, "split at {i},{j}");
        }
    }
    whole
}

fn oai() -> Box<dyn Decoder> {
    Box::new(openai::StreamDecoder::default())
}

#[test]
fn llama_cpp_completions_stream() {
    let body = include_bytes!("../../tests/fixtures/llama.cpp/completions_stream.body");
    let r = check_splits(body, false, &oai, &CTX);
    assert_eq!(r.tokens, vec![1; 8]);
    assert_eq!(r.output, Some(8));
    assert_eq!(r.server_output, Some(8));
    assert_eq!(r.server_prompt, Some(14));
    assert_eq!(r.finish.as_deref(), Some("length"));
    assert_eq!(r.method, Some("final_usage"));
    assert!(r.complete && r.server_error.is_none() && !r.protocol_error);
}

#[test]
fn llama_cpp_chat_stream_skips_role_and_usage_chunks() {
    let body = include_bytes!("../../tests/fixtures/llama.cpp/chat_stream.body");
    let r = check_splits(body, false, &oai, &CTX);
    assert_eq!(
        r.tokens.len(),
        8,
        "role-only and usage-only chunks are not events"
    );
    assert_eq!(r.output, Some(8));
    assert_eq!(r.server_prompt, Some(41));
    assert!(r.complete);
}

#[test]
fn transformers_stream_without_done_is_complete_by_finish_reason() {
    let body = include_bytes!("../../tests/fixtures/transformers-serve/completions_stream.body");
    let r = check_splits(body, false, &oai, &CTX);
    assert_eq!(r.output, Some(8));
    assert_eq!(r.finish.as_deref(), Some("length"));
    assert!(r.complete);
}

#[test]
fn openai_stream_cut_before_finish_is_incomplete() {
    let body = include_bytes!("../../tests/fixtures/transformers-serve/completions_stream.body");
    let cut = &body[..body.len() / 2];
    let r = run(&[cut], false, oai(), &CTX, true);
    assert!(!r.complete, "no finish_reason, no [DONE]");
    // No total from the server and not finished at the length limit: one per event,
    // and the method says so.
    assert_eq!(r.method, Some("event_count"));
}

#[test]
fn openai_continuous_usage_counts_deltas() {
    let body = b"data: {\"choices\":[{\"text\":\"a\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n\
data: {\"choices\":[{\"text\":\"bcd\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n\
data: {\"choices\":[{\"text\":\"\",\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\n\
data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4}}\n\ndata: [DONE]\n\n";
    let r = check_splits(body, false, &oai, &CTX);
    assert_eq!(r.tokens, vec![1, 3]);
    assert_eq!(r.method, Some("usage_delta"));
    assert_eq!(r.output, Some(4));
    assert!(r.complete);
}

#[test]
fn openai_coalesced_events_split_final_usage_by_text() {
    let body = b"data: {\"choices\":[{\"text\":\"ab\"}]}\n\ndata: {\"choices\":[{\"text\":\"cdefgh\",\"finish_reason\":\"length\"}]}\n\n\
data: {\"choices\":[],\"usage\":{\"completion_tokens\":8}}\n\ndata: [DONE]\n\n";
    let r = check_splits(body, false, &oai, &CTX);
    // One token each, the other 6 by text bytes (2:6).
    assert_eq!(r.tokens, vec![3, 5]);
    assert_eq!(r.method, Some("final_usage"));
}

#[test]
fn openai_error_event_mid_stream() {
    let body = b"data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"error\":{\"message\":\"engine died\",\"type\":\"x\",\"code\":500}}\n\ndata: [DONE]\n\n";
    let r = check_splits(body, false, &oai, &CTX);
    assert_eq!(r.server_error.as_deref(), Some("engine died"));
    let flat = b"data: {\"object\":\"error\",\"message\":\"old style\",\"code\":400}\n\n";
    let r = run(&[flat], false, oai(), &CTX, true);
    assert_eq!(r.server_error.as_deref(), Some("old style"));
}

#[test]
fn openai_malformed_and_wrong_types_are_protocol_errors() {
    for body in [
        &b"data: {\"choices\":[{\"text\":\"a\"}\n\n"[..],
        b"data: {\"choices\":[{\"text\":5}]}\n\n",
        b"data: {\"choices\":\"x\"}\n\n",
        b"data: {\"choices\":[],\"usage\":{\"completion_tokens\":\"many\"}}\n\n",
        b"data: \xff\xfe\n\n",
    ] {
        let r = run(&[body], false, oai(), &CTX, true);
        assert!(r.protocol_error, "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn openai_answers() {
    let mut acc = Accum::default();
    openai::parse_answer(
        include_bytes!("../../tests/fixtures/llama.cpp/completions.body"),
        7,
        &CTX,
        &mut acc,
    );
    assert_eq!(acc.events.t_ns, vec![7]);
    assert_eq!(acc.output_tokens, Some(8));
    assert_eq!(acc.method, Some("final_usage"));
    assert_eq!(acc.finish_reason.as_deref(), Some("length"));
    let mut acc = Accum::default();
    openai::parse_answer(
        include_bytes!("../../tests/fixtures/transformers-serve/completions.body"),
        7,
        &CTX,
        &mut acc,
    );
    assert_eq!(acc.server_prompt_tokens, Some(14));
    assert_eq!(acc.output_tokens, Some(8));
    let mut acc = Accum::default();
    openai::parse_answer(
        b"{\"choices\":[{\"message\":{\"content\":\"hi\"},\"finish_reason\":\"stop\"}]}",
        1,
        &CTX,
        &mut acc,
    );
    assert_eq!(acc.method, Some("none"));
    assert_eq!(acc.output_tokens, None, "no count is invented");
    assert_eq!(acc.finish_reason.as_deref(), Some("stop"));
}

fn tgi_stream(n: usize, details: bool) -> Vec<u8> {
    let mut s = Vec::new();
    for i in 0..n {
        let last = i + 1 == n;
        s.extend_from_slice(
            format!(
                "data:{{\"token\":{{\"id\":{i},\"text\":\" w\\\"{i}\",\"logprob\":-0.3,\"special\":false}},\"generated_text\":{},\"details\":{}}}\n\n",
                if last { "\"all\"" } else { "null" },
                if last && details {
                    format!("{{\"finish_reason\":\"eos_token\",\"generated_tokens\":{n},\"seed\":null}}")
                } else {
                    "null".into()
                }
            )
            .as_bytes(),
        );
    }
    s
}

#[test]
fn tgi_stream_one_token_per_event() {
    let body = tgi_stream(5, true);
    let r = check_splits(&body, false, &|| Box::new(tgi::StreamDecoder), &CTX);
    assert_eq!(r.tokens, vec![1; 5]);
    assert_eq!(r.method, Some("per_event"));
    assert_eq!(r.server_output, Some(5));
    assert_eq!(r.finish.as_deref(), Some("eos_token"), "early stop visible");
    assert!(r.complete);
    // Cut before the final event: not complete.
    let cut = tgi_stream(5, true);
    let cut = &cut[..cut.len() - 30];
    let r = run(&[cut], false, Box::new(tgi::StreamDecoder), &CTX, true);
    assert!(!r.complete);
}

#[test]
fn tgi_error_event_and_keepalive() {
    let body = b":\n\ndata:{\"token\":{\"id\":1,\"text\":\"a\",\"logprob\":0,\"special\":false},\"generated_text\":null,\"details\":null}\n\n: keep-alive\n\ndata:{\"error\":\"Request failed during generation: OOM\",\"error_type\":\"generation\"}\n\n";
    let r = check_splits(body, false, &|| Box::new(tgi::StreamDecoder), &CTX);
    assert_eq!(r.tokens, vec![1]);
    assert_eq!(
        r.server_error.as_deref(),
        Some("Request failed during generation: OOM")
    );
}

#[test]
fn tgi_answer() {
    let mut acc = Accum::default();
    tgi::parse_answer(
        br#"{"generated_text":"x","details":{"finish_reason":"length","generated_tokens":8,"seed":null,"prefill":[],"tokens":[]}}"#,
        3,
        &CTX,
        &mut acc,
    );
    assert_eq!(acc.output_tokens, Some(8));
    assert_eq!(acc.method, Some("final_usage"));
    let mut acc = Accum::default();
    tgi::parse_answer(br#"{"generated_text":"x"}"#, 3, &CTX, &mut acc);
    assert_eq!(
        acc.output_tokens, None,
        "TGI cannot ignore EOS: no assumed total"
    );
    let mut acc = Accum::default();
    tgi::parse_answer(br#"{"generated_text":7}"#, 3, &CTX, &mut acc);
    assert!(acc.protocol_error.is_some());
}

#[test]
fn lightllm_stream_ends_without_marker() {
    let body = tgi_stream(4, false);
    let four = ReqCtx {
        max_tokens: 4,
        ..CTX
    };
    let r = check_splits(
        &body,
        false,
        &|| Box::new(lightllm::StreamDecoder::default()),
        &four,
    );
    assert_eq!(r.tokens, vec![1; 4]);
    assert!(
        r.complete,
        "clean end of body is the end of a LightLLM stream"
    );
    assert_eq!(r.method, Some("per_event"));
    assert!(r.flags.is_empty());
    // Fewer events than ignore_eos guarantees (8): events were lost, counted by contract.
    let r = check_splits(
        &body,
        false,
        &|| Box::new(lightllm::StreamDecoder::default()),
        &CTX,
    );
    assert_eq!(r.tokens, vec![2; 4]);
    assert_eq!(r.method, Some("assumed_max_tokens"));
    assert_eq!(r.flags, vec!["events_lost"]);
    // Without ignore_eos nothing says how many were lost: a lower bound.
    let no_eos = ReqCtx {
        ignore_eos_sent: false,
        ..CTX
    };
    let r = check_splits(
        &body,
        false,
        &|| Box::new(lightllm::StreamDecoder::default()),
        &no_eos,
    );
    assert_eq!((r.tokens, r.method), (vec![1; 4], Some("per_event")));
    // A broken connection (not eof) is not complete.
    let r = run(
        &[&body],
        false,
        Box::new(lightllm::StreamDecoder::default()),
        &CTX,
        false,
    );
    assert!(!r.complete);
    // An empty body is not a success.
    let r = run(
        &[b""],
        false,
        Box::new(lightllm::StreamDecoder::default()),
        &CTX,
        true,
    );
    assert!(r.protocol_error);
}

#[test]
fn lightllm_answer() {
    let mut acc = Accum::default();
    lightllm::parse_answer(br#"{"generated_text":["abc"]}"#, 3, &CTX, &mut acc);
    assert_eq!(acc.output_tokens, Some(8));
    assert_eq!(acc.method, Some("assumed_max_tokens"));
    let no_eos = ReqCtx {
        ignore_eos_sent: false,
        ..CTX
    };
    let mut acc = Accum::default();
    lightllm::parse_answer(br#"{"generated_text":["abc"]}"#, 3, &no_eos, &mut acc);
    assert_eq!(acc.output_tokens, None);
    let mut acc = Accum::default();
    lightllm::parse_answer(
        br#"{"generated_text":["abc"],"count_output_tokens":5,"finish_reason":"stop"}"#,
        3,
        &no_eos,
        &mut acc,
    );
    assert_eq!(acc.output_tokens, Some(5));
}

fn vllm_stream(prompt: &str, pieces: &[&str]) -> Vec<u8> {
    let mut s = Vec::new();
    let mut text = prompt.to_string();
    for p in pieces {
        text.push_str(p);
        s.extend_from_slice(serde_json::json!({ "text": [text] }).to_string().as_bytes());
        s.push(0);
    }
    s
}

#[test]
fn vllm_cumulative_text_split_by_new_bytes() {
    let prompt = "The quick \"brown\" fox";
    let body = vllm_stream(prompt, &[" a", " bb", "", " cccc"]);
    let ctx = ReqCtx {
        max_tokens: 9,
        prompt_bytes: prompt.len(),
        ignore_eos_sent: true,
    };
    let make = || -> Box<dyn Decoder> { Box::new(vllm::StreamDecoder::new(&ctx)) };
    let r = check_splits(&body, true, &make, &ctx);
    assert_eq!(r.tokens.len(), 4);
    assert_eq!(r.tokens.iter().sum::<u32>(), 9);
    // One token each (the step without new text ended inside a character), the other
    // 5 by new bytes.
    assert_eq!(r.tokens, vec![2, 3, 1, 3]);
    assert_eq!(r.method, Some("assumed_max_tokens"));
    assert!(r.complete && r.server_error.is_none());
    // Without ignore_eos: one per event assumed, said so.
    let ctx2 = ReqCtx {
        ignore_eos_sent: false,
        ..ctx
    };
    let r = run(
        &[&body],
        true,
        Box::new(vllm::StreamDecoder::new(&ctx2)),
        &ctx2,
        true,
    );
    assert_eq!(r.method, Some("event_count"));
    assert_eq!(r.tokens, vec![1; 4]);
}

#[test]
fn vllm_prompt_only_is_a_zero_token_answer() {
    // Was an error ("empty completion"); the server's source answers exactly this, 200,
    // when it generated nothing (prompt over its limits, or EOS first): 0 tokens, flagged.
    let prompt = "long prompt";
    let body = vllm_stream(prompt, &[""]);
    let ctx = ReqCtx {
        max_tokens: 9,
        prompt_bytes: prompt.len(),
        ignore_eos_sent: true,
    };
    let r = run(
        &[&body],
        true,
        Box::new(vllm::StreamDecoder::new(&ctx)),
        &ctx,
        true,
    );
    assert!(r.server_error.is_none() && r.complete && !r.protocol_error);
    assert_eq!(r.output, Some(0));
    assert_eq!(r.method, Some("no_output"));
    assert_eq!(r.flags, vec!["prompt_only"]);
    let mut acc = Accum::default();
    vllm::parse_answer(
        serde_json::json!({ "text": [prompt] })
            .to_string()
            .as_bytes(),
        1,
        &ctx,
        &mut acc,
    );
    assert!(acc.server_error.is_none() && acc.complete);
    assert_eq!(acc.output_tokens, Some(0));
    assert_eq!(acc.flags, vec!["prompt_only"]);
    let mut acc = Accum::default();
    vllm::parse_answer(br#"{"text":["long prompt and more"]}"#, 1, &ctx, &mut acc);
    assert!(acc.server_error.is_none());
    assert_eq!(acc.output_tokens, Some(9));
}

#[test]
fn request_bodies() {
    use crate::dialect::adapter::BodyOptions;
    let opts = BodyOptions {
        stream: true,
        model: Some("m".into()),
        ignore_eos: true,
        min_tokens: true,
        stream_usage: true,
        continuous_usage: true,
    };
    let b = tgi::body("hi", 5, &opts);
    assert_eq!(b["parameters"]["max_new_tokens"], 5);
    assert!(b["parameters"].get("ignore_eos").is_none());
    let b = lightllm::body("hi", 5, &opts);
    assert_eq!(b["parameters"]["ignore_eos"], true);
    let b = vllm::body("hi", 5, &opts);
    assert_eq!(b["max_tokens"], 5);
    assert_eq!(b["ignore_eos"], true);
    let ids = Prompt {
        token_ids: Some(&[1, 2]),
        ..Prompt::text("hi")
    };
    let b = openai::body(false, &ids, 5, &opts);
    assert_eq!(b["prompt"], serde_json::json!([1, 2]));
    assert_eq!(b["min_tokens"], 5);
    assert_eq!(b["stream_options"]["continuous_usage_stats"], true);
    assert_eq!(b["model"], "m");
    let strict = BodyOptions {
        ignore_eos: false,
        min_tokens: false,
        stream_usage: false,
        continuous_usage: false,
        model: None,
        ..opts
    };
    let b = openai::body(true, &Prompt::text("hi"), 5, &strict);
    let keys: Vec<&String> = b.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["max_tokens", "messages", "stream"]);
    assert_eq!(
        b["messages"],
        serde_json::json!([{"role": "user", "content": "hi"}])
    );
}

/// A request with recorded `messages`: chat sends them as recorded (roles, contents,
/// order); completion-style dialects send the prompt text (their rendering).
#[test]
fn chat_bodies_send_recorded_messages() {
    use crate::dialect::adapter::{BodyOptions, Dialect};
    use formats::ChatMessage;
    let opts = BodyOptions {
        stream: true,
        model: None,
        ignore_eos: false,
        min_tokens: false,
        stream_usage: false,
        continuous_usage: false,
    };
    let messages = vec![
        ChatMessage::new("system", "be brief"),
        ChatMessage::new("user", "hello there"),
        ChatMessage::new("assistant", "hi, \"quoted\"\nline"),
        ChatMessage::new("user", "and now?"),
    ];
    let text = formats::render_messages(&messages);
    let prompt = Prompt {
        text: &text,
        token_ids: None,
        messages: Some(&messages),
    };
    let b = openai::OpenAi { chat: true }.body(&prompt, 7, &opts);
    let sent: Vec<ChatMessage> = serde_json::from_value(b["messages"].clone()).unwrap();
    assert_eq!(sent, messages);
    assert_eq!(b["max_tokens"], 7);
    let b = openai::OpenAi { chat: false }.body(&prompt, 7, &opts);
    assert_eq!(b["prompt"], serde_json::json!(text));
    assert!(b.get("messages").is_none());
    for kind in [
        crate::BackendKind::Tgi,
        crate::BackendKind::Vllm,
        crate::BackendKind::Lightllm,
        crate::BackendKind::Sglang,
        crate::BackendKind::Llamacpp,
    ] {
        let b = kind.dialect().body(&prompt, 7, &opts).to_string();
        assert!(
            b.contains(&serde_json::to_string(&text).unwrap()),
            "{kind}: {b}"
        );
        assert!(!b.contains("\"role\""), "{kind}: {b}");
    }
}
