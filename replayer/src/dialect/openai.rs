//! OpenAI-compatible servers: `POST /v1/completions` and `POST /v1/chat/completions`
//! (vLLM, SGLang, TRT-LLM, llama.cpp, transformers serve, current TGI and LightLLM).
//!
//! Request: `model` (when given), `prompt` (text, or token ids when asked) or `messages`,
//! `max_tokens`, `stream`; the non-standard fields are the user's choice because strict
//! servers refuse unknown fields: `ignore_eos`, `min_tokens = max_tokens`,
//! `stream_options.include_usage`, `stream_options.continuous_usage_stats`.
//!
//! Stream: `data: {json}` events, `data: [DONE]` at the end (some servers, e.g.
//! transformers serve, end the body without it: a seen `finish_reason` then marks the
//! response complete). Content events are those with text (`choices[0].text`,
//! `delta.content`, or reasoning: `delta.reasoning` / `delta.reasoning_content`) or with
//! a usage increase; role-only and usage-only chunks are not events. Counts:
//! `usage_delta` when every content event carried cumulative usage, else the final
//! `usage` (`final_usage`), else `max_tokens` when `finish_reason = length`
//! (`assumed_max_tokens`), else `event_count`. Errors mid-stream arrive as
//! `data: {"error": {...}}` (or `{"object":"error",..}`).
//!
//! Tool calls: chat deltas' `tool_calls[].function.arguments` are answer text, a token
//! an event (vLLM streams a forced call's JSON arguments so: 18 deltas for 18 tokens in
//! the capture); the delta naming the function carries no arguments and no token.
//!
//! Reasoning (see `crate::dialect::reasoning`): vLLM >= 0.11 streams it in `reasoning` (some
//! versions also copy the same text into the deprecated `reasoning_content`);
//! SGLang, llama.cpp and older vLLM in `reasoning_content`. A delta's reasoning text is
//! the longer of the two fields, so a copy is counted once. The server's reasoning-token
//! count is `usage.completion_tokens_details.reasoning_tokens` (OpenAI), else
//! `usage.reasoning_tokens` (SGLang).

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::dialect::adapter::{
    Accum, BodyOptions, Decoder, Dialect, Prompt, ReqCtx, bounded, json_error_message,
    settle_counts, to_u32,
};
use crate::dialect::scan::{FastPath, Miss, Scan, Scanner, Str, first_time};
use crate::dialect::template::Template;

/// The OpenAI dialects: completions, or chat completions when `chat`.
pub(crate) struct OpenAi {
    pub chat: bool,
}

impl Dialect for OpenAi {
    fn path(&self, _stream: bool) -> &'static str {
        if self.chat {
            "/v1/chat/completions"
        } else {
            "/v1/completions"
        }
    }

    fn body(&self, prompt: &Prompt, max: u32, o: &BodyOptions) -> Value {
        body(self.chat, prompt, max, o)
    }

    fn stream_decoder(&self, _ctx: &ReqCtx) -> Box<dyn Decoder> {
        Box::new(StreamDecoder::default())
    }

    fn parse_answer(&self, body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
        parse_answer(body, t_ns, ctx, acc)
    }

    /// Only completions take token ids (chat takes messages).
    fn accepts_token_ids(&self) -> bool {
        !self.chat
    }
}

/// The request body. Chat sends the trace's `messages` (roles and contents as
/// recorded) when it has them, else the prompt as one user message; completions send
/// the prompt (the rendering of `messages`, when the trace has them), as text or ids.
pub(crate) fn body(
    chat: bool,
    prompt: &Prompt,
    max_tokens: u32,
    opts: &BodyOptions,
) -> serde_json::Value {
    let mut b = serde_json::Map::new();
    if let Some(m) = &opts.model {
        b.insert("model".into(), json!(m));
    }
    if chat {
        let messages = match prompt.messages {
            Some(m) => json!(m),
            None => json!([{"role": "user", "content": prompt.text}]),
        };
        b.insert("messages".into(), messages);
    } else {
        match prompt.token_ids {
            Some(ids) => b.insert("prompt".into(), json!(ids)),
            None => b.insert("prompt".into(), json!(prompt.text)),
        };
    }
    b.insert("max_tokens".into(), json!(max_tokens));
    b.insert("stream".into(), json!(opts.stream));
    if opts.ignore_eos {
        b.insert("ignore_eos".into(), json!(true));
    }
    if opts.min_tokens {
        b.insert("min_tokens".into(), json!(max_tokens));
    }
    if opts.stream && (opts.stream_usage || opts.continuous_usage) {
        let mut so = serde_json::Map::new();
        so.insert("include_usage".into(), json!(opts.stream_usage));
        if opts.continuous_usage {
            so.insert("continuous_usage_stats".into(), json!(true));
        }
        b.insert("stream_options".into(), serde_json::Value::Object(so));
    }
    serde_json::Value::Object(b)
}

/// A stream chunk's `delta`, or a whole answer's `message`.
#[derive(Deserialize, Default)]
struct Delta<'a> {
    /// Present on a chat stream's first chunk (`{"role":"assistant","content":""}`),
    /// which carries no token.
    #[serde(borrow, default)]
    role: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reasoning_content: Option<Cow<'a, str>>,
    /// Tool calls: a stream's deltas carry each call's `function.arguments` a token at a
    /// time (its first delta names the function, with no arguments: no token).
    #[serde(borrow, default)]
    tool_calls: Option<Vec<ToolCall<'a>>>,
}

#[derive(Deserialize, Default)]
struct ToolCall<'a> {
    /// Which call of the answer (several may stream interleaved).
    #[serde(default)]
    index: Option<u64>,
    #[serde(borrow, default)]
    function: Option<Function<'a>>,
}

#[derive(Deserialize, Default)]
struct Function<'a> {
    #[serde(borrow, default)]
    arguments: Option<Cow<'a, str>>,
}

impl Delta<'_> {
    /// The tool calls' argument strings.
    fn arguments(&self) -> impl Iterator<Item = &str> {
        self.tool_calls
            .iter()
            .flatten()
            .filter_map(|c| c.function.as_ref()?.arguments.as_deref())
    }

    /// (answer, reasoning) text bytes; reasoning is the longer of its two fields (vLLM
    /// sends the same text in both); tool-call arguments count as answer.
    fn text_len(&self) -> (usize, usize) {
        let len = |t: &Option<Cow<'_, str>>| t.as_ref().map_or(0, |t| t.len());
        let args: usize = self.arguments().map(str::len).sum();
        (
            len(&self.content) + args,
            len(&self.reasoning).max(len(&self.reasoning_content)),
        )
    }

    /// Whether it has a text field (answer, reasoning, or tool-call arguments) as a
    /// string, empty or not.
    fn has_text_field(&self) -> bool {
        self.content.is_some()
            || self.reasoning.is_some()
            || self.reasoning_content.is_some()
            || self.arguments().next().is_some()
    }
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    text: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    delta: Option<Delta<'a>>,
    #[serde(borrow, default)]
    message: Option<Delta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<Cow<'a, str>>,
}

#[derive(Deserialize, Clone, Copy)]
struct Usage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    /// SGLang's place for it.
    #[serde(default)]
    reasoning_tokens: Option<u64>,
    /// OpenAI's place for it.
    #[serde(default)]
    completion_tokens_details: Option<UsageDetails>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Deserialize, Clone, Copy)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

#[derive(Deserialize, Clone, Copy)]
struct UsageDetails {
    #[serde(default)]
    reasoning_tokens: Option<u64>,
}

/// The counts of a `usage` object the decoder uses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    prompt: Option<u64>,
    completion: Option<u64>,
    /// `completion_tokens_details.reasoning_tokens`, else `reasoning_tokens`.
    reasoning: Option<u64>,
    /// `prompt_tokens_details.cached_tokens`.
    cached: Option<u64>,
}

impl From<Usage> for Counts {
    fn from(u: Usage) -> Self {
        Counts {
            prompt: u.prompt_tokens,
            completion: u.completion_tokens,
            reasoning: u
                .completion_tokens_details
                .and_then(|d| d.reasoning_tokens)
                .or(u.reasoning_tokens),
            cached: u.prompt_tokens_details.and_then(|d| d.cached_tokens),
        }
    }
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Usage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(borrow, default)]
    object: Option<Cow<'a, str>>,
    #[serde(default)]
    message: Option<serde_json::Value>,
}

impl Chunk<'_> {
    fn error(&self) -> Option<String> {
        let is_error = self.error.as_ref().is_some_and(|e| !e.is_null())
            || self.object.as_deref() == Some("error");
        if !is_error {
            return None;
        }
        let v = json!({
            "error": self.error.clone().unwrap_or(serde_json::Value::Null),
            "object": self.object.as_deref(),
            "message": self.message.clone(),
        });
        let mut m = json_error_message(&v).unwrap_or_else(|| "error event".into());
        if m == "null" {
            m = "error event".into();
        }
        Some(bounded(&m))
    }
}

/// (answer, reasoning) text bytes of a choice: `text`, `delta`, `message`.
fn choice_text_len(c: &Choice<'_>) -> (usize, usize) {
    let mut n = (c.text.as_ref().map_or(0, |t| t.len()), 0);
    for d in [&c.delta, &c.message].into_iter().flatten() {
        let (a, r) = d.text_len();
        n = (n.0 + a, n.1 + r);
    }
    n
}

/// What one stream chunk says: the few values the decoder uses.
#[derive(Default)]
struct Facts<'a> {
    /// Decoded bytes of new answer text (all choices: `text`, `content`).
    answer: usize,
    /// Decoded bytes of new reasoning text (all choices).
    reasoning: usize,
    /// The last choice's finish reason, when any choice has one.
    finish_reason: Option<Cow<'a, str>>,
    usage: Option<Counts>,
    /// Some choice has a text field (`text`, `content`, `reasoning`...) as a string,
    /// even an empty one: vLLM sends `"text": ""` for a token that ends inside a UTF-8
    /// character, and that chunk is still one token.
    text_field: bool,
    /// Some choice's delta names a `role` (a chat stream's first chunk: no token).
    role: bool,
    /// The event's only non-null text string, when it has exactly one (fast path only):
    /// what a [`Template`] of it would leave open.
    hole: Holes<'a>,
    /// Tool-call pieces: (the call's index, its arguments text when the delta has the
    /// field). The reference path only (the fast one misses on `tool_calls`).
    tool_args: Vec<(u64, Option<Cow<'a, str>>)>,
}

impl Facts<'_> {
    /// A chunk that carries a token even without text: a text field holding the empty
    /// string, in a chunk that is neither the chat role chunk nor a final chunk (which
    /// llama.cpp and transformers serve send as `"text": ""` with the finish reason).
    fn empty_token(&self) -> bool {
        self.text_field && !self.role && self.finish_reason.is_none()
    }

    /// A final chunk with an empty text field: a token only when the final usage says
    /// there was one more token than events (vLLM: the last token ended inside a UTF-8
    /// character); see [`StreamDecoder::finish`].
    fn empty_final(&self) -> bool {
        self.text_field && !self.role && self.finish_reason.is_some()
    }
}

/// The text strings of an event seen by the scanner: none, exactly one (its raw body and
/// whether it is reasoning), or several.
#[derive(Default, Clone, Copy)]
enum Holes<'a> {
    #[default]
    None,
    One(&'a [u8], bool),
    Several,
}

impl<'a> Holes<'a> {
    fn add(&mut self, s: Option<Str<'a>>, reasoning: bool) {
        if let Some(s) = s {
            *self = match self {
                Holes::None => Holes::One(s.raw, reasoning),
                _ => Holes::Several,
            };
        }
    }
}

/// An event's facts without its hole's text, kept with its [`Template`].
#[derive(Clone)]
struct Base {
    answer: usize,
    reasoning: usize,
    finish_reason: Option<String>,
    usage: Option<Counts>,
    /// The hole holds reasoning text (else answer text).
    hole_is_reasoning: bool,
    role: bool,
}

impl Base {
    /// The facts of an event that filled the hole with `len` decoded bytes.
    fn with_hole(&self, len: usize) -> Facts<'static> {
        let (mut answer, mut reasoning) = (self.answer, self.reasoning);
        if self.hole_is_reasoning {
            reasoning += len;
        } else {
            answer += len;
        }
        Facts {
            answer,
            reasoning,
            finish_reason: self.finish_reason.clone().map(Cow::Owned),
            usage: self.usage,
            // The hole is a text string.
            text_field: true,
            role: self.role,
            hole: Holes::None,
            tool_args: Vec::new(),
        }
    }
}

/// A template of `data`, decoded in full as `f`, when it has exactly one text string.
fn template_of(data: &[u8], f: &Facts<'_>) -> Option<Template<Base>> {
    let Holes::One(raw, is_reasoning) = f.hole else {
        return None;
    };
    let len = Scanner::string_body(raw).ok()?.decoded_len;
    let (mut answer, mut reasoning) = (f.answer, f.reasoning);
    if is_reasoning {
        reasoning = reasoning.checked_sub(len)?;
    } else {
        answer = answer.checked_sub(len)?;
    }
    let base = Base {
        answer,
        reasoning,
        finish_reason: f.finish_reason.as_deref().map(str::to_string),
        usage: f.usage,
        hole_is_reasoning: is_reasoning,
        role: f.role,
    };
    Template::new(data, raw, base)
}

/// Why the slow path could not give [`Facts`].
enum NoFacts {
    /// Not a chunk at all (the serde error, for the protocol error).
    Malformed(serde_json::Error),
    /// An error event, with its message.
    ServerError(String),
}

impl<'a> FastPath<'a> for Facts<'a> {
    type Error = NoFacts;

    /// The same facts from the allocation-free scanner, or a miss for anything outside the
    /// common shape (error events included): see [`crate::dialect::scan`].
    fn fast(data: &'a [u8]) -> Scan<Self> {
        let mut s = Scanner::new(data)?;
        let mut f = Facts::default();
        let mut seen = 0;
        s.object(|s, key| match key {
            b"choices" => {
                first_time(&mut seen, 1)?;
                if s.null()? {
                    return Ok(());
                }
                s.array(|s| choice_fast(s, &mut f))
            }
            b"usage" => {
                first_time(&mut seen, 2)?;
                if !s.null()? {
                    f.usage = Some(usage_fast(s)?);
                }
                Ok(())
            }
            b"error" => {
                first_time(&mut seen, 4)?;
                if s.null()? { Ok(()) } else { Err(Miss) }
            }
            b"object" => {
                first_time(&mut seen, 8)?;
                match s.opt_string()? {
                    Some(o) if o.escaped || o.raw == b"error" => Err(Miss),
                    _ => Ok(()),
                }
            }
            b"message" => {
                first_time(&mut seen, 16)?;
                s.skip()
            }
            _ => s.skip(),
        })?;
        s.end()?;
        Ok(f)
    }

    /// The exact decoding of a chunk with serde_json (the reference; used whenever the fast
    /// scanner misses).
    fn reference(data: &'a [u8]) -> Result<Self, NoFacts> {
        let chunk: Chunk = serde_json::from_slice(data).map_err(NoFacts::Malformed)?;
        if let Some(msg) = chunk.error() {
            return Err(NoFacts::ServerError(msg));
        }
        let mut f = Facts {
            usage: chunk.usage.map(Counts::from),
            ..Facts::default()
        };
        for c in chunk.choices.into_iter().flatten() {
            let (a, r) = choice_text_len(&c);
            f.answer += a;
            f.reasoning += r;
            let deltas = [&c.delta, &c.message].into_iter().flatten();
            for d in deltas {
                f.text_field |= d.has_text_field();
                f.role |= d.role.is_some();
                for (k, call) in d.tool_calls.iter().flatten().enumerate() {
                    let text = call.function.as_ref().and_then(|f| f.arguments.clone());
                    f.tool_args.push((call.index.unwrap_or(k as u64), text));
                }
            }
            f.text_field |= c.text.is_some();
            if let Some(r) = c.finish_reason {
                f.finish_reason = Some(r);
            }
        }
        Ok(f)
    }
}

fn choice_fast<'a>(s: &mut Scanner<'a>, f: &mut Facts<'a>) -> Scan<()> {
    let mut seen = 0;
    let mut finish = None;
    s.object(|s, key| match key {
        b"text" => {
            first_time(&mut seen, 1)?;
            let t = s.opt_string()?;
            f.answer += t.map_or(0, |t| t.decoded_len);
            f.text_field |= t.is_some();
            f.hole.add(t, false);
            Ok(())
        }
        b"delta" | b"message" => {
            first_time(&mut seen, if key == b"delta" { 2 } else { 4 })?;
            if !s.null()? {
                let m = message_fast(s, &mut f.hole)?;
                f.answer += m.answer;
                f.reasoning += m.reasoning;
                f.text_field |= m.text_field;
                f.role |= m.role;
            }
            Ok(())
        }
        b"finish_reason" => {
            first_time(&mut seen, 8)?;
            if let Some(r) = s.opt_string()? {
                finish = Some(r.plain()?);
            }
            Ok(())
        }
        _ => s.skip(),
    })?;
    if let Some(r) = finish {
        f.finish_reason = Some(Cow::Borrowed(r));
    }
    Ok(())
}

/// What the fast path reads of a `delta` or `message` object.
struct MessageFacts {
    /// Answer and reasoning text bytes, as [`Delta::text_len`] counts them.
    answer: usize,
    reasoning: usize,
    /// As [`Delta::has_text_field`].
    text_field: bool,
    /// A `role` key is present.
    role: bool,
}

fn message_fast<'a>(s: &mut Scanner<'a>, hole: &mut Holes<'a>) -> Scan<MessageFacts> {
    let (mut seen, mut answer, mut reasoning, mut copy) = (0, 0, 0, 0);
    let (mut text_field, mut role) = (false, false);
    let mut len = |s: &mut Scanner<'a>, is_reasoning: bool| {
        let t = s.opt_string()?;
        hole.add(t, is_reasoning);
        text_field |= t.is_some();
        Ok(t.map_or(0, |t| t.decoded_len))
    };
    s.object(|s, key| match key {
        b"content" => {
            first_time(&mut seen, 1)?;
            answer = len(s, false)?;
            Ok(())
        }
        b"reasoning" => {
            first_time(&mut seen, 2)?;
            reasoning = len(s, true)?;
            Ok(())
        }
        b"reasoning_content" => {
            first_time(&mut seen, 4)?;
            copy = len(s, true)?;
            Ok(())
        }
        b"role" => {
            first_time(&mut seen, 8)?;
            role = true;
            s.skip()
        }
        // Tool-call deltas: the reference decoding (rare, and its arguments are text).
        b"tool_calls" => {
            if s.null()? {
                Ok(())
            } else {
                Err(Miss)
            }
        }
        _ => s.skip(),
    })?;
    Ok(MessageFacts {
        answer,
        reasoning: reasoning.max(copy),
        text_field,
        role,
    })
}

fn usage_fast(s: &mut Scanner<'_>) -> Scan<Counts> {
    let mut seen = 0;
    let (mut u, mut details, mut top) = (Counts::default(), None, None);
    s.object(|s, key| match key {
        b"prompt_tokens" => {
            first_time(&mut seen, 1)?;
            u.prompt = s.opt_u64()?;
            Ok(())
        }
        b"completion_tokens" => {
            first_time(&mut seen, 2)?;
            u.completion = s.opt_u64()?;
            Ok(())
        }
        b"reasoning_tokens" => {
            first_time(&mut seen, 4)?;
            top = s.opt_u64()?;
            Ok(())
        }
        b"completion_tokens_details" => {
            first_time(&mut seen, 8)?;
            if !s.null()? {
                details = details_fast(s)?;
            }
            Ok(())
        }
        b"prompt_tokens_details" => {
            first_time(&mut seen, 16)?;
            if !s.null()? {
                u.cached = count_field_fast(s, b"cached_tokens")?;
            }
            Ok(())
        }
        _ => s.skip(),
    })?;
    u.reasoning = details.or(top);
    Ok(u)
}

/// `reasoning_tokens` of a `completion_tokens_details` object.
fn details_fast(s: &mut Scanner<'_>) -> Scan<Option<u64>> {
    count_field_fast(s, b"reasoning_tokens")
}

/// One count field of an object (`reasoning_tokens`, `cached_tokens`).
fn count_field_fast(s: &mut Scanner<'_>, field: &[u8]) -> Scan<Option<u64>> {
    let (mut seen, mut n) = (0, None);
    s.object(|s, key| {
        if key == field {
            first_time(&mut seen, 1)?;
            n = s.opt_u64()?;
            Ok(())
        } else {
            s.skip()
        }
    })?;
    Ok(n)
}

#[derive(Default)]
pub(crate) struct StreamDecoder {
    done: bool,
    /// Cumulative completion tokens of the last usage seen.
    usage_so_far: u64,
    /// The last event decoded in full with one text string, as a template for the next
    /// ones (see [`crate::dialect::template`]).
    template: Option<Template<Base>>,
    /// When a final chunk with an empty text field arrived (see [`Facts::empty_final`]).
    empty_final_ns: Option<u64>,
    /// The tool calls whose (empty) arguments that final chunk carried.
    empty_final_tools: Vec<u64>,
}

impl StreamDecoder {
    fn apply(&mut self, f: Facts<'_>, t_ns: u64, acc: &mut Accum) {
        let (empty_token, empty_final) = (f.empty_token(), f.empty_final());
        if let Some(r) = f.finish_reason {
            acc.finish_reason = Some(r.into_owned());
            acc.complete = true;
        }
        let mut delta = None;
        if let Some(u) = f.usage {
            if let Some(p) = u.prompt {
                acc.server_prompt_tokens = to_u32(Some(p));
            }
            if let Some(c) = u.cached {
                acc.server_cached_tokens = to_u32(Some(c));
            }
            if let Some(c) = u.completion {
                acc.server_output_tokens = to_u32(Some(c));
                delta = Some(c.saturating_sub(self.usage_so_far));
                self.usage_so_far = self.usage_so_far.max(c);
            }
            if let Some(r) = u.reasoning {
                acc.reasoning.server_tokens = to_u32(Some(r));
            }
        }
        let d = delta.unwrap_or(0);
        // A usage increase without text is an event only in continuous-usage streams
        // (every earlier event counted); otherwise it is the final usage-only chunk.
        let continuous = !acc.events.is_empty() && acc.counted_events == acc.events.len();
        let text = f.answer + f.reasoning;
        for (key, _) in &f.tool_args {
            acc.tools.start(*key);
        }
        if text > 0 || empty_token || (d > 0 && continuous) {
            for (key, args) in &f.tool_args {
                if let Some(args) = args {
                    acc.tools.arguments(*key, args, acc.events.len(), t_ns);
                }
            }
            acc.reasoning
                .event(acc.events.len(), t_ns, f.reasoning, f.answer);
            acc.push(t_ns, d.min(u32::MAX as u64) as u32, text);
            if delta.is_some() {
                acc.counted_events += 1;
            }
        } else if empty_final {
            self.empty_final_ns = Some(t_ns);
            self.empty_final_tools = f
                .tool_args
                .iter()
                .filter(|(_, a)| a.is_some())
                .map(|(k, _)| *k)
                .collect();
        }
    }

    /// A final chunk with an empty text field is the last token when the server's total
    /// is exactly one more than the events seen (see [`Facts::empty_final`]).
    fn settle_empty_final(&mut self, acc: &mut Accum) {
        let (Some(t_ns), Some(total)) = (self.empty_final_ns.take(), acc.server_output_tokens)
        else {
            return;
        };
        if total as usize == acc.events.len() + 1 {
            for key in std::mem::take(&mut self.empty_final_tools) {
                acc.tools.arguments(key, "", acc.events.len(), t_ns);
            }
            acc.reasoning.event(acc.events.len(), t_ns, 0, 0);
            acc.push(t_ns, 0, 0);
        }
    }
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
        if let Some(t) = &self.template
            && let Some(hole) = t.fill(data)
        {
            let facts = t.base.with_hole(hole.decoded_len);
            self.apply(facts, t_ns, acc);
            return true;
        }
        let facts = match Facts::fast(data) {
            Ok(f) => {
                self.template = template_of(data, &f);
                f
            }
            Err(Miss) => match Facts::reference(data) {
                Ok(f) => f,
                Err(NoFacts::Malformed(e)) => {
                    acc.fail_protocol(format_args!("malformed event: {e}"));
                    return false;
                }
                Err(NoFacts::ServerError(msg)) => {
                    acc.server_error = Some(msg);
                    return false;
                }
            },
        };
        self.apply(facts, t_ns, acc);
        true
    }

    fn finish(&mut self, acc: &mut Accum, ctx: &ReqCtx, _eof: bool) {
        let n = acc.events.len();
        if n > 0 && acc.counted_events == n {
            // Continuous usage counted every event; a final chunk's token came with
            // a usage increase, so it already is one.
            acc.keep_counts("usage_delta");
        } else {
            self.settle_empty_final(acc);
            // Without continuous usage, ignore_eos alone is no contract on an
            // OpenAI-style server (many silently drop unknown fields).
            let ctx = ReqCtx {
                ignore_eos_sent: false,
                ..*ctx
            };
            settle_counts(acc, &ctx);
        }
    }
}

pub(crate) fn parse_answer(body: &[u8], t_ns: u64, ctx: &ReqCtx, acc: &mut Accum) {
    let chunk: Chunk = match serde_json::from_slice(body) {
        Ok(c) => c,
        Err(e) => {
            acc.fail_protocol(format_args!("malformed answer: {e}"));
            return;
        }
    };
    if let Some(msg) = chunk.error() {
        acc.server_error = Some(msg);
        return;
    }
    let Some(choice) = chunk.choices.as_ref().and_then(|c| c.first()) else {
        acc.fail_protocol("answer without choices");
        return;
    };
    acc.finish_reason = choice.finish_reason.as_ref().map(|r| r.to_string());
    if let Some(u) = chunk.usage.map(Counts::from) {
        acc.server_output_tokens = to_u32(u.completion);
        acc.server_prompt_tokens = to_u32(u.prompt);
        acc.server_cached_tokens = to_u32(u.cached);
        acc.reasoning.server_tokens = to_u32(u.reasoning);
    }
    acc.complete = true;
    let ctx = ReqCtx {
        ignore_eos_sent: false,
        ..*ctx
    };
    crate::dialect::adapter::settle_single(acc, &ctx, t_ns);
    let (answer, reasoning) = choice_text_len(choice);
    acc.reasoning.whole_answer(reasoning, answer);
    if let Some(m) = &choice.message {
        for args in m.arguments() {
            acc.tools.whole_text(args);
        }
    }
}

#[cfg(test)]
mod fast_tests;

#[cfg(test)]
mod reasoning_tests;
