//! The OpenAI Responses API: `POST /v1/responses` (OpenAI, and vLLM >= 0.10 beside chat
//! completions).
//!
//! Request: `model` (when given), `input` (the trace's chat as a list of `{role,
//! content}` messages, else the prompt text), `max_output_tokens`, `stream`. No
//! `ignore_eos`: the API has none (vLLM ignores unknown fields).
//!
//! Stream (SSE with `event:` lines; every data object names its `type`): the events that
//! carry output are `response.output_text.delta` (answer text), `response.reasoning_text.delta`
//! and `response.reasoning_summary_text.delta` (reasoning) and
//! `response.function_call_arguments.delta` (a tool call's arguments), each one an
//! event; `response.completed` and `response.incomplete` end it with the `response`
//! object, whose `usage` (`input_tokens`, `input_tokens_details.cached_tokens`,
//! `output_tokens`, `output_tokens_details.reasoning_tokens`) gives the counts and whose
//! `status` the finish reason (`incomplete` with `incomplete_details.reason =
//! max_output_tokens` is `length`, `completed` is `stop`); `response.failed` and `error`
//! are the server's errors. Every other event (created, in_progress, output_item and
//! content_part added/done, the `.done` of a text) carries no new token. vLLM sends no
//! delta for a token that ends inside a UTF-8 character (16 tokens came as 13 deltas in
//! the capture), so counts come from the final usage (`final_usage`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Decoder, Dialect, Prompt, ReqCtx, error_object_message, settle_counts,
    settle_single, to_u32,
};

pub(crate) struct Responses;

impl Dialect for Responses {
    fn path(&self, _stream: bool) -> &'static str {
        "/v1/responses"
    }

    fn body(&self, prompt: &Prompt, max_tokens: u32, o: &BodyOptions) -> Value {
        let mut b = serde_json::Map::new();
        if let Some(m) = &o.model {
            b.insert("model".into(), json!(m));
        }
        let input = match prompt.messages {
            Some(m) => json!(m),
            None => json!(prompt.text),
        };
        b.insert("input".into(), input);
        b.insert("max_output_tokens".into(), json!(max_tokens));
        b.insert("stream".into(), json!(o.stream));
        Value::Object(b)
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

#[derive(Deserialize, Default, Clone, Copy)]
struct Details {
    #[serde(default)]
    cached_tokens: Option<u64>,
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct Usage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    input_tokens_details: Option<Details>,
    #[serde(default)]
    output_tokens_details: Option<Details>,
}

#[derive(Deserialize)]
struct Incomplete<'a> {
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
}

/// A `response` object: the whole answer, or the one the last stream event carries.
#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    incomplete_details: Option<Incomplete<'a>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default)]
    output: Option<Vec<Value>>,
}

impl Response<'_> {
    /// Status, finish reason and counts into `acc`; an error when the response failed.
    fn apply(&self, acc: &mut Accum) {
        if let Some(e) = self.error.as_ref().filter(|e| !e.is_null()) {
            acc.server_error = Some(error_object_message(e));
        }
        acc.finish_reason = match self.status.as_deref() {
            Some("completed") => Some("stop".into()),
            Some("incomplete") => Some(
                match self
                    .incomplete_details
                    .as_ref()
                    .and_then(|d| d.reason.as_deref())
                {
                    Some("max_output_tokens") => "length".into(),
                    Some(other) => other.to_string(),
                    None => "incomplete".into(),
                },
            ),
            Some(other) => Some(other.to_string()),
            None => acc.finish_reason.take(),
        };
        if let Some(u) = self.usage {
            acc.server_prompt_tokens = to_u32(u.input_tokens);
            acc.server_output_tokens = to_u32(u.output_tokens);
            acc.server_cached_tokens = to_u32(u.input_tokens_details.and_then(|d| d.cached_tokens));
            acc.reasoning.server_tokens =
                to_u32(u.output_tokens_details.and_then(|d| d.reasoning_tokens));
        }
    }
}

#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    delta: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    response: Option<Response<'a>>,
    #[serde(default)]
    message: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
    /// The item an `output_item.added` event opens.
    #[serde(default)]
    item: Option<Value>,
    /// Which output item a delta belongs to.
    #[serde(default)]
    output_index: Option<u64>,
}

#[derive(Default)]
pub(crate) struct StreamDecoder {
    done: bool,
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
        let len = ev.delta.as_ref().map_or(0, |d| d.len());
        let key = ev.output_index.unwrap_or(0);
        match ev.kind.as_ref() {
            "response.output_item.added" => {
                let kind = ev.item.as_ref().and_then(|i| i.get("type")?.as_str());
                if kind == Some("function_call") {
                    acc.tools.start(key);
                }
            }
            "response.function_call_arguments.delta" => {
                let args = ev.delta.as_deref().unwrap_or("");
                acc.tools.arguments(key, args, acc.events.len(), t_ns);
                acc.reasoning.event(acc.events.len(), t_ns, 0, len);
                acc.push(t_ns, 0, len);
            }
            "response.output_text.delta" => {
                acc.reasoning.event(acc.events.len(), t_ns, 0, len);
                acc.push(t_ns, 0, len);
            }
            "response.reasoning_text.delta" | "response.reasoning_summary_text.delta" => {
                acc.reasoning.event(acc.events.len(), t_ns, len, 0);
                acc.push(t_ns, 0, len);
            }
            "response.completed" | "response.incomplete" | "response.failed" => {
                if let Some(r) = &ev.response {
                    r.apply(acc);
                }
                if ev.kind == "response.failed" && acc.server_error.is_none() {
                    acc.server_error = Some("response.failed".into());
                }
                self.done = true;
                acc.complete = acc.server_error.is_none();
                return false;
            }
            "error" => {
                let e = ev
                    .error
                    .or(ev.message.map(|m| json!({ "message": m })))
                    .unwrap_or(Value::Null);
                acc.server_error = Some(error_object_message(&e));
                return false;
            }
            _ => {}
        }
        true
    }

    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, _eof: bool) {
        settle_counts(acc, ctx);
    }
}

/// Text bytes of a whole answer's output items: (answer and tool arguments, reasoning).
fn output_text_len(output: &[Value]) -> (usize, usize) {
    let (mut answer, mut reasoning) = (0, 0);
    let text = |v: &Value| v.get("text").and_then(Value::as_str).map_or(0, str::len);
    for item in output {
        match item.get("type").and_then(Value::as_str) {
            Some("message") => {
                for part in item
                    .get("content")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    answer += text(part);
                }
            }
            Some("function_call") => {
                answer += item
                    .get("arguments")
                    .and_then(Value::as_str)
                    .map_or(0, str::len);
            }
            Some("reasoning") => {
                for key in ["content", "summary"] {
                    for part in item
                        .get(key)
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                    {
                        reasoning += text(part);
                    }
                }
            }
            _ => {}
        }
    }
    (answer, reasoning)
}

pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    let r: Response = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            acc.fail_protocol(format_args!("malformed answer: {e}"));
            return;
        }
    };
    r.apply(acc);
    if acc.server_error.is_some() {
        return;
    }
    let Some(output) = &r.output else {
        acc.fail_protocol("answer without output");
        return;
    };
    acc.complete = true;
    settle_single(acc, ctx, t_ns);
    let (answer, reasoning) = output_text_len(output);
    acc.reasoning.whole_answer(reasoning, answer);
    for item in output {
        if item.get("type").and_then(Value::as_str) == Some("function_call") {
            let args = item.get("arguments").and_then(Value::as_str).unwrap_or("");
            acc.tools.whole_text(args);
        }
    }
}
