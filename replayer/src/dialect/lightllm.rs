//! LightLLM: `POST /generate_stream` (SSE) and `POST /generate`.
//!
//! Request: `{"inputs": prompt, "parameters": {"do_sample": false, "ignore_eos",
//! "max_new_tokens"}}` (both fields required by the server).
//!
//! Checked against `lightllm/server/api_server.py` at 718e6d6 (Aug 2023, the original
//! benchmark's) and the current `api_lightllm.py`.
//!
//! Stream: one `data:{"token":{..},..}` event per token (counted `per_event`), no end
//! marker: the body simply closes. Under load the 2023 server drops events: its manager
//! keeps only the latest undelivered token of a request, so a token (and its text) is
//! lost when two are made before the stream reads one. With `ignore_eos` the API still
//! generates exactly `max_new_tokens`: a clean end with fewer events is counted by that
//! contract (`assumed_max_tokens`, split evenly) and flagged `events_lost`; without it
//! the event count is a lower bound. Current LightLLM puts cumulative
//! `count_output_tokens` and `prompt_tokens` inside `token` (each event then counts its
//! increase, `usage_delta`, exact whatever was lost) and `finished`/`finish_reason` at
//! the top level; a top-level `count_output_tokens` is taken as the server's total.
//! Errors after the 200 cut the connection: the partial data is kept and the request
//! is a `stream_error`.
//!
//! Non-streamed: `{"generated_text": ["..."]}` without counts: with `ignore_eos` the
//! total is `max_tokens` by the API's contract (`assumed_max_tokens`).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Cumulative, Decoder, Dialect, Prompt, ReqCtx, to_u32,
};
use crate::dialect::scan::FastPath;
use crate::dialect::tgi::{TokenEvent, apply_token_event};

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

    fn body(&self, prompt: &Prompt, max: u32, o: &BodyOptions) -> Value {
        body(prompt.text, max, o)
    }

    fn stream_decoder(&self, _ctx: &ReqCtx) -> Box<dyn Decoder> {
        Box::new(StreamDecoder::default())
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
pub(crate) struct StreamDecoder {
    /// Newer servers' cumulative `token.count_output_tokens`.
    counter: Cumulative,
}

impl Decoder for StreamDecoder {
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        let mut ev = match TokenEvent::facts(data) {
            Ok(ev) => ev,
            Err(e) => {
                acc.fail_protocol(format_args!("malformed LightLLM event: {e}"));
                return false;
            }
        };
        let token = ev.token.take();
        if !apply_token_event(ev, t_ns, acc) {
            return false;
        }
        if let Some(tok) = token {
            if let Some(p) = tok.prompt_tokens {
                acc.server_prompt_tokens = to_u32(Some(p));
            }
            match tok.count_output_tokens {
                Some(c) => self.counter.apply(acc, t_ns, Some(c), 0),
                None => acc.push(t_ns, 1, 0),
            }
        }
        true
    }

    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, eof: bool) {
        // No end marker: a clean end of body is the end of the response.
        if eof && acc.server_error.is_none() {
            if acc.events.is_empty() {
                acc.fail_protocol("stream ended without any token event");
            } else {
                acc.complete = true;
            }
        }
        settle(acc, ctx);
    }
}

/// Counts of a LightLLM stream (see the module docs).
fn settle(acc: &mut Accum, ctx: &ReqCtx) {
    let n = acc.events.len();
    if n > 0 && acc.counted_events == n {
        acc.keep_counts("usage_delta");
        return;
    }
    if acc.complete && acc.server_error.is_none() {
        let total = match acc.server_output_tokens {
            Some(total) => Some((total, "final_usage")),
            None if ctx.ignore_eos_sent => Some((ctx.max_tokens, "assumed_max_tokens")),
            None => None,
        };
        if let Some((total, method)) = total.filter(|&(t, _)| t as usize > n) {
            acc.spread_total(total, method);
            acc.flags.push("events_lost");
            return;
        }
    }
    acc.keep_counts("per_event");
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
            crate::dialect::adapter::settle_single(acc, ctx, t_ns);
        }
        Err(e) => acc.fail_protocol(format_args!("malformed LightLLM answer: {e}")),
    }
}
