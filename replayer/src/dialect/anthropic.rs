//! The Anthropic Messages API: `POST /v1/messages` (Anthropic, and vLLM >= 0.11 beside
//! its OpenAI routes).
//!
//! Request: `model` (required by the API: given, or discovered from `/v1/models`),
//! `max_tokens`, `messages` (the trace's chat, its `system` messages moved to the
//! top-level `system` field, which is where the API takes them; else the prompt as one
//! user message), `stream`. No `ignore_eos`: the API has none. Headers: the API key as
//! `x-api-key` (not `Authorization`) and `anthropic-version: 2023-06-01`
//! (`crate::net::http::build_headers`).
//!
//! Stream (SSE with `event:` lines; the data's `type` says the same): `message_start`
//! (`message.usage.input_tokens`, `cache_read_input_tokens`), `content_block_start`
//! (a `text`, `thinking` or `tool_use` block), `content_block_delta` (`text_delta`:
//! answer text, `thinking_delta`: reasoning, `input_json_delta`: a tool call's arguments;
//! each one an event), `content_block_stop`, `message_delta` (`delta.stop_reason`:
//! `max_tokens` is read as `length`, `end_turn`/`stop_sequence` as `stop`, `tool_use`;
//! `usage.output_tokens`, the final count), `message_stop` (complete), `ping` (ignored),
//! `error` (`error.message`). vLLM sends no delta for a token that ends inside a UTF-8
//! character (16 tokens came as 15 deltas in the capture), so counts come from the final
//! usage (`final_usage`), spread over the deltas by their text as for OpenAI.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Decoder, Dialect, Prompt, ReqCtx, error_object_message, settle_counts,
    settle_single, to_u32,
};

/// The `anthropic-version` header sent with every request.
pub(crate) const ANTHROPIC_VERSION: &str = "2023-06-01";

pub(crate) struct Anthropic;

impl Dialect for Anthropic {
    fn path(&self, _stream: bool) -> &'static str {
        "/v1/messages"
    }

    fn body(&self, prompt: &Prompt, max_tokens: u32, o: &BodyOptions) -> Value {
        body(prompt, max_tokens, o)
    }

    fn stream_decoder(&self, _ctx: &ReqCtx) -> Box<dyn Decoder> {
        Box::new(StreamDecoder::default())
    }

    fn parse_answer(&self, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
        parse_answer(body, t_ns, ctx, acc)
    }

    fn has_ignore_eos(&self) -> bool {
        false
    }
}

fn body(prompt: &Prompt, max_tokens: u32, o: &BodyOptions) -> Value {
    let mut b = serde_json::Map::new();
    if let Some(m) = &o.model {
        b.insert("model".into(), json!(m));
    }
    b.insert("max_tokens".into(), json!(max_tokens));
    match prompt.messages {
        Some(messages) => {
            let system: Vec<&str> = messages
                .iter()
                .filter(|m| m.role == "system")
                .map(|m| m.content.as_str())
                .collect();
            if !system.is_empty() {
                b.insert("system".into(), json!(system.join("\n\n")));
            }
            let turns: Vec<Value> = messages
                .iter()
                .filter(|m| m.role != "system")
                .map(|m| json!({"role": m.role, "content": m.content}))
                .collect();
            b.insert("messages".into(), Value::Array(turns));
        }
        None => {
            b.insert(
                "messages".into(),
                json!([{"role": "user", "content": prompt.text}]),
            );
        }
    }
    b.insert("stream".into(), json!(o.stream));
    Value::Object(b)
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

impl Usage {
    fn apply(&self, acc: &mut Accum) {
        if let Some(p) = self.input_tokens {
            acc.server_prompt_tokens = to_u32(Some(p));
        }
        if let Some(c) = self.cache_read_input_tokens {
            acc.server_cached_tokens = to_u32(Some(c));
        }
        if let Some(o) = self.output_tokens {
            acc.server_output_tokens = to_u32(Some(o));
        }
    }
}

#[derive(Deserialize, Default)]
struct Delta<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    partial_json: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    message: Option<Message>,
    #[serde(default)]
    error: Option<Value>,
    /// The content block an event belongs to.
    #[serde(default)]
    index: Option<u64>,
    /// The block a `content_block_start` opens.
    #[serde(default)]
    content_block: Option<Value>,
}

/// The record's finish reason for an Anthropic `stop_reason`.
fn finish_reason(stop: &str) -> String {
    match stop {
        "max_tokens" => "length",
        "end_turn" | "stop_sequence" => "stop",
        other => other,
    }
    .to_string()
}

#[derive(Default)]
pub(crate) struct StreamDecoder {
    done: bool,
}

impl StreamDecoder {
    fn delta(d: &Delta<'_>, block: u64, t_ns: u64, acc: &mut Accum) {
        let len = |t: &Option<Cow<'_, str>>| t.as_ref().map_or(0, |t| t.len());
        let (answer, reasoning) = match d.kind.as_deref() {
            Some("thinking_delta") => (0, len(&d.thinking)),
            Some("input_json_delta") => (len(&d.partial_json), 0),
            // A signature closes a thinking block: no token.
            Some("signature_delta") => return,
            _ => (len(&d.text), 0),
        };
        if d.kind.as_deref() == Some("input_json_delta") {
            let args = d.partial_json.as_deref().unwrap_or("");
            acc.tools.arguments(block, args, acc.events.len(), t_ns);
        }
        acc.reasoning
            .event(acc.events.len(), t_ns, reasoning, answer);
        acc.push(t_ns, 0, answer + reasoning);
    }
}

impl Decoder for StreamDecoder {
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        if self.done {
            return false;
        }
        let ev: Event = match serde_json::from_slice(data) {
            Ok(e) => e,
            Err(e) => {
                acc.fail_protocol(format_args!("malformed event: {e}"));
                return false;
            }
        };
        match ev.kind.as_ref() {
            "message_start" => {
                if let Some(u) = ev.message.and_then(|m| m.usage) {
                    // Its output count is the tokens so far (0), not a total.
                    Usage {
                        output_tokens: None,
                        ..u
                    }
                    .apply(acc);
                }
            }
            "content_block_start" => {
                let kind = ev
                    .content_block
                    .as_ref()
                    .and_then(|b| b.get("type")?.as_str());
                if kind == Some("tool_use") {
                    acc.tools.start(ev.index.unwrap_or(0));
                }
            }
            "content_block_delta" => {
                if let Some(d) = &ev.delta {
                    Self::delta(d, ev.index.unwrap_or(0), t_ns, acc);
                }
            }
            "message_delta" => {
                if let Some(stop) = ev.delta.as_ref().and_then(|d| d.stop_reason.as_deref()) {
                    acc.finish_reason = Some(finish_reason(stop));
                }
                if let Some(u) = ev.usage {
                    u.apply(acc);
                }
            }
            "message_stop" => {
                self.done = true;
                acc.complete = true;
                return false;
            }
            "error" => {
                acc.server_error = Some(error_object_message(&ev.error.unwrap_or(Value::Null)));
                return false;
            }
            // ping, content_block_stop, and event types added later.
            _ => {}
        }
        true
    }

    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, _eof: bool) {
        settle_counts(acc, ctx);
    }
}

#[derive(Deserialize)]
struct Block<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    thinking: Option<Cow<'a, str>>,
    #[serde(default)]
    input: Option<Value>,
}

#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow, default, rename = "type")]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Vec<Block<'a>>>,
    #[serde(borrow, default)]
    stop_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
}

pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    let a: Answer = match serde_json::from_slice(body) {
        Ok(a) => a,
        Err(e) => {
            acc.fail_protocol(format_args!("malformed answer: {e}"));
            return;
        }
    };
    if a.kind.as_deref() == Some("error") || a.error.is_some() {
        acc.server_error = Some(error_object_message(&a.error.unwrap_or(Value::Null)));
        return;
    }
    let Some(content) = a.content else {
        acc.fail_protocol("answer without content");
        return;
    };
    acc.finish_reason = a.stop_reason.as_deref().map(finish_reason);
    if let Some(u) = a.usage {
        u.apply(acc);
    }
    acc.complete = true;
    settle_single(acc, ctx, t_ns);
    let (mut answer, mut reasoning) = (0, 0);
    for b in &content {
        match b.kind.as_ref() {
            "thinking" => reasoning += b.thinking.as_ref().map_or(0, |t| t.len()),
            "tool_use" => {
                answer += b.input.as_ref().map_or(0, |i| i.to_string().len());
                acc.tools.whole_value();
            }
            _ => answer += b.text.as_ref().map_or(0, |t| t.len()),
        }
    }
    acc.reasoning.whole_answer(reasoning, answer);
}
