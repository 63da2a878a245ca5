//! vLLM's legacy `api_server` (`python -m vllm.entrypoints.api_server`): `POST /generate`.
//!
//! Request: `{"prompt", "stream", "max_tokens", "ignore_eos", "n": 1}` (every key besides
//! prompt and stream goes to SamplingParams).
//!
//! Checked against `vllm/entrypoints/api_server.py` at 28873a2 (v0.1.4, the original
//! benchmark's) and from 9e37266 (2024-11) on.
//!
//! Answer: `{"text": ["<prompt><generated>"]}`: the text repeats the prompt and carries
//! no token count and no finish reason. Streamed, the body is a series of such objects,
//! each cumulative and followed by a NUL byte (a newline from 9e37266 on: both are
//! accepted). An object may cover several tokens (the engine keeps only the latest
//! output of a request, so objects are skipped under load): events are not tokens. With
//! `ignore_eos` the API generates exactly `max_tokens`, which is split across events by
//! the new text bytes of each (`assumed_max_tokens`); without it, one token per event is
//! assumed and recorded as `event_count`.
//!
//! The server caps output at `max_model_len - prompt + 1` tokens (it stops a sequence
//! once longer than `max_model_len`) instead of refusing the request: with
//! `--max-model-len` the assumed count is capped likewise and the record flagged
//! `capped_at_max_model_len` (the legacy server has no endpoint to ask its limit).
//!
//! An answer whose text is the prompt alone (200) is what the server sends when it
//! generated nothing: a prompt over its limits (ignored by the scheduler) or a first
//! token that is EOS. It is a 0-token answer (`no_output`, flagged `prompt_only`), not
//! a server error: the server worked as designed.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Decoder, Dialect, EventFraming, Prompt, ReqCtx, settle_counts,
};

/// The vLLM legacy `api_server` dialect.
pub(crate) struct Vllm;

impl Dialect for Vllm {
    fn path(&self, _stream: bool) -> &'static str {
        "/generate"
    }

    fn body(&self, prompt: &Prompt, max: u32, o: &BodyOptions) -> Value {
        body(prompt.text, max, o)
    }

    fn framing(&self) -> EventFraming {
        EventFraming::Nul
    }

    fn stream_decoder(&self, ctx: &ReqCtx) -> Box<dyn Decoder> {
        Box::new(StreamDecoder::new(ctx))
    }

    fn parse_answer(&self, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
        parse_answer(body, t_ns, ctx, acc)
    }

    /// vLLM 0.1.x stops a sequence once prompt + output > max_model_len.
    fn output_cap(&self, max_model_len: u32, prompt_tokens: u32) -> Option<u32> {
        Some(
            max_model_len
                .saturating_sub(prompt_tokens)
                .saturating_add(1),
        )
    }
}

pub(crate) fn body(prompt: &str, max_tokens: u32, opts: &BodyOptions) -> serde_json::Value {
    json!({
        "prompt": prompt,
        "stream": opts.stream,
        "max_tokens": max_tokens,
        "ignore_eos": opts.ignore_eos,
        "n": 1,
    })
}

#[derive(Deserialize)]
struct Answer {
    text: Vec<String>,
}

fn text_len(data: &[u8]) -> Result<usize, String> {
    let a: Answer = serde_json::from_slice(data).map_err(|e| e.to_string())?;
    a.text
        .first()
        .map(|t| t.len())
        .ok_or_else(|| "empty `text` list".to_string())
}

/// The answer held the prompt alone: 0 tokens, flagged (see the module docs).
fn no_output(acc: &mut Accum) {
    acc.events.tokens.iter_mut().for_each(|t| *t = 0);
    acc.method = Some("no_output");
    acc.output_tokens = Some(0);
    acc.flags.push("prompt_only");
}

pub(crate) struct StreamDecoder {
    /// Cumulative text length so far (the prompt's at first).
    seen: usize,
    prompt_bytes: usize,
}

impl StreamDecoder {
    pub fn new(ctx: &ReqCtx) -> Self {
        StreamDecoder {
            seen: ctx.prompt_bytes,
            prompt_bytes: ctx.prompt_bytes,
        }
    }
}

impl Decoder for StreamDecoder {
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        match text_len(data) {
            Ok(len) => {
                let new = len.saturating_sub(self.seen);
                self.seen = self.seen.max(len);
                acc.push(t_ns, 0, new);
                true
            }
            Err(e) => {
                acc.fail_protocol(format_args!("malformed vLLM object: {e}"));
                false
            }
        }
    }

    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, eof: bool) {
        if eof && acc.protocol_error.is_none() {
            acc.complete = true;
            if self.seen <= self.prompt_bytes {
                no_output(acc);
                return;
            }
        }
        settle_counts(acc, ctx);
    }
}

pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    match text_len(body) {
        Ok(len) => {
            acc.complete = true;
            if len <= ctx.prompt_bytes {
                acc.push(t_ns, 0, 0);
                no_output(acc);
                return;
            }
            crate::dialect::adapter::settle_single(acc, ctx, t_ns);
        }
        Err(e) => acc.fail_protocol(format_args!("malformed vLLM answer: {e}")),
    }
}
