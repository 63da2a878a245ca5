//! The OpenAI dialect's request, as vLLM's OpenAI server (>= 0.10) reads it: the fields
//! used (see [`crate::dialect::openai`]), the 400 and 404 answers its validation gives
//! with vLLM's messages, and the context-length checks.

use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Map, Value, json};

use crate::dialect::respond::{JSON, response};
use crate::dialect::state::AppState;

/// vLLM's error object with `status`.
pub(crate) fn error(status: StatusCode, message: &str, kind: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": status.as_u16()}});
    response(status, Some(JSON), serde_json::to_vec(&body).expect("json"))
}

/// vLLM's Anthropic error object (`/v1/messages`) with `status`.
pub(crate) fn anthropic_error(status: StatusCode, message: &str, kind: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    response(status, Some(JSON), serde_json::to_vec(&body).expect("json"))
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Completion,
    Chat,
    /// The Responses API (`/v1/responses`): `input`, `max_output_tokens`.
    Responses,
    /// The Anthropic Messages API (`/v1/messages`): `messages`, `system`, `max_tokens`.
    Messages,
}

impl Kind {
    /// The error answer of this route: vLLM's OpenAI object, or Anthropic's for Messages.
    pub(crate) fn error(self, status: StatusCode, message: &str, kind: &str) -> Response {
        match self {
            Kind::Messages => anthropic_error(status, message, kind),
            _ => error(status, message, kind),
        }
    }

    pub(crate) fn bad_request(self, message: &str) -> Response {
        self.error(StatusCode::BAD_REQUEST, message, "BadRequestError")
    }
}

pub(crate) struct Parsed {
    pub(crate) prompt_tokens: u32,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) continuous_usage: bool,
    pub(crate) ignore_eos: bool,
    pub(crate) min_tokens: u32,
    /// The prompt text, for `echo` (completions).
    pub(crate) echo: Option<String>,
    /// The request lets the model think (`chat_template_kwargs` does not turn it off).
    pub(crate) thinking: bool,
    /// The prompt's block hashes for the engine's prefix cache (empty without one).
    pub(crate) prefix: Vec<u64>,
}

fn opt_u32(obj: &serde_json::Map<String, Value>, key: &str) -> Result<Option<u32>, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= u32::MAX as u64 => Ok(Some(v as u32)),
            _ => Err(format!(
                "{key}: Input should be a valid integer greater than or equal to 0"
            )),
        },
        Some(_) => Err(format!("{key}: Input should be a valid integer")),
    }
}

fn opt_bool(obj: &serde_json::Map<String, Value>, key: &str) -> Result<bool, String> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(format!("{key}: Input should be a valid boolean")),
    }
}

fn content_words(v: &Value) -> Result<u32, String> {
    match v {
        Value::String(s) => Ok(crate::words::count_words(s)),
        Value::Null => Ok(0),
        Value::Array(parts) => {
            let mut n = 0;
            for p in parts {
                match p.get("text") {
                    Some(Value::String(s)) => n += crate::words::count_words(s),
                    _ => return Err("messages.content: only text parts are supported".into()),
                }
            }
            Ok(n)
        }
        _ => Err("messages.content: Input should be a valid string or list".into()),
    }
}

pub(crate) fn parse(st: &AppState, kind: Kind, body: &[u8]) -> Result<Parsed, Response> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| kind.bad_request(&format!("JSON decode error: {e}")))?;
    let Value::Object(obj) = v else {
        return Err(
            kind.bad_request("Input should be a valid dictionary or object to extract fields from")
        );
    };
    check_model(st, kind, &obj)?;
    let bad = |m: String| kind.bad_request(&m);
    let (prompt_tokens, echo) = match kind {
        Kind::Completion => completion_prompt(&obj).map_err(bad)?,
        Kind::Chat => (chat_prompt(&obj).map_err(bad)?, None),
        Kind::Responses => (responses_prompt(&obj).map_err(bad)?, None),
        Kind::Messages => (
            chat_prompt(&obj).map_err(bad)?
                + content_words(obj.get("system").unwrap_or(&Value::Null)).map_err(bad)?,
            None,
        ),
    };
    let max_tokens = max_tokens(kind, &obj).map_err(bad)?;
    let stream = opt_bool(&obj, "stream").map_err(bad)?;
    let (include_usage, continuous_usage) = match kind {
        Kind::Completion | Kind::Chat => stream_options(&obj, stream).map_err(bad)?,
        // Their final events always carry the usage.
        Kind::Responses | Kind::Messages => (false, false),
    };
    if let Some(n) = opt_u32(&obj, "n").map_err(bad)?
        && n != 1
    {
        return Err(bad(
            "n: the simulator generates one choice per request".into()
        ));
    }
    let echo = if kind == Kind::Completion && opt_bool(&obj, "echo").map_err(bad)? {
        echo
    } else {
        None
    };
    // vLLM takes `ignore_eos` and `min_tokens` on its OpenAI routes only.
    let vllm_fields = matches!(kind, Kind::Completion | Kind::Chat);
    Ok(Parsed {
        prompt_tokens,
        max_tokens,
        stream,
        include_usage,
        continuous_usage,
        ignore_eos: vllm_fields && opt_bool(&obj, "ignore_eos").map_err(bad)?,
        min_tokens: if vllm_fields {
            opt_u32(&obj, "min_tokens").map_err(bad)?.unwrap_or(0)
        } else {
            0
        },
        echo,
        thinking: thinking(&obj).map_err(bad)?,
        prefix: prefix_hashes(st, kind, &obj),
    })
}

/// A Responses `input`: a string, or a list of messages (their contents' words).
fn responses_prompt(obj: &Map<String, Value>) -> Result<u32, String> {
    match obj.get("input") {
        Some(Value::String(s)) => Ok(crate::words::count_words(s)),
        Some(Value::Array(items)) if !items.is_empty() => {
            let mut n = 0;
            for m in items {
                n += content_words(m.get("content").unwrap_or(&Value::Null))?;
            }
            Ok(n)
        }
        None => Err("input: Field required".into()),
        Some(_) => Err("input: Input should be a valid string or a non-empty list".into()),
    }
}

/// A `model` other than the served one is a 404, as vLLM answers it.
fn check_model(st: &AppState, kind: Kind, obj: &Map<String, Value>) -> Result<(), Response> {
    match obj.get("model") {
        None | Some(Value::Null) if kind == Kind::Messages => {
            Err(kind.bad_request("model: Field required"))
        }
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(m)) if *m == st.profile.model => Ok(()),
        Some(Value::String(m)) => Err(kind.error(
            StatusCode::NOT_FOUND,
            &format!("The model `{m}` does not exist."),
            "NotFoundError",
        )),
        Some(_) => Err(kind.bad_request("model: Input should be a valid string")),
    }
}

/// A completion's prompt: its token count, and its text for `echo` (none for token ids).
fn completion_prompt(obj: &Map<String, Value>) -> Result<(u32, Option<String>), String> {
    let is_ids = |a: &[Value]| a.iter().all(|x| x.as_u64().is_some());
    match obj.get("prompt") {
        Some(Value::String(s)) => Ok((crate::words::count_words(s), Some(s.clone()))),
        Some(Value::Array(a)) if a.len() == 1 && a[0].is_string() => {
            let s = a[0].as_str().expect("checked").to_owned();
            Ok((crate::words::count_words(&s), Some(s)))
        }
        Some(Value::Array(a)) if !a.is_empty() && is_ids(a) => Ok((a.len() as u32, None)),
        Some(Value::Array(a)) if a.len() == 1 && a[0].as_array().is_some_and(|ids| is_ids(ids)) => {
            Ok((a[0].as_array().expect("checked").len() as u32, None))
        }
        Some(Value::Array(a)) if a.len() > 1 => {
            Err("prompt: the simulator serves one prompt per request".into())
        }
        None => Err("prompt: Field required".into()),
        Some(_) => Err("prompt: Input should be a valid string or a list of token ids".into()),
    }
}

/// A chat's prompt token count: the words of every message's content.
fn chat_prompt(obj: &Map<String, Value>) -> Result<u32, String> {
    match obj.get("messages") {
        Some(Value::Array(msgs)) if !msgs.is_empty() => {
            let mut n = 0;
            for m in msgs {
                if !m.get("role").is_some_and(Value::is_string) {
                    return Err("messages.role: Field required".into());
                }
                n += content_words(m.get("content").unwrap_or(&Value::Null))?;
            }
            Ok(n)
        }
        None => Err("messages: Field required".into()),
        Some(_) => Err("messages: Input should be a non-empty list".into()),
    }
}

/// The output limit: completions default to 16; chat prefers `max_completion_tokens`
/// and has no default. Never 0.
fn max_tokens(kind: Kind, obj: &Map<String, Value>) -> Result<Option<u32>, String> {
    let max_tokens = match kind {
        Kind::Completion => Some(opt_u32(obj, "max_tokens")?.unwrap_or(16)),
        Kind::Chat => match opt_u32(obj, "max_completion_tokens")? {
            Some(m) => Some(m),
            None => opt_u32(obj, "max_tokens")?,
        },
        Kind::Responses => opt_u32(obj, "max_output_tokens")?,
        Kind::Messages => Some(opt_u32(obj, "max_tokens")?.ok_or("max_tokens: Field required")?),
    };
    if max_tokens == Some(0) {
        return Err("max_tokens must be at least 1, got 0.".into());
    }
    Ok(max_tokens)
}

/// `stream_options`: (`include_usage`, `continuous_usage_stats`), only with a stream.
fn stream_options(obj: &Map<String, Value>, stream: bool) -> Result<(bool, bool), String> {
    match obj.get("stream_options") {
        None | Some(Value::Null) => Ok((false, false)),
        Some(Value::Object(so)) => {
            if !stream {
                return Err("Stream options can only be defined when `stream=True`.".into());
            }
            Ok((
                opt_bool(so, "include_usage")?,
                opt_bool(so, "continuous_usage_stats")?,
            ))
        }
        Some(_) => Err("stream_options: Input should be an object".into()),
    }
}

/// The prompt's block hashes when the engine caches prefixes (the prompt is valid).
fn prefix_hashes(st: &AppState, kind: Kind, obj: &serde_json::Map<String, Value>) -> Vec<u64> {
    let Some(mut h) = st.block_hasher() else {
        return Vec::new();
    };
    match (kind, obj.get("prompt"), obj.get("messages")) {
        (Kind::Completion, Some(p), _) => crate::engine::prefix::hash_prompt(&mut h, p),
        (Kind::Chat | Kind::Messages, _, Some(Value::Array(msgs))) => {
            crate::engine::prefix::hash_messages(&mut h, msgs)
        }
        (Kind::Responses, _, _) => match obj.get("input") {
            Some(Value::Array(msgs)) => crate::engine::prefix::hash_messages(&mut h, msgs),
            Some(p) => crate::engine::prefix::hash_prompt(&mut h, p),
            None => {}
        },
        _ => {}
    }
    h.finish()
}

/// False when `chat_template_kwargs.enable_thinking` (Qwen3) or `.thinking`
/// (DeepSeek-V3.1) is false: the request asks the model not to reason.
fn thinking(obj: &serde_json::Map<String, Value>) -> Result<bool, String> {
    match obj.get("chat_template_kwargs") {
        None | Some(Value::Null) => Ok(true),
        Some(Value::Object(k)) => Ok(["enable_thinking", "thinking"]
            .iter()
            .all(|key| k.get(*key) != Some(&Value::Bool(false)))),
        Some(_) => Err("chat_template_kwargs: Input should be a valid dictionary".into()),
    }
}

/// vLLM's context-length checks; returns the resolved max_tokens.
pub(crate) fn validate(st: &AppState, p: &Parsed) -> Result<u32, String> {
    let ctx = st.profile.max_total_tokens;
    let input = p.prompt_tokens;
    if input == 0 {
        return Err("The prompt is empty.".into());
    }
    if input >= ctx {
        return Err(format!(
            "This model's maximum context length is {ctx} tokens. However, your request has {input} input tokens. Please reduce the length of the input messages."
        ));
    }
    let max = p.max_tokens.unwrap_or(ctx - input);
    if input as u64 + max as u64 > ctx as u64 {
        return Err(format!(
            "'max_tokens' or 'max_completion_tokens' is too large: {max}. This model's maximum context length is {ctx} tokens and your request has {input} input tokens ({max} > {ctx} - {input})."
        ));
    }
    if p.min_tokens > max {
        return Err(format!(
            "min_tokens must be less than or equal to max_tokens={max}, got {}.",
            p.min_tokens
        ));
    }
    if !st.engine_fits(input, max) {
        return Err(format!(
            "The request ({input} + {max} tokens) does not fit the KV cache."
        ));
    }
    Ok(max)
}
