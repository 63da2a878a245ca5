//! LightLLM: `POST /generate_stream` (SSE) and `POST /generate`.
//!
//! Request: `{"inputs": prompt, "parameters": {"do_sample": false, "ignore_eos",
//! "max_new_tokens"}}` (both fields required by the server).
//!
//! Stream: one `data:{"token":{..},..}` event per token (counted `per_event`), no end
//! marker: the body simply closes. Under load LightLLM may drop events (it keeps only
//! the latest), so the event count is a lower bound; current versions add
//! `count_output_tokens` and `finish_reason`, recorded as the server's count. Errors after
//! the 200 cut the connection: the partial data is kept and the request is a
//! `stream_error`.
//!
//! Non-streamed: `{"generated_text": ["..."]}` without counts: with `ignore_eos` the
//! total is `max_tokens` by the API's contract (`assumed_max_tokens`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::adapter::{Accum, BodyOptions, Decoder, Dialect, ReqCtx, to_u32};
use crate::tgi::{TokenEvent, apply_token_event};

/// The LightLLM dialect.
pub(crate) struct Lightllm;

impl Dialect for Lightllm {
    fn path(&self, stream: bool) -> &'static str {
        if stream {
            "/generate_stream"
        } else {
            "/generate"
        }
    }

    fn body(&self, prompt: &str, _: Option<&[u32]>, max: u32, o: &BodyOptions) -> Value {
        body(prompt, max, o)
    }

    fn stream_decoder(&self, _ctx: &ReqCtx) -> Box<dyn Decoder> {
        Box::new(StreamDecoder)
    }

    fn parse_answer(&self, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
        parse_answer(body, t_ns, ctx, acc)
    }
}

pub(crate) fn body(prompt: &str, max_tokens: u32, opts: &BodyOptions) -> serde_json::Value {
    json!({
        "inputs": prompt,
        "parameters": {
            "do_sample": false,
            "ignore_eos": opts.ignore_eos,
            "max_new_tokens": max_tokens,
        },
    })
}

#[derive(Default)]
pub(crate) struct StreamDecoder;

impl Decoder for StreamDecoder {
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        match TokenEvent::decode(data) {
            Ok(ev) => apply_token_event(ev, t_ns, acc),
            Err(e) => {
                acc.fail_protocol(format_args!("malformed LightLLM event: {e}"));
                false
            }
        }
    }

    fn finish(&mut self, acc: &mut Accum, _ctx: &ReqCtx, eof: bool) {
        // No end marker: a clean end of body is the end of the response.
        if eof && acc.server_error.is_none() {
            if acc.events.is_empty() {
                acc.fail_protocol("stream ended without any token event");
            } else {
                acc.complete = true;
            }
        }
        acc.keep_counts("per_event");
    }
}

#[derive(Deserialize)]
struct Answer<'a> {
    generated_text: Option<serde_json::Value>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    count_output_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
}

pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    match serde_json::from_slice::<Answer>(body) {
        Ok(a) => {
            let text_ok = match &a.generated_text {
                Some(serde_json::Value::Array(v)) => v.first().is_some_and(|t| t.is_string()),
                Some(serde_json::Value::String(_)) => true,
                _ => false,
            };
            if !text_ok {
                acc.fail_protocol("LightLLM answer without generated_text");
                return;
            }
            acc.finish_reason = a.finish_reason.map(Cow::into_owned);
            acc.server_output_tokens = to_u32(a.count_output_tokens);
            acc.server_prompt_tokens = to_u32(a.prompt_tokens);
            acc.complete = true;
            crate::adapter::settle_single(acc, ctx, t_ns);
        }
        Err(e) => acc.fail_protocol(format_args!("malformed LightLLM answer: {e}")),
    }
}
