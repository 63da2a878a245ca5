//! SGLang's native API: `POST /generate` (streamed or not).
//!
//! Checked against SGLang's source (`python/sglang/srt/entrypoints/http_server.py`
//! `generate_request` at 0025436 and `managers/tokenizer_manager.py`
//! `_handle_batch_output` at 001067f, the 0.5 series; the same shapes since 0.3):
//!
//! * Request: `{"text": prompt, "sampling_params": {"max_new_tokens", "ignore_eos"},
//!   "stream"}`; with `--prompt-token-ids`, `input_ids` instead of `text` (SGLang takes
//!   either). SGLang honours `ignore_eos`.
//! * Stream: `data: <json>\n\n` per output step (`--stream-interval` tokens, 1 by
//!   default), then `data: [DONE]\n\n`. Each object is
//!   `{"text", "output_ids", "meta_info": {"id", "finish_reason", "prompt_tokens",
//!   "completion_tokens", "cached_tokens", ..}}`: `text` and `output_ids` cumulative
//!   (incremental with `--incremental-streaming-output`), `completion_tokens`
//!   cumulative, `finish_reason` null until the last object, then an object
//!   `{"type": "length"|"stop"|"abort", ..}`. Counts: each event gets the increase of
//!   `completion_tokens` (`usage_delta`, exact however many tokens an event covers).
//! * Errors: before the stream, 400 `{"error": {"message"}}` (a `ValueError`: prompt
//!   over the context length, bad sampling parameters) or 400
//!   `{"object": "error", "message", ..}` (request validation); inside a 200 stream,
//!   `data: {"error": {"message"}}` then `[DONE]`; an aborted request ends with
//!   `finish_reason.type = "abort"` and its `message` (recorded as a server error).
//! * Not streamed: one such object (`application/json`) with the totals.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Cumulative, Decoder, Dialect, Prompt, ReqCtx, bounded, json_error_message,
    to_u32,
};
use crate::dialect::scan::{FastPath, Miss, Scan, Scanner, first_time};

/// The SGLang native dialect.
pub(crate) struct Sglang;

impl Dialect for Sglang {
    fn path(&self, _stream: bool) -> &'static str {
        "/generate"
    }

    fn body(&self, prompt: &Prompt, max: u32, o: &BodyOptions) -> Value {
        body(prompt.text, prompt.token_ids, max, o)
    }

    fn stream_decoder(&self, _ctx: &ReqCtx) -> Box<dyn Decoder> {
        Box::new(StreamDecoder::default())
    }

    fn parse_answer(&self, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
        parse_answer(body, t_ns, ctx, acc)
    }

    fn accepts_token_ids(&self) -> bool {
        true
    }
}

pub(crate) fn body(
    prompt: &str,
    token_ids: Option<&[u32]>,
    max_tokens: u32,
    opts: &BodyOptions,
) -> Value {
    let sampling = json!({"max_new_tokens": max_tokens, "ignore_eos": opts.ignore_eos});
    match token_ids {
        Some(ids) => json!({"input_ids": ids, "sampling_params": sampling, "stream": opts.stream}),
        None => json!({"text": prompt, "sampling_params": sampling, "stream": opts.stream}),
    }
}

/// `meta_info.finish_reason`: an object with a `type` (SGLang >= 0.1.14), or a plain
/// string (older releases).
#[derive(Deserialize)]
#[serde(untagged)]
enum Finish<'a> {
    Object {
        #[serde(borrow, rename = "type")]
        kind: Cow<'a, str>,
        #[serde(default)]
        message: Option<Value>,
    },
    Plain(#[serde(borrow)] Cow<'a, str>),
}

#[derive(Deserialize, Default)]
struct MetaInfo<'a> {
    #[serde(borrow, default)]
    finish_reason: Option<Finish<'a>>,
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    cached_tokens: Option<u64>,
}

/// One object of the stream (or the whole answer).
#[derive(Deserialize)]
struct Output<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    meta_info: Option<MetaInfo<'a>>,
    #[serde(default)]
    error: Option<Value>,
}

/// What the decoder needs from one object.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Decoded UTF-8 length of `text` (cumulative text: the new bytes are the growth).
    pub text_len: usize,
    pub prompt_tokens: Option<u64>,
    pub completion_tokens: Option<u64>,
    /// Prompt tokens found in the prefix cache.
    pub cached_tokens: Option<u64>,
    /// `finish_reason.type` (or the plain string), once finished.
    pub finish: Option<String>,
    /// An abort's message, or an error object's.
    pub error: Option<String>,
}

fn meta_fast(s: &mut Scanner<'_>, f: &mut Facts) -> Scan<()> {
    let mut seen = 0;
    s.object(|s, key| match key {
        b"finish_reason" => {
            first_time(&mut seen, 1)?;
            if s.null()? { Ok(()) } else { Err(Miss) }
        }
        b"prompt_tokens" => {
            first_time(&mut seen, 2)?;
            f.prompt_tokens = s.opt_u64()?;
            Ok(())
        }
        b"completion_tokens" => {
            first_time(&mut seen, 4)?;
            f.completion_tokens = s.opt_u64()?;
            Ok(())
        }
        b"cached_tokens" => {
            first_time(&mut seen, 8)?;
            f.cached_tokens = s.opt_u64()?;
            Ok(())
        }
        _ => s.skip(),
    })
}

/// The facts of one object: the scanner for the common in-progress shape, serde_json
/// (the reference) for anything else, the last object and errors included.
impl FastPath<'_> for Facts {
    type Error = serde_json::Error;

    /// [`Facts`] of an in-progress object (`finish_reason` null, no `error`), or a miss.
    fn fast(data: &[u8]) -> Scan<Facts> {
        let mut s = Scanner::new(data)?;
        let mut f = Facts::default();
        let mut seen = 0;
        s.object(|s, key| match key {
            b"text" => {
                first_time(&mut seen, 1)?;
                f.text_len = s.opt_string()?.map_or(0, |t| t.decoded_len);
                Ok(())
            }
            b"meta_info" => {
                first_time(&mut seen, 2)?;
                if !s.null()? {
                    meta_fast(s, &mut f)?;
                }
                Ok(())
            }
            b"error" => {
                first_time(&mut seen, 4)?;
                if s.null()? { Ok(()) } else { Err(Miss) }
            }
            _ => s.skip(),
        })?;
        s.end()?;
        Ok(f)
    }

    fn reference(data: &[u8]) -> Result<Facts, serde_json::Error> {
        let o: Output = serde_json::from_slice(data)?;
        let mut f = Facts {
            text_len: o.text.as_deref().map_or(0, str::len),
            ..Facts::default()
        };
        if let Some(e) = o.error.filter(|e| !e.is_null()) {
            let msg =
                json_error_message(&json!({ "error": e })).unwrap_or_else(|| "error event".into());
            f.error = Some(bounded(&msg));
            return Ok(f);
        }
        let m = o.meta_info.unwrap_or_default();
        f.prompt_tokens = m.prompt_tokens;
        f.completion_tokens = m.completion_tokens;
        f.cached_tokens = m.cached_tokens;
        match m.finish_reason {
            Some(Finish::Object { kind, message }) => {
                if kind == "abort" {
                    let msg = message
                        .map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .filter(|m| !m.trim().is_empty())
                        .unwrap_or_else(|| "request aborted by the server".into());
                    f.error = Some(bounded(&msg));
                }
                f.finish = Some(kind.into_owned());
            }
            Some(Finish::Plain(s)) => f.finish = Some(s.into_owned()),
            None => {}
        }
        Ok(f)
    }
}

#[derive(Default)]
pub(crate) struct StreamDecoder {
    counter: Cumulative,
    /// Decoded length of the cumulative text so far.
    text_so_far: usize,
    done: bool,
}

impl Decoder for StreamDecoder {
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        if self.done {
            return false;
        }
        if data.trim_ascii() == b"[DONE]" {
            self.done = true;
            acc.complete = true;
            return false;
        }
        let f = match Facts::facts(data) {
            Ok(f) => f,
            Err(e) => {
                acc.fail_protocol(format_args!("malformed SGLang event: {e}"));
                return false;
            }
        };
        if let Some(p) = f.prompt_tokens {
            acc.server_prompt_tokens = to_u32(Some(p));
        }
        if let Some(c) = f.cached_tokens {
            acc.server_cached_tokens = to_u32(Some(c));
        }
        let new_text = f.text_len.saturating_sub(self.text_so_far);
        self.text_so_far = self.text_so_far.max(f.text_len);
        self.counter.apply(acc, t_ns, f.completion_tokens, new_text);
        if let Some(r) = f.finish {
            acc.finish_reason = Some(r);
            acc.complete = true;
        }
        if let Some(e) = f.error {
            acc.server_error = Some(e);
            return false;
        }
        true
    }

    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, _eof: bool) {
        Cumulative::settle(acc, ctx);
    }
}

/// A whole non-streamed answer.
pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    let f = match Facts::reference(body) {
        Ok(f) => f,
        Err(e) => {
            acc.fail_protocol(format_args!("malformed SGLang answer: {e}"));
            return;
        }
    };
    if let Some(e) = f.error {
        acc.server_error = Some(e);
        return;
    }
    if f.completion_tokens.is_none() && f.finish.is_none() {
        acc.fail_protocol("SGLang answer without meta_info");
        return;
    }
    acc.server_prompt_tokens = to_u32(f.prompt_tokens);
    acc.server_cached_tokens = to_u32(f.cached_tokens);
    acc.server_output_tokens = to_u32(f.completion_tokens);
    acc.finish_reason = f.finish;
    acc.complete = true;
    crate::dialect::adapter::settle_single(acc, ctx, t_ns);
}

#[cfg(test)]
mod fast_tests;
