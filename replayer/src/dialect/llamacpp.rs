//! llama.cpp's `llama-server` native API: `POST /completion` (streamed or not).
//!
//! Checked against llama.cpp's source (`tools/server/server-task.cpp`,
//! `server_task_result_cmpl_partial::to_json_non_oaicompat` and
//! `server_task_result_cmpl_final::to_json_non_oaicompat`, 2025; `tools/server/server.cpp`
//! before the split) and against a real `llama-server` (build b1-0c1e570, vendored in
//! llama-cpp-python 0.3.36: `tests/fixtures/llama.cpp/native_completion_stream.body`):
//!
//! * Request: `{"prompt", "n_predict", "ignore_eos", "stream"}`; with
//!   `--prompt-token-ids` the prompt is the list of ids (llama.cpp takes either).
//!   llama.cpp honours `ignore_eos`.
//! * Stream: `data: {json}\n\n` per decoded token (`{"index", "content", "tokens",
//!   "stop": false, "id_slot", "tokens_predicted", "tokens_evaluated"}`; a token that
//!   ends inside a UTF-8 character, or a speculative draft, can make one event carry
//!   several tokens), then one final `{"stop": true, "stop_type": "limit"|"eos"|"word"|
//!   "none", "tokens_predicted", "tokens_evaluated", "timings", "truncated", ..}`; no
//!   `[DONE]` (that is the OpenAI routes'). Counts: each event gets the increase of the
//!   cumulative `tokens_predicted` (`usage_delta`); releases whose partial events lack it
//!   get the final total split over the events (`final_usage`).
//! * Errors: `{"error": {"code", "message", "type"}}` with 400 (invalid request,
//!   `exceed_context_size_error`), 500 (bad JSON, server error), 501, 503 (model
//!   loading). Inside a 200 stream: `data: {"error": {..}}` (current releases) or an
//!   `error: {..}` line (releases before the server was split into modules, which the
//!   SSE framing hands over as an error event).
//! * Not streamed: the final object alone, with `content` holding the whole text.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Cumulative, Decoder, Dialect, Prompt, ReqCtx, bounded, json_error_message,
    to_u32,
};
use crate::dialect::scan::{FastPath, Miss, Scan, Scanner, first_time};

/// The llama.cpp native dialect.
pub(crate) struct Llamacpp;

impl Dialect for Llamacpp {
    fn path(&self, _stream: bool) -> &'static str {
        "/completion"
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
    let prompt = match token_ids {
        Some(ids) => json!(ids),
        None => json!(prompt),
    };
    json!({
        "prompt": prompt,
        "n_predict": max_tokens,
        "ignore_eos": opts.ignore_eos,
        "stream": opts.stream,
    })
}

/// One event of the stream (or the whole answer).
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(default)]
    stop: Option<bool>,
    #[serde(default)]
    tokens_predicted: Option<u64>,
    #[serde(default)]
    tokens_evaluated: Option<u64>,
    #[serde(borrow, default)]
    stop_type: Option<Cow<'a, str>>,
    #[serde(default)]
    error: Option<Value>,
}

/// What the decoder needs from one event.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Facts {
    /// Decoded UTF-8 length of this event's `content`.
    pub text_len: usize,
    /// The final event (`stop: true`).
    pub stop: bool,
    pub tokens_predicted: Option<u64>,
    pub tokens_evaluated: Option<u64>,
    pub stop_type: Option<String>,
    pub error: Option<String>,
}

/// The facts of one event: the scanner for token events, serde_json (the reference)
/// for anything else, the final event and errors included.
impl FastPath<'_> for Facts {
    type Error = serde_json::Error;

    /// [`Facts`] of a token event (`stop` false or absent, no `stop_type`, no `error`), or
    /// a miss.
    fn fast(data: &[u8]) -> Scan<Facts> {
        let mut s = Scanner::new(data)?;
        let mut f = Facts::default();
        let mut seen = 0;
        s.object(|s, key| match key {
            b"content" => {
                first_time(&mut seen, 1)?;
                f.text_len = s.opt_string()?.map_or(0, |t| t.decoded_len);
                Ok(())
            }
            b"stop" => {
                first_time(&mut seen, 2)?;
                match s.peek() {
                    Some(b'f') | Some(b'n') => s.skip(),
                    _ => Err(Miss),
                }
            }
            b"tokens_predicted" => {
                first_time(&mut seen, 4)?;
                f.tokens_predicted = s.opt_u64()?;
                Ok(())
            }
            b"tokens_evaluated" => {
                first_time(&mut seen, 8)?;
                f.tokens_evaluated = s.opt_u64()?;
                Ok(())
            }
            b"stop_type" | b"error" => {
                first_time(&mut seen, if key == b"error" { 16 } else { 32 })?;
                if s.null()? { Ok(()) } else { Err(Miss) }
            }
            _ => s.skip(),
        })?;
        s.end()?;
        Ok(f)
    }

    fn reference(data: &[u8]) -> Result<Facts, serde_json::Error> {
        let e: Event = serde_json::from_slice(data)?;
        if let Some(err) = e.error.filter(|e| !e.is_null()) {
            let msg = json_error_message(&json!({ "error": err }))
                .unwrap_or_else(|| "error event".into());
            return Ok(Facts {
                error: Some(bounded(&msg)),
                ..Facts::default()
            });
        }
        Ok(Facts {
            text_len: e.content.as_deref().map_or(0, str::len),
            stop: e.stop.unwrap_or(false),
            tokens_predicted: e.tokens_predicted,
            tokens_evaluated: e.tokens_evaluated,
            stop_type: e.stop_type.map(Cow::into_owned),
            error: None,
        })
    }
}

#[derive(Default)]
pub(crate) struct StreamDecoder {
    counter: Cumulative,
    done: bool,
}

impl Decoder for StreamDecoder {
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        if self.done {
            acc.fail_protocol("data after the final event");
            return false;
        }
        let f = match Facts::facts(data) {
            Ok(f) => f,
            Err(e) => {
                acc.fail_protocol(format_args!("malformed llama.cpp event: {e}"));
                return false;
            }
        };
        if let Some(e) = f.error {
            acc.server_error = Some(e);
            return false;
        }
        if let Some(p) = f.tokens_evaluated {
            acc.server_prompt_tokens = to_u32(Some(p));
        }
        self.counter
            .apply(acc, t_ns, f.tokens_predicted, f.text_len);
        if f.stop {
            // The body ends right after the final event.
            self.done = true;
            acc.complete = true;
            acc.finish_reason = f.stop_type;
        }
        true
    }

    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, _eof: bool) {
        Cumulative::settle(acc, ctx);
    }
}

/// A whole non-streamed answer (the final object).
pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    let f = match Facts::reference(body) {
        Ok(f) => f,
        Err(e) => {
            acc.fail_protocol(format_args!("malformed llama.cpp answer: {e}"));
            return;
        }
    };
    if let Some(e) = f.error {
        acc.server_error = Some(e);
        return;
    }
    if !f.stop {
        acc.fail_protocol("llama.cpp answer without `stop: true`");
        return;
    }
    acc.server_prompt_tokens = to_u32(f.tokens_evaluated);
    acc.server_output_tokens = to_u32(f.tokens_predicted);
    acc.finish_reason = f.stop_type;
    acc.complete = true;
    crate::dialect::adapter::settle_single(acc, ctx, t_ns);
}

#[cfg(test)]
mod fast_tests;
