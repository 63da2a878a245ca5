//! What every backend adapter shares: the `Dialect` interface each one implements,
//! the per-response accumulator, token-count finalization and error-body reading.
//!
//! An adapter (one module per dialect: `crate::dialect::tgi`, `crate::dialect::vllm`,
//! `crate::dialect::lightllm`, `crate::dialect::openai`) knows four things, the methods of
//! `Dialect`: its route, how to build the request body from a trace record, how to
//! read one framed payload of its stream (`Decoder`), and how to read a whole
//! non-streamed answer. Everything it learns goes into an `Accum`; the request driver
//! (`crate::run::request`) turns that into a log record. The adapters depend on this module
//! only (never on the request driver), and the one list that maps a backend name to its
//! adapter is `BackendKind::dialect` (`config.rs`), so adding a backend means one new
//! module, plus a `BackendKind` variant and its line in that list.
//!
//! ## How output tokens are counted (`token_count_method`)
//! * `per_event`: the protocol sends exactly one event per generated token (TGI,
//!   LightLLM streams). LightLLM may drop events under load, so there it is a lower bound.
//! * `usage_delta`: every content event carried cumulative usage (OpenAI dialect with
//!   `continuous_usage_stats`); each event's count is the increase of `completion_tokens`.
//! * `final_usage`: the server reported a total (TGI `details.generated_tokens`, OpenAI
//!   `usage`, LightLLM `count_output_tokens`). Streamed: when it equals the number of
//!   content events each event gets one token; above it, each event gets one and the rest
//!   is split across events in proportion to the new text bytes of each event
//!   (largest-remainder rounding, so the per-event counts add up to the total exactly);
//!   below it (a total smaller than the events), the whole total is split that way.
//! * `assumed_max_tokens`: no server count, but the response finished at the length
//!   limit (`finish_reason = length`) or `ignore_eos` was sent to a server whose API
//!   honours it and the response completed: the total is `max_tokens`, split across events
//!   by new text bytes as above.
//! * `event_count`: no server count and nothing guarantees the length: one token per
//!   event is *assumed*, a lower bound when servers coalesce tokens.
//! * `no_output`: the answer itself shows that nothing was generated (vLLM legacy's
//!   `text` equal to the prompt): 0, with the reason in the record's `count_flags`.
//! * `none`: nothing to count (non-streamed answer without any count): `output_tokens`
//!   stays empty rather than invented.

use serde::Deserialize;

use formats::Events;

/// What one request's response told us so far.
#[derive(Debug, Default)]
pub struct Accum {
    pub events: Events,
    /// New text bytes of each event (only the methods that split totals use them).
    pub text_bytes: Vec<u32>,
    /// Events whose token count came from the protocol itself (usage deltas).
    pub counted_events: usize,
    pub server_output_tokens: Option<u32>,
    pub server_prompt_tokens: Option<u32>,
    /// Prompt tokens the server found in its prefix cache, when it said.
    pub server_cached_tokens: Option<u32>,
    pub finish_reason: Option<String>,
    /// An error reported by the server inside a 200 response (error event, empty
    /// completion).
    pub server_error: Option<String>,
    /// Data that could not be understood; ends the request as `stream_error`.
    pub protocol_error: Option<String>,
    /// The protocol's end of response was seen (end marker, final event, finish reason).
    pub complete: bool,
    pub method: Option<&'static str>,
    /// Output tokens counted by the client, once finalized.
    pub output_tokens: Option<u32>,
    /// Reasoning text and answer text told apart (OpenAI chat; see `crate::dialect::reasoning`).
    pub reasoning: crate::dialect::reasoning::Reasoning,
    /// Tool calls in the answer (see `crate::dialect::tool_calls`).
    pub tools: crate::dialect::tool_calls::ToolCalls,
    /// What the decoder inferred rather than read (the record's `count_flags`).
    pub flags: Vec<&'static str>,
}

impl Accum {
    pub fn with_capacity(n: usize) -> Self {
        let n = n.min(4096);
        Accum {
            events: Events {
                t_ns: Vec::with_capacity(n),
                tokens: Vec::with_capacity(n),
            },
            text_bytes: Vec::with_capacity(n),
            ..Accum::default()
        }
    }

    pub fn push(&mut self, t_ns: u64, tokens: u32, text_bytes: usize) {
        self.events.push(t_ns, tokens);
        self.text_bytes
            .push(u32::try_from(text_bytes).unwrap_or(u32::MAX));
    }

    pub fn fail_protocol(&mut self, what: impl std::fmt::Display) {
        if self.protocol_error.is_none() {
            self.protocol_error = Some(bounded(&what.to_string()));
        }
    }

    /// Assigns per-event counts from a total (see the module docs), recording `method`.
    pub fn spread_total(&mut self, total: u32, method: &'static str) {
        let n = self.events.len();
        self.method = Some(method);
        if n == 0 {
            self.output_tokens = Some(0);
            return;
        }
        let weights: Vec<u64> = if self.text_bytes.iter().any(|&b| b > 0) {
            self.text_bytes.iter().map(|&b| b as u64).collect()
        } else {
            vec![1; n]
        };
        // Every event is at least one token when the total allows it (a server sends a
        // content chunk only for a token, even an empty-text one); the rest follows
        // the text bytes.
        let base = u32::from(total as usize >= n);
        let rest = total - base * n as u32;
        for (t, extra) in self.events.tokens.iter_mut().zip(split(rest, &weights)) {
            *t = base + extra;
        }
        self.output_tokens = Some(self.events.total_tokens() as u32);
    }

    /// Keeps the per-event counts already in the columns.
    pub fn keep_counts(&mut self, method: &'static str) {
        self.method = Some(method);
        self.output_tokens = Some(self.events.total_tokens().min(u32::MAX as u64) as u32);
    }

    /// One token per event, assumed.
    pub fn count_events(&mut self) {
        self.events.tokens.iter_mut().for_each(|t| *t = 1);
        self.keep_counts("event_count");
    }
}

/// `total` split in proportion to `weights` (not all zero), rounded so that the parts add
/// up to `total` exactly: part `i` is `round(total * cum_i / sum) - round(total *
/// cum_{i-1} / sum)`, in integers.
fn split(total: u32, weights: &[u64]) -> Vec<u32> {
    let sum: u64 = weights.iter().sum();
    let mut cum = 0u64;
    let mut assigned = 0u64;
    weights
        .iter()
        .map(|w| {
            cum += w;
            let upto = (2 * total as u64 * cum + sum) / (2 * sum);
            let part = (upto - assigned) as u32;
            assigned = upto;
            part
        })
        .collect()
}

/// Facts about the request the decoders need.
#[derive(Debug, Clone, Copy)]
pub struct ReqCtx {
    pub max_tokens: u32,
    /// UTF-8 length of the prompt text (vLLM's legacy answer repeats it).
    pub prompt_bytes: usize,
    /// `ignore_eos: true` was sent to an API that honours it.
    pub ignore_eos_sent: bool,
}

/// Request fields resolved for one request: what a dialect may put in its body.
#[derive(Debug, Clone)]
pub(crate) struct BodyOptions {
    pub stream: bool,
    pub model: Option<String>,
    pub ignore_eos: bool,
    pub min_tokens: bool,
    pub stream_usage: bool,
    pub continuous_usage: bool,
}

/// A request's prompt in every form a dialect may send it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Prompt<'a> {
    /// The text (with `messages`, their rendering `role: content` per line): what
    /// completion-style dialects send.
    pub text: &'a str,
    /// The text as token ids, when the user asked for them (`--prompt-token-ids`; only
    /// dialects with [`Dialect::accepts_token_ids`] get them).
    pub token_ids: Option<&'a [u32]>,
    /// The recorded chat (history, then this turn's user message), when the trace has
    /// it: what chat dialects send instead of the text as one user message.
    pub messages: Option<&'a [formats::ChatMessage]>,
}

impl<'a> Prompt<'a> {
    /// A plain text prompt.
    #[cfg(test)]
    pub fn text(text: &'a str) -> Self {
        Prompt {
            text,
            token_ids: None,
            messages: None,
        }
    }
}

/// How a dialect delimits the events of a streamed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventFraming {
    /// Server-Sent Events (`data:` lines).
    Sse,
    /// JSON objects each followed by a NUL byte or a newline (vLLM's legacy server).
    Nul,
}

/// One wire dialect: everything the replayer needs to know about a backend's HTTP API.
///
/// Used as `&'static dyn Dialect` (see `BackendKind::dialect`): its methods run once per
/// run (`path`), once per request before the clock starts (`body`), or once per request
/// (`framing`, `stream_decoder`, `parse_answer`), never per streamed event, so an
/// indirect call costs nothing measurable there. The per-event work is
/// [`Decoder::payload`].
pub(crate) trait Dialect: Sync {
    /// URL path of the generation route (streamed or not).
    fn path(&self, stream: bool) -> &'static str;
    /// The JSON request body for `prompt` (see [`Prompt`]: the text, the ids when the
    /// user asked for them, the chat `messages` when the trace has them).
    fn body(&self, prompt: &Prompt, max_tokens: u32, opts: &BodyOptions) -> serde_json::Value;
    /// How streamed events are delimited.
    fn framing(&self) -> EventFraming {
        EventFraming::Sse
    }
    /// A decoder for one streamed response.
    fn stream_decoder(&self, ctx: &ReqCtx) -> Box<dyn Decoder>;
    /// Decodes a whole non-streamed answer received at `t_ns`.
    fn parse_answer(&self, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum);
    /// The API has an `ignore_eos` field at all.
    fn has_ignore_eos(&self) -> bool {
        true
    }
    /// The API accepts the prompt as a list of token ids.
    fn accepts_token_ids(&self) -> bool {
        false
    }
    /// The most output tokens the server generates for a prompt of `prompt_tokens`
    /// when its context limit is `max_model_len`, where the server caps output instead
    /// of refusing the request (vLLM legacy); `None`: no such cap.
    fn output_cap(&self, _max_model_len: u32, _prompt_tokens: u32) -> Option<u32> {
        None
    }
}

/// Reads framed payloads of one streamed response.
pub(crate) trait Decoder: Send {
    /// One payload (an SSE event's data, or one NUL-delimited object), received at
    /// `t_ns`. Returns `false` when nothing more will be accepted (end marker seen).
    fn payload(&mut self, data: &[u8], t_ns: u64, acc: &mut Accum) -> bool;
    /// The body ended cleanly (`eof`) or broke off (`!eof`); settles counts.
    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, eof: bool);
}

/// Settles counts for dialects without per-event counts: server total, then
/// `max_tokens` by contract, then one per event.
pub(crate) fn settle_counts(acc: &mut Accum, ctx: &ReqCtx) {
    if let Some(total) = acc.server_output_tokens {
        acc.spread_total(total, "final_usage");
    } else if acc.finish_reason.as_deref() == Some("length")
        || (ctx.ignore_eos_sent && acc.complete && acc.server_error.is_none())
    {
        acc.spread_total(ctx.max_tokens, "assumed_max_tokens");
    } else {
        acc.count_events();
    }
}

/// Per-event counts from a cumulative output-token counter the server puts in every
/// event (SGLang `meta_info.completion_tokens`, llama.cpp `tokens_predicted`): each
/// event's count is the counter's increase, exact whatever the server coalesced.
#[derive(Debug, Default)]
pub(crate) struct Cumulative {
    so_far: u64,
}

impl Cumulative {
    /// One event received at `t_ns` with `text` new text bytes and the counter `count`
    /// (when sent). An event is recorded when tokens or text arrived; it is counted
    /// when the counter came with it.
    pub fn apply(&mut self, acc: &mut Accum, t_ns: u64, count: Option<u64>, text: usize) {
        match count {
            Some(c) => {
                acc.server_output_tokens = to_u32(Some(c));
                let delta = c.saturating_sub(self.so_far);
                self.so_far = self.so_far.max(c);
                if delta > 0 || text > 0 {
                    acc.push(t_ns, delta.min(u32::MAX as u64) as u32, text);
                    acc.counted_events += 1;
                }
            }
            None if text > 0 => acc.push(t_ns, 0, text),
            None => {}
        }
    }

    /// Settles the counts: `usage_delta` when every event was counted, else as
    /// [`settle_counts`] (the last counter seen as the server's total first).
    pub fn settle(acc: &mut Accum, ctx: &ReqCtx) {
        let n = acc.events.len();
        if n > 0 && acc.counted_events == n {
            acc.keep_counts("usage_delta");
        } else {
            settle_counts(acc, ctx);
        }
    }
}

/// Same for a non-streamed answer: one event holding the total, or `none`.
pub(crate) fn settle_single(acc: &mut Accum, ctx: &ReqCtx, t_ns: u64) {
    acc.push(t_ns, 0, 0);
    if let Some(total) = acc.server_output_tokens {
        acc.spread_total(total, "final_usage");
    } else if acc.finish_reason.as_deref() == Some("length")
        || (ctx.ignore_eos_sent && acc.server_error.is_none())
    {
        acc.spread_total(ctx.max_tokens, "assumed_max_tokens");
    } else {
        acc.method = Some("none");
        acc.output_tokens = None;
    }
}

/// Error texts in the log are bounded to this many bytes.
pub const ERROR_LIMIT: usize = 512;

/// Cuts `s` to [`ERROR_LIMIT`] bytes on a character boundary, on one line.
pub(crate) fn bounded(s: &str) -> String {
    let s = s.trim();
    let mut end = s.len().min(ERROR_LIMIT);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let mut out: String = s[..end].replace(['\n', '\r'], " ");
    if end < s.len() {
        out.push('…');
    }
    out
}

/// The message of an error body, whatever its shape: `{"error":"..."}`,
/// `{"error":{"message":..}}`, `{"object":"error","message":..}`, `{"detail":..}`,
/// or plain text.
pub(crate) fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(body)
        && let Some(m) = json_error_message(&v)
    {
        return bounded(&m);
    }
    if text.trim().is_empty() {
        return "(empty body)".to_string();
    }
    bounded(&text)
}

/// The message of a JSON error object, when it looks like one and says something (a
/// blank message is none: found by fuzzing, `{"message":""}` gave an empty error text).
pub(crate) fn json_error_message(v: &serde_json::Value) -> Option<String> {
    error_field(v).filter(|m| !m.trim().is_empty())
}

fn error_field(v: &serde_json::Value) -> Option<String> {
    let as_text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let obj = v.as_object()?;
    if let Some(e) = obj.get("error") {
        if let Some(m) = e.get("message") {
            return Some(as_text(m));
        }
        if !e.is_null() {
            return Some(as_text(e));
        }
    }
    if obj.get("object").and_then(|o| o.as_str()) == Some("error")
        && let Some(m) = obj.get("message")
    {
        return Some(as_text(m));
    }
    if let Some(d) = obj.get("detail") {
        return Some(as_text(d));
    }
    if let Some(m) = obj.get("message") {
        return Some(as_text(m));
    }
    None
}

/// The message of an error object a typed stream or answer carries in its `error` field
/// (Responses, Messages), bounded; `error event` when it says nothing.
pub(crate) fn error_object_message(error: &serde_json::Value) -> String {
    let wrapped = serde_json::json!({ "error": error });
    bounded(&json_error_message(&wrapped).unwrap_or_else(|| "error event".into()))
}

/// A value that may come as a number or be absent; anything else is a protocol error
/// caught by serde. Used for token counts.
pub(crate) fn to_u32(v: Option<u64>) -> Option<u32> {
    v.map(|n| n.min(u32::MAX as u64) as u32)
}

/// A field of any JSON type, present or not (counted as present when not null).
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
pub(crate) struct Present(pub Option<serde::de::IgnoredAny>);

impl Present {
    pub fn is_some(&self) -> bool {
        self.0.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_adds_up_and_follows_text() {
        let mut a = Accum::default();
        for b in [1, 1, 2, 0, 4] {
            a.push(0, 0, b);
        }
        a.spread_total(16, "final_usage");
        assert_eq!(a.events.tokens.iter().sum::<u32>(), 16);
        // One each, the other 11 by text bytes (1, 1, 2, 0, 4 of 8).
        assert_eq!(a.events.tokens, vec![2, 3, 4, 1, 6]);
        a.spread_total(4, "final_usage");
        assert_eq!(a.events.tokens, vec![1, 0, 1, 0, 2], "below the events");
        let mut a = Accum::default();
        for _ in 0..3 {
            a.push(0, 0, 5);
        }
        a.spread_total(3, "final_usage");
        assert_eq!(a.events.tokens, vec![1, 1, 1]);
        a.spread_total(7, "final_usage");
        assert_eq!(a.events.tokens.iter().sum::<u32>(), 7);
    }

    #[test]
    fn error_shapes() {
        assert_eq!(
            error_message(br#"{"error":"boom","error_type":"x"}"#),
            "boom"
        );
        assert_eq!(
            error_message(br#"{"error":{"message":"bad","type":"t","code":400}}"#),
            "bad"
        );
        assert_eq!(
            error_message(br#"{"object":"error","message":"old","code":1}"#),
            "old"
        );
        assert_eq!(
            error_message(br#"{"detail":"Unexpected fields in the request: {'ignore_eos'}"}"#),
            "Unexpected fields in the request: {'ignore_eos'}"
        );
        assert_eq!(
            error_message(b"Internal Server Error"),
            "Internal Server Error"
        );
        assert_eq!(error_message(b""), "(empty body)");
        // Fuzzing regression: a blank message is no message; the body is shown instead.
        assert_eq!(
            error_message(br#"{"message":"","code":1}"#),
            r#"{"message":"","code":1}"#
        );
        assert_eq!(
            json_error_message(&serde_json::json!({"error": {"message": " "}})),
            None
        );
        let long = "é".repeat(1000);
        let m = error_message(long.as_bytes());
        assert!(m.len() <= ERROR_LIMIT + 3);
    }
}
