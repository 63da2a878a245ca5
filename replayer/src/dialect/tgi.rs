//! TGI (text-generation-inference): `POST /generate_stream` (SSE) and `POST /generate`.
//!
//! Request: `{"inputs": prompt, "parameters": {"max_new_tokens", "details": true,
//! "do_sample": false}}`. TGI cannot be told to ignore EOS over HTTP (hard-coded off), so
//! `ignore_eos` is never sent; early stops show as `finish_reason = eos_token` with fewer
//! output tokens than `max_tokens`. `details: true` makes the server report
//! `generated_tokens` and `finish_reason`.
//!
//! Stream: exactly one `data:{"token":{..},..}` event per generated token (counted
//! `per_event`), no end marker; the last event carries `generated_text` (and `details`).
//! Errors after the 200 arrive as `data:{"error":..,"error_type":..}`.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Decoder, Dialect, Present, Prompt, ReqCtx, json_error_message, to_u32,
};
use crate::dialect::scan::{FastPath, Miss, Scan, Scanner, first_time};

/// The TGI dialect.
pub(crate) struct Tgi;

impl Dialect for Tgi {
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
        Box::new(StreamDecoder)
    }

    fn parse_answer(&self, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
        parse_answer(body, t_ns, ctx, acc)
    }

    /// TGI hard-codes `ignore_eos` off.
    fn has_ignore_eos(&self) -> bool {
        false
    }
}

pub(crate) fn body(prompt: &str, max_tokens: u32, _opts: &BodyOptions) -> serde_json::Value {
    json!({
        "inputs": prompt,
        "parameters": {"max_new_tokens": max_tokens, "details": true, "do_sample": false},
    })
}

#[derive(Deserialize)]
pub(crate) struct Details<'a> {
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub generated_tokens: Option<u64>,
}

/// The `token` object of an event: its `text` is only checked (a string or null, when
/// present); newer LightLLM puts its cumulative counts here.
#[derive(Deserialize, Default)]
pub(crate) struct Token<'a> {
    #[serde(borrow, default, rename = "text")]
    _text: Option<Cow<'a, str>>,
    /// Output tokens so far (LightLLM since 2024), cumulative.
    #[serde(default)]
    pub count_output_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
}

/// One stream event (TGI and LightLLM share this shape).
#[derive(Deserialize, Default)]
pub(crate) struct TokenEvent<'a> {
    #[serde(borrow, default)]
    pub token: Option<Token<'a>>,
    #[serde(default)]
    pub generated_text: Present,
    #[serde(borrow, default)]
    pub details: Option<Details<'a>>,
    #[serde(default)]
    pub error: Option<serde_json::Value>,
    /// Current LightLLM extras.
    #[serde(borrow, default)]
    pub finish_reason: Option<Cow<'a, str>>,
    #[serde(default)]
    pub count_output_tokens: Option<u64>,
    #[serde(default)]
    pub prompt_tokens: Option<u64>,
}

/// One event: the allocation-free scanner for the common shape, serde_json (the
/// reference) for anything else, including error events (see [`crate::dialect::scan`]).
impl<'a> FastPath<'a> for TokenEvent<'a> {
    type Error = serde_json::Error;

    fn fast(data: &'a [u8]) -> Scan<Self> {
        let mut s = Scanner::new(data)?;
        let mut ev = TokenEvent::default();
        let mut seen = 0;
        s.object(|s, key| match key {
            b"token" => {
                first_time(&mut seen, 1)?;
                if !s.null()? {
                    ev.token = Some(token_fast(s)?);
                }
                Ok(())
            }
            b"generated_text" => {
                first_time(&mut seen, 2)?;
                if !s.null()? {
                    s.skip()?;
                    ev.generated_text = Present(Some(serde::de::IgnoredAny));
                }
                Ok(())
            }
            b"details" => {
                first_time(&mut seen, 4)?;
                if !s.null()? {
                    ev.details = Some(details_fast(s)?);
                }
                Ok(())
            }
            b"error" => {
                first_time(&mut seen, 8)?;
                if s.null()? { Ok(()) } else { Err(Miss) }
            }
            b"finish_reason" => {
                first_time(&mut seen, 16)?;
                ev.finish_reason = opt_plain(s)?;
                Ok(())
            }
            b"count_output_tokens" => {
                first_time(&mut seen, 32)?;
                ev.count_output_tokens = s.opt_u64()?;
                Ok(())
            }
            b"prompt_tokens" => {
                first_time(&mut seen, 64)?;
                ev.prompt_tokens = s.opt_u64()?;
                Ok(())
            }
            _ => s.skip(),
        })?;
        s.end()?;
        Ok(ev)
    }

    fn reference(data: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(data)
    }
}

fn token_fast<'a>(s: &mut Scanner<'a>) -> Scan<Token<'a>> {
    let mut seen = 0;
    let mut t = Token::default();
    s.object(|s, key| match key {
        b"text" => {
            first_time(&mut seen, 1)?;
            s.opt_string().map(drop)
        }
        b"count_output_tokens" => {
            first_time(&mut seen, 2)?;
            t.count_output_tokens = s.opt_u64()?;
            Ok(())
        }
        b"prompt_tokens" => {
            first_time(&mut seen, 4)?;
            t.prompt_tokens = s.opt_u64()?;
            Ok(())
        }
        _ => s.skip(),
    })?;
    Ok(t)
}

fn details_fast<'a>(s: &mut Scanner<'a>) -> Scan<Details<'a>> {
    let mut seen = 0;
    let mut d = Details {
        finish_reason: None,
        generated_tokens: None,
    };
    s.object(|s, key| match key {
        b"finish_reason" => {
            first_time(&mut seen, 1)?;
            d.finish_reason = opt_plain(s)?;
            Ok(())
        }
        b"generated_tokens" => {
            first_time(&mut seen, 2)?;
            d.generated_tokens = s.opt_u64()?;
            Ok(())
        }
        _ => s.skip(),
    })?;
    Ok(d)
}

/// A string without escapes, or null.
fn opt_plain<'a>(s: &mut Scanner<'a>) -> Scan<Option<Cow<'a, str>>> {
    match s.opt_string()? {
        Some(t) => Ok(Some(Cow::Borrowed(t.plain()?))),
        None => Ok(None),
    }
}

/// Applies one TGI/LightLLM token event; `false` for an error event.
pub(crate) fn apply_token_event(ev: TokenEvent<'_>, t_ns: u64, acc: &mut Accum) -> bool {
    if let Some(err) = ev.error.filter(|e| !e.is_null()) {
        let msg =
            json_error_message(&json!({ "error": err })).unwrap_or_else(|| "error event".into());
        acc.server_error = Some(crate::dialect::adapter::bounded(&msg));
        return false;
    }
    if ev.token.is_some() {
        acc.push(t_ns, 1, 0);
    }
    if let Some(d) = ev.details {
        if let Some(r) = d.finish_reason {
            acc.finish_reason = Some(r.into_owned());
        }
        if let Some(n) = d.generated_tokens {
            acc.server_output_tokens = to_u32(Some(n));
        }
    }
    if let Some(r) = ev.finish_reason {
        acc.finish_reason = Some(r.into_owned());
    }
    if let Some(n) = ev.count_output_tokens {
        acc.server_output_tokens = to_u32(Some(n));
    }
    if let Some(n) = ev.prompt_tokens {
        acc.server_prompt_tokens = to_u32(Some(n));
    }
    true
}

#[derive(Default)]
pub(crate) struct StreamDecoder;

impl Decoder for StreamDecoder {
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool {
        if acc.complete {
            acc.fail_protocol("data after the final event");
            return false;
        }
        match TokenEvent::facts(data) {
            Ok(ev) => {
                let last = ev.generated_text.is_some();
                if !apply_token_event(ev, t_ns, acc) {
                    return false;
                }
                if last {
                    acc.complete = true;
                }
                true
            }
            Err(e) => {
                acc.fail_protocol(format_args!("malformed TGI event: {e}"));
                false
            }
        }
    }

    fn finish(&mut self, acc: &mut Accum, _ctx: &ReqCtx, _eof: bool) {
        acc.keep_counts("per_event");
    }
}

#[derive(Deserialize)]
struct Answer<'a> {
    generated_text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    details: Option<Details<'a>>,
}

/// A whole `/generate` answer.
pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    match serde_json::from_slice::<Answer>(body) {
        Ok(Answer {
            generated_text: Some(_),
            details,
        }) => {
            if let Some(d) = details {
                acc.finish_reason = d.finish_reason.map(Cow::into_owned);
                acc.server_output_tokens = to_u32(d.generated_tokens);
            }
            acc.complete = true;
            // TGI never honours ignore_eos: only a server count or `length` is a total.
            let ctx = ReqCtx {
                ignore_eos_sent: false,
                ..*ctx
            };
            crate::dialect::adapter::settle_single(acc, &ctx, t_ns);
        }
        Ok(_) => acc.fail_protocol("TGI answer without generated_text"),
        Err(e) => acc.fail_protocol(format_args!("malformed TGI answer: {e}")),
    }
}

#[cfg(test)]
mod fast_tests;
