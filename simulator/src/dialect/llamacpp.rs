//! llama.cpp's `llama-server` native API: `POST /completion` (and its alias
//! `/completions`), `GET /props`.
//!
//! Bytes as `llama-server` writes them (`tools/server/server-task.cpp`
//! `to_json_non_oaicompat`, `server-common.cpp`, and a captured stream of build
//! b1-0c1e570 in the replayer's fixtures):
//! - request: `prompt` (a string or token ids; missing: 400 `"prompt" must be
//!   provided`), `n_predict` (or `max_tokens`; default -1: until the context is full),
//!   `ignore_eos`, `stream`. Fields of the wrong type fall back to their defaults (the
//!   server's `json_value`); unknown fields are ignored. Bad JSON is a 500 with the JSON
//!   library's parse error.
//! - errors: `{"error":{"code","message","type"}}`: 400 `invalid_request_error`, 400
//!   `exceed_context_size_error` (a prompt of at least the context size, also with
//!   `n_prompt_tokens` and `n_ctx`), 500 `server_error`; injected 429 / 503 use the same
//!   shape (`unavailable_error`).
//! - stream: `text/event-stream`, one `data: {..}\n\n` per token:
//!   `{"index":0,"content":..,"tokens":[id],"stop":false,"id_slot":-1,
//!   "tokens_predicted":k,"tokens_evaluated":P}`, then a final
//!   `{"index":0,"content":"","tokens":[],"id_slot":0,"stop":true,"model",..,
//!   "tokens_predicted","tokens_evaluated","generation_settings","prompt","has_new_line",
//!   "truncated","stop_type":"limit"|"eos","stopping_word","tokens_cached","timings"}`;
//!   no `[DONE]`. The EOS token is an event with empty content (it counts in
//!   `tokens_predicted`).
//! - not streamed: the final object with the whole `content` and `tokens`,
//!   `application/json; charset=utf-8`.
//! - generation stops at the context size (`stop_type: limit`); `n_predict: 0` yields
//!   one token here (the engine model's floor).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use crate::dialect::request::{Ctx, Gen};
use crate::dialect::respond::{push_json_str, response};
use crate::dialect::state::AppState;
use crate::dialect::stream::{Framer, cut_body, stream_body};
use crate::dialect::tokens::{Job, Tok};
use crate::faults::Fault;
use crate::truth::Outcome;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/completion", post(completion))
        .route("/completions", post(completion))
        .route("/props", get(props))
}

const JSON_UTF8: &str = "application/json; charset=utf-8";
const SSE: &str = "text/event-stream";

/// The headers every `llama-server` answer carries.
fn server_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("server", HeaderValue::from_static("llama.cpp"));
    h.insert("access-control-allow-origin", HeaderValue::from_static(""));
    r
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    server_headers(response(
        status,
        Some(JSON_UTF8),
        serde_json::to_vec(body).expect("json"),
    ))
}

fn error(status: StatusCode, message: &str, kind: &str) -> Response {
    json_response(
        status,
        &json!({"error": {"code": status.as_u16(), "message": message, "type": kind}}),
    )
}

async fn props(State(st): State<Arc<AppState>>) -> Response {
    let p = &st.profile;
    json_response(
        StatusCode::OK,
        &json!({
            "default_generation_settings": {"n_ctx": p.max_total_tokens, "params": {"n_predict": -1}},
            "total_slots": 4,
            "model_path": p.model,
            "build_info": "b1-llmib-sim",
        }),
    )
}

/// `json_value(body, key, default)`: the field when present and of the right type.
fn int_or(obj: &serde_json::Map<String, Value>, key: &str, default: i64) -> i64 {
    obj.get(key).and_then(Value::as_i64).unwrap_or(default)
}

fn bool_or(obj: &serde_json::Map<String, Value>, key: &str) -> bool {
    obj.get(key).and_then(Value::as_bool).unwrap_or(false)
}

struct Parsed {
    prompt: String,
    prompt_tokens: u32,
    n_predict: i64,
    ignore_eos: bool,
    stream: bool,
}

fn parse(body: &[u8]) -> Result<Parsed, Response> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("[json.exception.parse_error.101] parse error: {e}"),
            "server_error",
        )
    })?;
    let empty = serde_json::Map::new();
    let obj = v.as_object().unwrap_or(&empty);
    let (prompt, prompt_tokens) = match obj.get("prompt") {
        Some(Value::String(s)) => (s.clone(), crate::words::count_words(s)),
        Some(Value::Array(ids)) if ids.iter().all(|x| x.as_u64().is_some()) => {
            (String::new(), ids.len() as u32)
        }
        Some(_) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "\"prompt\" must be a string, a list of tokens, or a list of mixed strings & tokens",
                "invalid_request_error",
            ));
        }
        None => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "\"prompt\" must be provided",
                "invalid_request_error",
            ));
        }
    };
    Ok(Parsed {
        prompt,
        prompt_tokens,
        n_predict: int_or(obj, "n_predict", int_or(obj, "max_tokens", -1)),
        ignore_eos: bool_or(obj, "ignore_eos"),
        stream: bool_or(obj, "stream"),
    })
}

struct LlamaFramer {
    model: String,
    prompt: String,
    prompt_tokens: u32,
    p: (i64, bool, bool),
    received_ns: u64,
    first_ns: Option<u64>,
    /// Whole answer (non-streamed): text and ids.
    text: String,
    ids: Vec<u32>,
}

impl LlamaFramer {
    /// The final object; `stream` leaves `content` and `tokens` empty.
    fn last(&self, out: &mut BytesMut, tok: &Tok, stream: bool) {
        let n = tok.index + 1;
        let first = self.first_ns.unwrap_or(tok.at_ns);
        let prompt_ms = first.saturating_sub(self.received_ns) as f64 / 1e6;
        let predicted_ms = tok.at_ns.saturating_sub(first) as f64 / 1e6;
        let per = |ms: f64, k: u32| if k > 0 { ms / k as f64 } else { 0.0 };
        let rate = |ms: f64, k: u32| if ms > 0.0 { 1e3 * k as f64 / ms } else { 0.0 };
        let (n_predict, ignore_eos, s) = self.p;
        let body = json!({
            "index": 0,
            "content": if stream { "" } else { self.text.as_str() },
            "tokens": if stream { &[][..] } else { &self.ids[..] },
            "id_slot": 0,
            "stop": true,
            "model": self.model,
            "tokens_predicted": n,
            "tokens_evaluated": self.prompt_tokens,
            "generation_settings": {"n_predict": n_predict, "ignore_eos": ignore_eos, "stream": s, "seed": 4294967295u32, "temperature": 0.8},
            "prompt": self.prompt,
            "has_new_line": false,
            "truncated": false,
            "stop_type": if tok.eos { "eos" } else { "limit" },
            "stopping_word": "",
            "tokens_cached": self.prompt_tokens + n - 1,
            "timings": {
                "cache_n": 0,
                "prompt_n": self.prompt_tokens,
                "prompt_ms": prompt_ms,
                "prompt_per_token_ms": per(prompt_ms, self.prompt_tokens),
                "prompt_per_second": rate(prompt_ms, self.prompt_tokens),
                "predicted_n": n,
                "predicted_ms": predicted_ms,
                "predicted_per_token_ms": per(predicted_ms, n),
                "predicted_per_second": rate(predicted_ms, n),
            },
        });
        out.extend_from_slice(&serde_json::to_vec(&body).expect("json"));
    }
}

impl Framer for LlamaFramer {
    fn token(&mut self, tok: &Tok, out: &mut BytesMut) {
        self.first_ns.get_or_insert(tok.at_ns);
        let (id, text) = tok.text();
        out.extend_from_slice(b"data: {\"index\":0,\"content\":");
        push_json_str(out, text);
        out.extend_from_slice(
            format!(
                ",\"tokens\":[{id}],\"stop\":false,\"id_slot\":-1,\"tokens_predicted\":{},\"tokens_evaluated\":{}}}\n\n",
                tok.index + 1,
                self.prompt_tokens
            )
            .as_bytes(),
        );
        if tok.last {
            out.extend_from_slice(b"data: ");
            self.last(out, tok, true);
            out.extend_from_slice(b"\n\n");
        }
    }
}

async fn completion(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut ctx = Ctx::begin(&st, &headers, "/completion", false);
    let p = match parse(&body) {
        Ok(p) => p,
        Err(resp) => return ctx.reject(Outcome::BadRequest, resp),
    };
    ctx.rec.stream = p.stream;
    let n_ctx = st.profile.max_total_tokens;
    let input = p.prompt_tokens;
    if input >= n_ctx {
        ctx.rec.prompt_tokens = input;
        let resp = json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": {"code": 400, "message": format!("request ({input} tokens) exceeds the available context size ({n_ctx} tokens), try increasing it"), "type": "exceed_context_size_error", "n_prompt_tokens": input, "n_ctx": n_ctx}}),
        );
        return ctx.reject(Outcome::ValidationError, resp);
    }
    // Generation stops when the context is full.
    let room = n_ctx - input;
    let max = if p.n_predict < 0 {
        room
    } else {
        (p.n_predict.min(u32::MAX as i64) as u32).min(room)
    };
    let g = Gen {
        prompt_tokens: input,
        max_tokens: max,
        ignore_eos: p.ignore_eos,
        min_tokens: 0,
    };
    let plan = st.plan(&mut ctx, &g);
    if let Some((outcome, status)) = plan.fault.as_ref().and_then(Fault::http_error) {
        let (message, kind) = match status {
            StatusCode::INTERNAL_SERVER_ERROR => ("Simulated internal error.", "server_error"),
            StatusCode::SERVICE_UNAVAILABLE => ("Loading model", "unavailable_error"),
            _ => (
                "The server is overloaded, retry later.",
                "unavailable_error",
            ),
        };
        return ctx.reject(outcome, error(status, message, kind));
    }
    let mut framer = LlamaFramer {
        model: st.profile.model.clone(),
        prompt: p.prompt.clone(),
        prompt_tokens: input,
        p: (p.n_predict, p.ignore_eos, p.stream),
        received_ns: ctx.rec.received_ns,
        first_ns: None,
        text: String::new(),
        ids: Vec::new(),
    };
    let mut job = Job::start(ctx, plan);
    if p.stream {
        job.before_headers().await;
        let mut r = server_headers(response(
            StatusCode::OK,
            Some(SSE),
            stream_body(job, framer, None),
        ));
        r.headers_mut()
            .insert("x-accel-buffering", HeaderValue::from_static("no"));
        return r;
    }
    let Ok(toks) = job.collect().await else {
        return job.ctx.reject_ref(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server shutting down",
            "server_error",
        ));
    };
    job.before_headers().await;
    for t in &toks {
        framer.first_ns.get_or_insert(t.at_ns);
        let (id, text) = t.text();
        framer.text.push_str(text);
        framer.ids.push(id);
    }
    let mut out = BytesMut::new();
    framer.last(&mut out, toks.last().expect("at least one token"), false);
    if let Some(Fault::Disconnect { .. }) = job.plan.fault {
        job.ctx.finish(Outcome::Disconnect, 200);
        return server_headers(response(StatusCode::OK, Some(JSON_UTF8), cut_body()));
    }
    job.ctx.finish(Outcome::Ok, 200);
    server_headers(response(StatusCode::OK, Some(JSON_UTF8), out.freeze()))
}
