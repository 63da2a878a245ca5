//! SGLang's native API (0.4/0.5 series): `POST /generate`, `GET /get_model_info`,
//! `GET /health_generate`.
//!
//! Bytes as SGLang writes them (`srt/entrypoints/http_server.py` `generate_request`,
//! `srt/managers/tokenizer_manager.py`), FastAPI/uvicorn underneath:
//! - request `{"text" | "input_ids", "sampling_params": {..}, "stream"}` (a dataclass:
//!   unknown top-level keys are ignored). `sampling_params` become `SamplingParams(**d)`:
//!   an unknown key or a wrong type raises a `TypeError`, which nothing catches (500
//!   `Internal Server Error` text/plain; once streaming, a cut connection).
//!   `max_new_tokens` defaults to 128 (0 is allowed: an empty answer).
//! - wrong top-level types or bad JSON: FastAPI's validation error, turned into 400
//!   `{"object":"error","message":..,"type":"Bad Request","param":null,"code":400}`.
//! - `ValueError`s (no prompt, a prompt at or over the context length, prompt +
//!   `max_new_tokens` at or over it): 400 `{"error":{"message":..}}` when not streamed; on
//!   a stream the 200 is already out, so the error is a `data: {"error":{"message":..}}`
//!   event followed by `data: [DONE]`.
//! - stream: `text/event-stream; charset=utf-8`, one `data: {orjson}\n\n` per decode step
//!   (`--stream-interval 1`): `{"text": <output so far>, "output_ids": [<ids so far>],
//!   "meta_info": {"id", "finish_reason": null, "prompt_tokens", "weight_version",
//!   "completion_tokens", "cached_tokens"}}`; the last has `finish_reason`
//!   `{"type":"length","length":N}` or `{"type":"stop","matched":<eos id>}` and
//!   `e2e_latency`; then `data: [DONE]\n\n`. The text never includes the prompt and
//!   skips the EOS token; `output_ids` and `completion_tokens` count it.
//! - not streamed: the last object alone, `application/json` (compact).
//! - injected 429/500/503: `{"object":"error","message",..,"type":"<status>","code"}`,
//!   the shape of the server's `HTTPException` handler.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use crate::dialect::request::{Ctx, Gen};
use crate::dialect::respond::{JSON, push_json_str, response, uvicorn_500};
use crate::dialect::state::AppState;
use crate::dialect::stream::{Framer, cut_body, stream_body};
use crate::dialect::tokens::{Job, Tok};
use crate::faults::Fault;
use crate::truth::Outcome;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/generate", post(generate).put(generate))
        .route("/get_model_info", get(model_info))
        .route("/health_generate", get(|| async { StatusCode::OK }))
}

/// `text/event-stream` as Starlette's `StreamingResponse` sends it (text types get a
/// charset).
const SSE_UTF8: &str = "text/event-stream; charset=utf-8";

/// SamplingParams keyword arguments of SGLang 0.4/0.5 (others raise `TypeError`).
const SAMPLING_KEYS: [&str; 25] = [
    "max_new_tokens",
    "stop",
    "stop_token_ids",
    "stop_regex",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "frequency_penalty",
    "presence_penalty",
    "repetition_penalty",
    "min_new_tokens",
    "n",
    "json_schema",
    "regex",
    "ebnf",
    "structural_tag",
    "ignore_eos",
    "skip_special_tokens",
    "spaces_between_special_tokens",
    "no_stop_trim",
    "custom_params",
    "stream_interval",
    "logit_bias",
    "sampling_seed",
];

async fn model_info(State(st): State<Arc<AppState>>) -> Response {
    let body = json!({
        "model_path": st.profile.model,
        "tokenizer_path": st.profile.model,
        "is_generation": true,
        "preferred_sampling_params": null,
        "weight_version": "default",
    });
    response(
        StatusCode::OK,
        Some(JSON),
        serde_json::to_vec(&body).expect("json"),
    )
}

/// FastAPI's request validation error, as SGLang's handler answers it (400).
fn validation_error(message: &str) -> Response {
    let body = json!({"object": "error", "message": message, "type": "Bad Request", "param": null, "code": 400});
    response(
        StatusCode::BAD_REQUEST,
        Some(JSON),
        serde_json::to_vec(&body).expect("json"),
    )
}

/// `_create_error_response`: a `ValueError` on a non-streamed request.
fn value_error(message: &str) -> Response {
    let body = json!({"error": {"message": message}});
    response(
        StatusCode::BAD_REQUEST,
        Some(JSON),
        serde_json::to_vec(&body).expect("json"),
    )
}

/// A `ValueError` raised inside the stream generator: 200, one error event, `[DONE]`.
fn stream_value_error(message: &str) -> Response {
    let mut b = b"data: ".to_vec();
    b.extend_from_slice(
        &serde_json::to_vec(&json!({"error": {"message": message}})).expect("json"),
    );
    b.extend_from_slice(b"\n\ndata: [DONE]\n\n");
    response(StatusCode::OK, Some(SSE_UTF8), b)
}

/// An injected HTTP error fault, in the shape of SGLang's `HTTPException` handler.
fn injected_error(status: StatusCode) -> Response {
    let message = match status {
        StatusCode::TOO_MANY_REQUESTS => "The server is overloaded, retry later.",
        StatusCode::SERVICE_UNAVAILABLE => "Service Unavailable",
        _ => "Simulated internal error.",
    };
    let body = json!({"object": "error", "message": message, "type": status.as_u16().to_string(), "param": null, "code": status.as_u16()});
    response(status, Some(JSON), serde_json::to_vec(&body).expect("json"))
}

struct Parsed {
    prompt_tokens: Result<u32, &'static str>,
    stream: bool,
    /// `Err` when `SamplingParams(**d)` would raise (a `TypeError`: 500).
    max_new_tokens: Result<u32, ()>,
    ignore_eos: bool,
    /// The prompt's block hashes for the engine's prefix cache (empty without one).
    prefix: Vec<u64>,
}

/// The request as FastAPI and `GenerateReqInput` see it; `Err` is the validation
/// error's message.
fn parse(
    body: &[u8],
    hasher: Option<crate::engine::prefix::BlockHasher>,
) -> Result<Parsed, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("JSON decode error: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("Input should be a valid dictionary or object to extract fields from".into());
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("stream: Input should be a valid boolean".into()),
    };
    let prompt_tokens = match (obj.get("text"), obj.get("input_ids")) {
        (Some(Value::String(s)), None | Some(Value::Null)) => Ok(crate::words::count_words(s)),
        (None | Some(Value::Null), Some(Value::Array(ids)))
            if ids.iter().all(|x| x.as_u64().is_some()) =>
        {
            Ok(ids.len() as u32)
        }
        (None | Some(Value::Null), None | Some(Value::Null)) => {
            Err("Either text, input_ids or input_embeds should be provided.")
        }
        (Some(Value::Array(_)), _) | (_, Some(Value::Array(_))) => {
            Err("The simulator serves one prompt per request.")
        }
        (Some(Value::String(_)), Some(_)) => {
            Err("Either text, input_ids or input_embeds should be provided.")
        }
        _ => return Err("text: Input should be a valid string".into()),
    };
    let (max_new_tokens, ignore_eos) = match obj.get("sampling_params") {
        None | Some(Value::Null) => (Ok(128), false),
        Some(Value::Object(sp)) => sampling(sp),
        Some(_) => return Err("sampling_params: Input should be a valid dictionary".into()),
    };
    let prefix = match hasher {
        Some(mut h) if prompt_tokens.is_ok() => {
            let prompt = obj.get("text").filter(|t| !t.is_null());
            if let Some(p) = prompt.or_else(|| obj.get("input_ids")) {
                crate::engine::prefix::hash_prompt(&mut h, p);
            }
            h.finish()
        }
        _ => Vec::new(),
    };
    Ok(Parsed {
        prompt_tokens,
        stream,
        max_new_tokens,
        ignore_eos,
        prefix,
    })
}

/// `max_new_tokens` and `ignore_eos` from `SamplingParams(**d)`.
fn sampling(sp: &serde_json::Map<String, Value>) -> (Result<u32, ()>, bool) {
    if sp.keys().any(|k| !SAMPLING_KEYS.contains(&k.as_str())) {
        return (Err(()), false);
    }
    let max = match sp.get("max_new_tokens") {
        None => Ok(128),
        Some(Value::Number(n)) => n
            .as_u64()
            .filter(|&m| m <= u32::MAX as u64)
            .map(|m| m as u32)
            .ok_or(()),
        Some(_) => Err(()),
    };
    let ignore_eos = sp
        .get("ignore_eos")
        .is_some_and(crate::dialect::sampling::truthy);
    (max, ignore_eos)
}

/// `_validate_one_request`: the context-length checks (`ValueError`s).
fn validate(st: &AppState, input: u32, max: u32) -> Result<(), String> {
    let ctx = st.profile.max_total_tokens;
    if input >= ctx {
        return Err(format!(
            "The input ({input} tokens) is longer than the model's context length ({ctx} tokens)."
        ));
    }
    let total = input as u64 + max as u64;
    if total >= ctx as u64 || !st.engine_fits(input, max) {
        return Err(format!(
            "Requested token count exceeds the model's maximum context length of {ctx} tokens. You requested a total of {total} tokens: {input} tokens from the input messages and {max} tokens for the completion. Please reduce the number of tokens in the input messages or the completion to fit within the limit."
        ));
    }
    Ok(())
}

struct SglangFramer {
    rid: String,
    prompt_tokens: u32,
    max_new_tokens: u32,
    received_ns: u64,
    /// Prompt tokens found in the prefix cache (from the tokens).
    cached: u32,
    /// The output text so far, JSON-escaped, without quotes.
    text: Vec<u8>,
    /// The output ids so far, comma-separated.
    ids: Vec<u8>,
}

impl SglangFramer {
    fn object(&self, out: &mut BytesMut, completion: u32, last: Option<&Tok>) {
        out.extend_from_slice(b"{\"text\":\"");
        out.extend_from_slice(&self.text);
        out.extend_from_slice(b"\",\"output_ids\":[");
        out.extend_from_slice(&self.ids);
        out.extend_from_slice(b"],\"meta_info\":{\"id\":\"");
        out.extend_from_slice(self.rid.as_bytes());
        out.extend_from_slice(b"\",\"finish_reason\":");
        match last {
            None => out.extend_from_slice(b"null"),
            Some(t) if t.eos => out.extend_from_slice(
                format!("{{\"type\":\"stop\",\"matched\":{}}}", crate::words::EOS_ID).as_bytes(),
            ),
            Some(_) => out.extend_from_slice(
                format!("{{\"type\":\"length\",\"length\":{}}}", self.max_new_tokens).as_bytes(),
            ),
        }
        out.extend_from_slice(
            format!(
                ",\"prompt_tokens\":{},\"weight_version\":\"default\",\"completion_tokens\":{completion},\"cached_tokens\":{}",
                self.prompt_tokens, self.cached
            )
            .as_bytes(),
        );
        if let Some(t) = last {
            let secs = t.at_ns.saturating_sub(self.received_ns) as f64 / 1e9;
            out.extend_from_slice(format!(",\"e2e_latency\":{secs}").as_bytes());
        }
        out.extend_from_slice(b"}}");
    }

    fn add(&mut self, tok: &Tok) {
        self.cached = tok.cached;
        let (id, text) = tok.text();
        let mut esc = BytesMut::new();
        push_json_str(&mut esc, text);
        self.text.extend_from_slice(&esc[1..esc.len() - 1]);
        if !self.ids.is_empty() {
            self.ids.push(b',');
        }
        self.ids.extend_from_slice(id.to_string().as_bytes());
    }
}

impl Framer for SglangFramer {
    fn token(&mut self, tok: &Tok, out: &mut BytesMut) {
        self.add(tok);
        out.extend_from_slice(b"data: ");
        self.object(out, tok.index + 1, tok.last.then_some(tok));
        out.extend_from_slice(b"\n\n");
    }

    fn end(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

async fn generate(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut ctx = Ctx::begin(&st, &headers, "/generate", false);
    let mut p = match parse(&body, st.block_hasher()) {
        Ok(p) => p,
        Err(m) => return ctx.reject(Outcome::BadRequest, validation_error(&m)),
    };
    ctx.rec.stream = p.stream;
    let Ok(max) = p.max_new_tokens else {
        let resp = if p.stream {
            response(StatusCode::OK, Some(SSE_UTF8), cut_body())
        } else {
            uvicorn_500()
        };
        return ctx.reject(Outcome::BadRequest, resp);
    };
    let checked = p
        .prompt_tokens
        .map_err(str::to_string)
        .and_then(|input| validate(&st, input, max).map(|()| input));
    let input = match checked {
        Ok(input) => input,
        Err(m) => {
            let resp = if p.stream {
                stream_value_error(&m)
            } else {
                value_error(&m)
            };
            return ctx.reject(Outcome::ValidationError, resp);
        }
    };
    let rid = format!("{:032x}", crate::faults::mix(0x56, ctx.seq(), 5) as u128);
    let mut framer = SglangFramer {
        rid,
        prompt_tokens: input,
        max_new_tokens: max,
        received_ns: ctx.rec.received_ns,
        cached: 0,
        text: Vec::new(),
        ids: Vec::new(),
    };
    if max == 0 {
        return empty_answer(ctx, &framer, p.stream);
    }
    let g = Gen {
        prompt_tokens: input,
        max_tokens: max,
        ignore_eos: p.ignore_eos,
        min_tokens: 0,
    };
    let plan = st.plan(&mut ctx, &g);
    if let Some((outcome, status)) = plan.fault.as_ref().and_then(Fault::http_error) {
        return ctx.reject(outcome, injected_error(status));
    }
    ctx.prefix = std::mem::take(&mut p.prefix);
    let mut job = Job::start(ctx, plan);
    if p.stream {
        job.before_headers().await;
        return response(
            StatusCode::OK,
            Some(SSE_UTF8),
            stream_body(job, framer, None),
        );
    }
    let Ok(toks) = job.collect().await else {
        return job.ctx.reject_ref(uvicorn_500());
    };
    job.before_headers().await;
    for t in &toks {
        framer.add(t);
    }
    let mut out = BytesMut::new();
    framer.object(&mut out, toks.len() as u32, toks.last());
    if let Some(Fault::Disconnect { .. }) = job.plan.fault {
        job.ctx.finish(Outcome::Disconnect, 200);
        return response(StatusCode::OK, Some(JSON), cut_body());
    }
    job.ctx.finish(Outcome::Ok, 200);
    response(StatusCode::OK, Some(JSON), out.freeze())
}

/// `max_new_tokens: 0`: the prompt is only prefilled; the answer has no tokens.
fn empty_answer(mut ctx: Ctx, framer: &SglangFramer, stream: bool) -> Response {
    ctx.rec.prompt_tokens = framer.prompt_tokens;
    ctx.rec.finish_reason = Some("length".into());
    let mut out = BytesMut::new();
    let last = Tok {
        seq: ctx.seq(),
        index: 0,
        last: true,
        eos: false,
        at_ns: ctx.now_ns(),
        cached: 0,
    };
    if stream {
        out.extend_from_slice(b"data: ");
        framer.object(&mut out, 0, Some(&last));
        out.extend_from_slice(b"\n\ndata: [DONE]\n\n");
    } else {
        framer.object(&mut out, 0, Some(&last));
    }
    ctx.finish(Outcome::Ok, 200);
    let ct = if stream { SSE_UTF8 } else { JSON };
    response(StatusCode::OK, Some(ct), out.freeze())
}
