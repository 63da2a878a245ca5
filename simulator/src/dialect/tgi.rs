//! text-generation-inference 1.0.2: `POST /generate`, `POST /generate_stream`.
//!
//! Bytes as TGI 1.0.2 (axum) writes them:
//! - stream: `data:{json}\n\n` (no space after the colon), one event per token,
//!   `{"token":{"id":..,"text":..,"logprob":..,"special":false},"generated_text":null,"details":null}`;
//!   the last event carries `generated_text` (and `details` when `details:true` was sent).
//!   No end marker: the body ends.
//! - stream headers: `text/event-stream`, `cache-control: no-cache`, `x-compute-type`,
//!   `x-compute-characters` (the prompt's characters), `x-accel-buffering: no`; a `:`
//!   keep-alive comment after 15 s without an event (axum's SSE keep-alive).
//! - not streamed: `{"generated_text":..}` plus `details` (finish_reason, generated_tokens,
//!   seed, prefill, tokens) when asked, and the headers `x-compute-type`,
//!   `x-compute-characters` and the timings in integer milliseconds (`x-compute-time`,
//!   `x-total-time`, `x-validation-time`, `x-queue-time`, `x-inference-time`,
//!   `x-time-per-token`). `x-prompt-tokens` and `x-generated-tokens` came in TGI 1.4.
//! - `POST /` (`compat_generate`): `"stream": true` streams as `/generate_stream`;
//!   otherwise the `/generate` answer inside a JSON array, `[{"generated_text":..}]`.
//! - `GET /info`: the v1.0.2 tag reports version "1.0.1".
//! - errors: `{"error":..,"error_type":..}` with 422 `validation`, 429 `overloaded`, 424
//!   `generation` (the injected `generation_error`), 500 `incomplete_generation` (the
//!   injected 500); on `/generate_stream` TGI answers 200 and sends the error as a
//!   `data:{"error":..}` event: before any token (validation, overload) or after some
//!   (the injected 500 and generation error fail the generation after a uniform number
//!   of tokens in [0, n)). Checked in router/src/server.rs at v1.0.2: `impl
//!   From<InferError> for (StatusCode, Json<ErrorResponse>)` maps `GenerationError` to
//!   `FAILED_DEPENDENCY` (424); `generate_stream` yields `Event::from(err)` for an
//!   `Err` from the response stream and stops (no `incomplete_generation` after it).
//!   The message is `InferError`'s `Request failed during generation: {0}` around the
//!   shard's `Server error: ..` (router/src/infer.rs `send_errors`, fed to every request
//!   of the failed batch); the shard's text here is illustrative. A body that is not JSON or has wrong types gets
//!   axum's plain-text rejection (400 / 422), as TGI's own axum extractor gives.
//!
//! TGI cannot ignore EOS over HTTP. The simulator follows: with the profile's
//! `eos_probability` > 0 outputs may stop early (`finish_reason: eos_token`); with 0 (all
//! shipped profiles) every request yields exactly `max_new_tokens`, which is what the
//! original benchmark relied on. Injected 503s are real HTTP 503s on both routes (they
//! model a proxy in front of the server).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use serde::Deserialize;

use crate::dialect::request::{Ctx, Gen};
use crate::dialect::respond::{JSON, SSE, TEXT, push_json_str, response};
use crate::dialect::state::AppState;
use crate::dialect::stream::{Framer, stream_body};
use crate::dialect::tokens::{Job, Tok};
use crate::faults::Fault;
use crate::truth::Outcome;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", post(compat_generate))
        .route("/generate", post(generate))
        .route("/generate_stream", post(generate_stream))
        .route("/info", axum::routing::get(info))
}

/// `GET /info` (TGI 1.0.2 `Info`): what a client may read to discover limits.
async fn info(State(st): State<Arc<AppState>>) -> Response {
    let p = &st.profile;
    let body = serde_json::json!({
        "model_id": p.model,
        "model_sha": null,
        "model_dtype": "torch.float16",
        "model_device_type": "cuda",
        "model_pipeline_tag": "text-generation",
        "max_concurrent_requests": 10000,
        "max_best_of": 2,
        "max_stop_sequences": 4,
        "max_input_length": p.max_input_length,
        "max_total_tokens": p.max_total_tokens,
        "waiting_served_ratio": 1.2,
        "max_batch_total_tokens": p.engine(crate::Policy::Tgi).map(|e| e.kv_capacity_tokens).unwrap_or(u32::MAX as u64),
        "max_waiting_tokens": 20,
        "validation_workers": 2,
        // The v1.0.2 tag's Cargo.toml still said 1.0.1.
        "version": "1.0.1",
        "sha": null,
        "docker_label": null,
    });
    response(
        StatusCode::OK,
        Some(JSON),
        serde_json::to_vec(&body).expect("json"),
    )
}

/// `POST /` (TGI's `compat_generate`): `{"inputs",..,"stream":bool}` routed to one of the
/// two; the non-streamed answer comes inside a JSON array.
async fn compat_generate(state: State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let stream = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("stream").and_then(serde_json::Value::as_bool))
        .unwrap_or(false);
    if stream {
        generate_stream(state, headers, body).await
    } else {
        generate_answer(state, headers, body, true).await
    }
}

#[derive(Deserialize)]
struct Request {
    inputs: String,
    #[serde(default)]
    parameters: Parameters,
}

#[allow(dead_code)]
#[derive(Deserialize)]
struct Parameters {
    #[serde(default)]
    best_of: Option<u32>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    repetition_penalty: Option<f32>,
    #[serde(default)]
    top_k: Option<i32>,
    #[serde(default)]
    top_p: Option<f32>,
    #[serde(default)]
    typical_p: Option<f32>,
    #[serde(default)]
    do_sample: bool,
    #[serde(default = "default_max_new_tokens")]
    max_new_tokens: u32,
    #[serde(default)]
    return_full_text: Option<bool>,
    #[serde(default)]
    stop: Vec<String>,
    #[serde(default)]
    truncate: Option<u32>,
    #[serde(default)]
    watermark: bool,
    #[serde(default)]
    details: bool,
    #[serde(default)]
    decoder_input_details: bool,
    #[serde(default)]
    seed: Option<u64>,
}

fn default_max_new_tokens() -> u32 {
    20
}

impl Default for Parameters {
    fn default() -> Self {
        serde_json::from_str("{}").expect("defaults")
    }
}

fn error_body(message: &str, error_type: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({"error": message, "error_type": error_type}))
        .expect("serializes")
}

/// The injected generation error's message: TGI's `InferError::GenerationError` display
/// around a shard's `ClientError::Generation` (the CUDA text is illustrative).
const GENERATION_ERROR: &str = "Request failed during generation: Server error: CUDA out of memory";

fn error(status: StatusCode, message: &str, error_type: &str) -> Response {
    response(status, Some(JSON), error_body(message, error_type))
}

/// TGI's answer to an injected HTTP error fault. On `/generate_stream` the overload and
/// generation errors arrive as an error event after a 200, as TGI sends them; a 503 comes
/// from a proxy in front of the server, before any stream.
fn injected_error(status: StatusCode, stream: bool) -> Response {
    let (message, error_type) = match status {
        StatusCode::TOO_MANY_REQUESTS => ("Model is overloaded", "overloaded"),
        StatusCode::INTERNAL_SERVER_ERROR => ("Incomplete generation", "incomplete_generation"),
        StatusCode::FAILED_DEPENDENCY => (GENERATION_ERROR, "generation"),
        _ => ("Service Unavailable", "overloaded"),
    };
    if stream && status != StatusCode::SERVICE_UNAVAILABLE {
        stream_error(message, error_type)
    } else {
        error(status, message, error_type)
    }
}

/// Error as TGI's /generate_stream sends it: status 200, one SSE event.
fn stream_error(message: &str, error_type: &str) -> Response {
    let mut b = b"data:".to_vec();
    b.extend_from_slice(&error_body(message, error_type));
    b.extend_from_slice(b"\n\n");
    let mut r = response(StatusCode::OK, Some(SSE), b);
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r
}

/// axum's `Json` extractor rejections (TGI's handlers use it).
fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Request, Response> {
    let json_ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|m| {
            let m = m.trim().to_ascii_lowercase();
            m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
        })
        .unwrap_or(false);
    if !json_ct {
        return Err(response(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Some(TEXT),
            "Expected request with `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice::<Request>(body).map_err(|e| {
        if e.is_data() {
            response(
                StatusCode::UNPROCESSABLE_ENTITY,
                Some(TEXT),
                format!("Failed to deserialize the JSON body into the target type: {e}"),
            )
        } else {
            response(
                StatusCode::BAD_REQUEST,
                Some(TEXT),
                format!("Failed to parse the request body as JSON: {e}"),
            )
        }
    })
}

/// TGI 1.0.2 `Validation::validate`: returns the message after "Input validation error: ".
fn validate(st: &AppState, req: &Request) -> Result<Gen, String> {
    let p = &req.parameters;
    if let Some(t) = p.temperature
        && t <= 0.0
    {
        return Err("`temperature` must be strictly positive".into());
    }
    if let Some(t) = p.top_p
        && (t <= 0.0 || t >= 1.0)
    {
        return Err("`top_p` must be > 0.0 and < 1.0".into());
    }
    if p.max_new_tokens == 0 {
        return Err("`max_new_tokens` must be strictly positive".into());
    }
    if req.inputs.is_empty() {
        return Err("`inputs` cannot be empty".into());
    }
    let input = crate::words::count_words(&req.inputs);
    let total = input as u64 + p.max_new_tokens as u64;
    let prof = &st.profile;
    if total > prof.max_total_tokens as u64 {
        return Err(format!(
            "`inputs` tokens + `max_new_tokens` must be <= {}. Given: {input} `inputs` tokens and {} `max_new_tokens`",
            prof.max_total_tokens, p.max_new_tokens
        ));
    }
    if input > prof.max_input_length {
        return Err(format!(
            "`inputs` must have less than {} tokens. Given: {input}",
            prof.max_input_length
        ));
    }
    if !st.engine_fits(input, p.max_new_tokens) {
        return Err(format!(
            "`inputs` tokens + `max_new_tokens` must be <= the batch token budget. Given: {input} `inputs` tokens and {} `max_new_tokens`",
            p.max_new_tokens
        ));
    }
    Ok(Gen {
        prompt_tokens: input,
        max_tokens: p.max_new_tokens,
        ignore_eos: false,
        min_tokens: 0,
    })
}

fn write_token(out: &mut BytesMut, tok: &Tok) {
    let (id, text) = if tok.eos {
        (crate::words::EOS_ID, crate::words::EOS_TEXT)
    } else {
        tok.text()
    };
    out.extend_from_slice(b"{\"id\":");
    out.extend_from_slice(id.to_string().as_bytes());
    out.extend_from_slice(b",\"text\":");
    push_json_str(out, text);
    out.extend_from_slice(b",\"logprob\":");
    out.extend_from_slice(logprob(tok).as_bytes());
    out.extend_from_slice(if tok.eos {
        b",\"special\":true}"
    } else {
        b",\"special\":false}"
    });
}

/// A plausible, deterministic log-probability such as `-1.27`.
pub(crate) fn logprob(tok: &Tok) -> String {
    let h = crate::faults::mix(tok.seq, tok.index as u64, 7) % 400;
    format!("-{}.{:02}", h / 100, h % 100)
}

fn finish_reason(eos: bool) -> &'static str {
    if eos { "eos_token" } else { "length" }
}

struct TgiFramer {
    text: String,
    details: bool,
    prefix: Option<String>,
    /// Injected 500 or generation error: the generation fails after this many tokens.
    fail_after: Option<u32>,
    /// The error event then sent: (message, error_type, truth outcome).
    fail: (&'static str, &'static str, Outcome),
    keep_alive: std::time::Duration,
}

impl Framer for TgiFramer {
    fn error_after(&self) -> Option<u32> {
        self.fail_after
    }

    fn error(&mut self, out: &mut BytesMut) -> Outcome {
        let (message, error_type, outcome) = self.fail;
        out.extend_from_slice(b"data:");
        out.extend_from_slice(&error_body(message, error_type));
        out.extend_from_slice(b"\n\n");
        outcome
    }

    fn keep_alive(&self) -> Option<std::time::Duration> {
        Some(self.keep_alive)
    }

    fn token(&mut self, tok: &Tok, out: &mut BytesMut) {
        if !tok.eos {
            self.text.push_str(tok.text().1);
        }
        out.extend_from_slice(b"data:{\"token\":");
        write_token(out, tok);
        if tok.last {
            out.extend_from_slice(b",\"generated_text\":");
            let full = match &self.prefix {
                Some(p) => format!("{p}{}", self.text),
                None => self.text.clone(),
            };
            push_json_str(out, &full);
            if self.details {
                out.extend_from_slice(b",\"details\":{\"finish_reason\":\"");
                out.extend_from_slice(finish_reason(tok.eos).as_bytes());
                out.extend_from_slice(b"\",\"generated_tokens\":");
                out.extend_from_slice((tok.index + 1).to_string().as_bytes());
                out.extend_from_slice(b",\"seed\":null}}\n\n");
            } else {
                out.extend_from_slice(b",\"details\":null}\n\n");
            }
        } else {
            out.extend_from_slice(b",\"generated_text\":null,\"details\":null}\n\n");
        }
    }
}

async fn generate(state: State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    generate_answer(state, headers, body, false).await
}

/// `/generate`'s answer; `array`: inside a JSON array (`POST /`).
async fn generate_answer(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
    array: bool,
) -> Response {
    let mut ctx = Ctx::begin(&st, &headers, if array { "/" } else { "/generate" }, false);
    let req = match parse(&headers, &body) {
        Ok(r) => r,
        Err(resp) => return ctx.reject(Outcome::BadRequest, resp),
    };
    let g = match validate(&st, &req) {
        Ok(g) => g,
        Err(m) => {
            let msg = format!("Input validation error: {m}");
            return ctx.reject(
                Outcome::ValidationError,
                error(StatusCode::UNPROCESSABLE_ENTITY, &msg, "validation"),
            );
        }
    };
    let plan = st.plan(&mut ctx, &g);
    if let Some((outcome, status)) = plan.fault.as_ref().and_then(Fault::http_error) {
        return ctx.reject(outcome, injected_error(status, false));
    }
    let mut job = Job::start(ctx, plan);
    let Ok(toks) = job.collect().await else {
        // The engine stopped (server shutting down).
        return job.ctx.reject_ref(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server shutting down",
            "generation",
        ));
    };
    job.before_headers().await;
    let last = toks.last().expect("at least one token");
    let mut text = String::new();
    if req.parameters.return_full_text == Some(true) {
        text.push_str(&req.inputs);
    }
    for t in &toks {
        if !t.eos {
            text.push_str(t.text().1);
        }
    }
    let mut out = BytesMut::with_capacity(64 + text.len());
    if array {
        out.extend_from_slice(b"[");
    }
    out.extend_from_slice(b"{\"generated_text\":");
    push_json_str(&mut out, &text);
    if req.parameters.details {
        out.extend_from_slice(b",\"details\":{\"finish_reason\":\"");
        out.extend_from_slice(finish_reason(last.eos).as_bytes());
        out.extend_from_slice(b"\",\"generated_tokens\":");
        out.extend_from_slice(toks.len().to_string().as_bytes());
        out.extend_from_slice(b",\"seed\":null,\"prefill\":[],\"tokens\":[");
        for (i, t) in toks.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",");
            }
            write_token(&mut out, t);
        }
        out.extend_from_slice(b"]}");
    }
    out.extend_from_slice(b"}");
    if array {
        out.extend_from_slice(b"]");
    }
    // Timing headers, integer ms as in 1.0.2.
    let rec = &job.ctx.rec;
    let now = job.ctx.now_ns();
    let ms = |ns: u64| (ns / 1_000_000).to_string();
    let admitted = rec.admitted_ns.unwrap_or(rec.received_ns);
    let queue = admitted.saturating_sub(rec.received_ns);
    let inference = last.at_ns.saturating_sub(admitted);
    let total = now.saturating_sub(rec.received_ns);
    let mut resp = response(StatusCode::OK, Some(JSON), out.freeze());
    let h = resp.headers_mut();
    let mut put = |k: &'static str, v: String| {
        h.insert(k, HeaderValue::from_str(&v).expect("ascii"));
    };
    put("x-compute-type", "gpu+optimized".into());
    put("x-compute-time", ms(total));
    put(
        "x-compute-characters",
        req.inputs.chars().count().to_string(),
    );
    put("x-total-time", ms(total));
    put("x-validation-time", "0".into());
    put("x-queue-time", ms(queue));
    put("x-inference-time", ms(inference));
    put("x-time-per-token", ms(inference / toks.len() as u64));
    if let Some(Fault::Disconnect { .. }) = job.plan.fault {
        job.ctx.finish(Outcome::Disconnect, 200);
        *resp.body_mut() = crate::dialect::stream::cut_body();
        return resp;
    }
    job.ctx.finish(Outcome::Ok, 200);
    resp
}

async fn generate_stream(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mut ctx = Ctx::begin(&st, &headers, "/generate_stream", true);
    let req = match parse(&headers, &body) {
        Ok(r) => r,
        Err(resp) => return ctx.reject(Outcome::BadRequest, resp),
    };
    let g = match validate(&st, &req) {
        Ok(g) => g,
        Err(m) => {
            let msg = format!("Input validation error: {m}");
            return ctx.reject(Outcome::ValidationError, stream_error(&msg, "validation"));
        }
    };
    let plan = st.plan(&mut ctx, &g);
    let fail = match plan.fault {
        Some(Fault::GenerationError) => (GENERATION_ERROR, "generation", Outcome::Http424),
        _ => (
            "Incomplete generation",
            "incomplete_generation",
            Outcome::Http500,
        ),
    };
    let fail_after = match plan.fault {
        // The generation fails after a uniform number of tokens: an error event.
        Some(Fault::Http500 | Fault::GenerationError) => {
            Some((st.draw(ctx.seq(), 11) % u64::from(plan.target)) as u32)
        }
        Some(f) => match f.http_error() {
            Some((outcome, status)) => return ctx.reject(outcome, injected_error(status, true)),
            None => None,
        },
        None => None,
    };
    let mut job = Job::start(ctx, plan);
    job.before_headers().await;
    let framer = TgiFramer {
        text: String::new(),
        details: req.parameters.details,
        prefix: (req.parameters.return_full_text == Some(true)).then(|| req.inputs.clone()),
        fail_after,
        fail,
        keep_alive: st.keep_alive,
    };
    let mut resp = response(StatusCode::OK, Some(SSE), stream_body(job, framer, None));
    let h = resp.headers_mut();
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    h.insert("x-compute-type", HeaderValue::from_static("gpu+optimized"));
    let chars = req.inputs.chars().count().to_string();
    h.insert(
        "x-compute-characters",
        HeaderValue::from_str(&chars).expect("digits"),
    );
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    resp
}
