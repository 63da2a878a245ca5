//! The typed-event streams vLLM's OpenAI server writes beside chat completions, and
//! their whole answers: the Responses API (`/v1/responses`) and the Anthropic Messages
//! API (`/v1/messages`). Shapes as captured from vLLM 0.32
//! (`replayer/tests/fixtures/vllm-0.32/responses_stream.body`,
//! `messages_stream.body`):
//!
//! - each event is `event: TYPE\ndata: {json}\n\n`, the data naming its `type` too;
//! - Responses: `response.created`, `response.in_progress`, `response.output_item.added`,
//!   `response.content_part.added`, one `response.output_text.delta` per token with text,
//!   then `response.output_text.done`, `response.content_part.done`,
//!   `response.output_item.done` and `response.completed` with the whole response and its
//!   `usage` (`status` `incomplete` with `incomplete_details.reason = max_output_tokens`
//!   when the length limit ended it); every event has a `sequence_number`;
//! - Messages: `message_start` (input tokens), `content_block_start`, one
//!   `content_block_delta` (`text_delta`) per token with text, `content_block_stop`,
//!   `message_delta` (`stop_reason` `max_tokens` or `end_turn`, the usage) and
//!   `message_stop`.
//!
//! Like vLLM, a token without text (the EOS) has no delta: the usage counts it.

use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use crate::dialect::openai_request::Kind;
use crate::dialect::respond::push_json_str;
use crate::dialect::stream::Framer;
use crate::dialect::tokens::Tok;

/// What the closing events and a whole answer say.
#[derive(Debug, Clone)]
pub(crate) struct Summary {
    pub id: String,
    pub model: String,
    pub created: u64,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// Prompt tokens found in the prefix cache, when the engine has one.
    pub cached: Option<u32>,
}

impl Summary {
    fn responses_usage(&self, output: u32) -> Value {
        json!({
            "input_tokens": self.prompt_tokens,
            "input_tokens_details": {"cached_tokens": self.cached.unwrap_or(0)},
            "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": self.prompt_tokens + output,
        })
    }

    fn messages_usage(&self, output: u32) -> Value {
        json!({
            "input_tokens": self.prompt_tokens,
            "output_tokens": output,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": self.cached.unwrap_or(0),
        })
    }

    /// The whole Responses object; `text`: the answer, `output`: its tokens, `eos`: it
    /// stopped on EOS (else at the length limit).
    pub fn response(&self, text: &str, output: u32, eos: bool, status_done: bool) -> Value {
        let (status, incomplete) = if !status_done {
            ("in_progress", Value::Null)
        } else if eos {
            ("completed", Value::Null)
        } else {
            ("incomplete", json!({"reason": "max_output_tokens"}))
        };
        let output_items = if status_done {
            json!([self.message_item(text, "completed")])
        } else {
            json!([])
        };
        json!({
            "id": format!("resp_{}", self.id), "created_at": self.created,
            "incomplete_details": incomplete, "instructions": null, "metadata": null,
            "model": self.model, "object": "response", "output": output_items,
            "parallel_tool_calls": true, "temperature": 1.0, "tool_choice": "none", "tools": [],
            "top_p": 1.0, "background": false, "max_output_tokens": self.max_tokens,
            "status": status,
            "usage": if status_done { self.responses_usage(output) } else { Value::Null },
        })
    }

    fn message_item(&self, text: &str, status: &str) -> Value {
        json!({
            "id": format!("msg_{}", self.id),
            "content": [{"annotations": [], "text": text, "type": "output_text", "logprobs": null}],
            "role": "assistant", "status": status, "type": "message",
        })
    }

    /// The whole Messages answer.
    pub fn message(&self, text: &str, output: u32, eos: bool) -> Value {
        json!({
            "id": format!("chatcmpl-{}", self.id), "type": "message", "role": "assistant",
            "content": [{"type": "text", "text": text}], "model": self.model,
            "stop_reason": stop_reason(eos), "stop_sequence": null,
            "usage": self.messages_usage(output),
        })
    }
}

fn stop_reason(eos: bool) -> &'static str {
    if eos { "end_turn" } else { "max_tokens" }
}

/// One `event: TYPE\ndata: JSON\n\n`.
fn event(out: &mut BytesMut, kind: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(serde_json::to_string(data).expect("json").as_bytes());
    out.extend_from_slice(b"\n\n");
}

/// The framer of a Responses or Messages stream.
pub(crate) struct TypedFramer {
    kind: Kind,
    summary: Summary,
    text: String,
    sequence: u64,
}

impl TypedFramer {
    pub fn new(kind: Kind, summary: Summary) -> TypedFramer {
        TypedFramer {
            kind,
            summary,
            text: String::new(),
            sequence: 0,
        }
    }

    /// A Responses event: `data` with its `sequence_number` and `type` added.
    fn responses_event(&mut self, out: &mut BytesMut, kind: &str, mut data: Value) {
        data["sequence_number"] = json!(self.sequence);
        data["type"] = json!(kind);
        self.sequence += 1;
        event(out, kind, &data);
    }

    /// What is sent before the first token.
    pub fn opening(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        let item = format!("msg_{}", self.summary.id);
        match self.kind {
            Kind::Messages => {
                let start = json!({"type": "message_start", "message": {
                    "id": format!("chatcmpl-{}", self.summary.id), "type": "message",
                    "role": "assistant", "content": [], "model": self.summary.model,
                    "stop_reason": null, "stop_sequence": null,
                    "usage": {"input_tokens": self.summary.prompt_tokens, "output_tokens": 0}}});
                event(&mut out, "message_start", &start);
                let block = json!({"type": "content_block_start",
                    "content_block": {"type": "text", "text": ""}, "index": 0});
                event(&mut out, "content_block_start", &block);
            }
            _ => {
                let r = self.summary.response("", 0, false, false);
                self.responses_event(&mut out, "response.created", json!({"response": r}));
                self.responses_event(&mut out, "response.in_progress", json!({"response": r}));
                let added = json!({"item": {"id": item, "content": [], "role": "assistant",
                    "status": "in_progress", "type": "message"}, "output_index": 0});
                self.responses_event(&mut out, "response.output_item.added", added);
                let part = json!({"content_index": 0, "item_id": item, "output_index": 0,
                    "part": {"annotations": [], "text": "", "type": "output_text", "logprobs": null}});
                self.responses_event(&mut out, "response.content_part.added", part);
            }
        }
        out.freeze()
    }

    fn closing(&mut self, out: &mut BytesMut, output: u32, eos: bool) {
        let item = format!("msg_{}", self.summary.id);
        match self.kind {
            Kind::Messages => {
                event(
                    out,
                    "content_block_stop",
                    &json!({"type": "content_block_stop", "index": 0}),
                );
                let delta = json!({"type": "message_delta",
                    "delta": {"stop_reason": stop_reason(eos), "stop_sequence": null},
                    "usage": self.summary.messages_usage(output)});
                event(out, "message_delta", &delta);
                event(out, "message_stop", &json!({"type": "message_stop"}));
            }
            _ => {
                let text = std::mem::take(&mut self.text);
                let done = json!({"content_index": 0, "item_id": item, "logprobs": [],
                    "output_index": 0, "text": text});
                self.responses_event(out, "response.output_text.done", done);
                let part = json!({"content_index": 0, "item_id": item, "output_index": 0,
                    "part": {"annotations": [], "text": text, "type": "output_text", "logprobs": null}});
                self.responses_event(out, "response.content_part.done", part);
                let item_done = json!({"item": self.summary.message_item(&text, "completed"),
                    "output_index": 0});
                self.responses_event(out, "response.output_item.done", item_done);
                let r = self.summary.response(&text, output, eos, true);
                self.responses_event(out, "response.completed", json!({"response": r}));
            }
        }
    }
}

impl Framer for TypedFramer {
    fn token(&mut self, tok: &Tok, out: &mut BytesMut) {
        if let Some(c) = &mut self.summary.cached {
            *c = tok.cached;
        }
        let (_, text) = tok.text();
        if !text.is_empty() {
            match self.kind {
                Kind::Messages => {
                    out.extend_from_slice(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":");
                    push_json_str(out, text);
                    out.extend_from_slice(b"},\"index\":0}\n\n");
                }
                _ => {
                    self.text.push_str(text);
                    let item = format!("msg_{}", self.summary.id);
                    let delta = json!({"content_index": 0, "delta": text, "item_id": item,
                        "logprobs": [], "output_index": 0});
                    self.responses_event(out, "response.output_text.delta", delta);
                }
            }
        }
        if tok.last {
            self.closing(out, tok.index + 1, tok.eos);
        }
    }
}
