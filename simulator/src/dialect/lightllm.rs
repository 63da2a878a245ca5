//! LightLLM (Aug 2023, commit 718e6d6): `POST /generate`, `POST /generate_stream`.
//!
//! Bytes as that FastAPI server writes them:
//! - request `{"inputs":..,"parameters":{..SamplingParams kwargs..}}`, both required;
//!   `max_new_tokens` default 16, `ignore_eos` default false. A missing key, an unknown
//!   parameter (8 are known, see [`crate::sampling`]; other top-level keys are ignored),
//!   a wrong type, bad JSON, or a failed `verify()` raise before any response:
//!   HTTP 500 `Internal Server Error` (text/plain, uvicorn) on both routes.
//! - `/generate`: `json.dumps({"generated_text": [text]}, ensure_ascii=False)` in a bare
//!   `Response` (Python separators `", "`/`": "`, no Content-Type), no token counts.
//! - `/generate_stream`: `text/event-stream; charset=utf-8` (Starlette adds the
//!   charset), one `data:{json}\n\n` per token,
//!   `{"token": {"id": .., "text": .., "logprob": .., "special": false}, "generated_text": null, "details": null}`
//!   (Python separators), no end marker: the body closes. Tokens are lost as the
//!   server loses them: its manager keeps only the latest undelivered token of a
//!   request, so of the tokens made before the stream reads again only the last is sent
//!   (the truth log still counts them all; `ignore_eos` still yields `max_new_tokens`).
//!   Not when the profile runs sped up (`--speedup K`, K > 1): whether a token is lost
//!   depends on how soon the stream reads again in real time, and sped up the tokens
//!   come K times closer while the handler is no faster, so a run would lose tokens the
//!   modelled server kept (at K = 100, a third of a QPS-1 run's records lost some). A
//!   sped-up stream sends every token.
//! - the length check (prompt over the max input length, or prompt + max_new_tokens over
//!   the max total) runs inside the generation generator: on `/generate` it is a 500; on
//!   `/generate_stream` the 200 headers are already out and the connection is cut.
//! - injected 429 / 503 are plain-text answers, as a proxy in front of the server sends.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use bytes::{Bytes, BytesMut};
use serde_json::Value;

use crate::dialect::request::{Ctx, Gen};
use crate::dialect::respond::{push_json_str, python_injected_error, response, uvicorn_500};
use crate::dialect::sampling::truthy;
use crate::dialect::state::AppState;
use crate::dialect::stream::{Framer, cut_body, stream_body};
use crate::dialect::tokens::{Job, Tok};
use crate::faults::Fault;
use crate::truth::Outcome;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/generate", post(generate))
        .route("/generate_stream", post(generate_stream))
}

struct Parsed {
    inputs: String,
    max_new_tokens: u32,
    ignore_eos: bool,
}

fn parse(body: &[u8]) -> Result<Parsed, ()> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ())?;
    let Value::Object(mut obj) = v else {
        return Err(());
    };
    let Some(Value::String(inputs)) = obj.remove("inputs") else {
        return Err(());
    };
    let Some(Value::Object(params)) = obj.remove("parameters") else {
        return Err(());
    };
    crate::dialect::sampling::lightllm_718e6d6(&params)?;
    let max_new_tokens = match params.get("max_new_tokens") {
        None => 16,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if m >= 1 && m <= u32::MAX as u64 => m as u32,
            _ => return Err(()),
        },
        Some(_) => return Err(()),
    };
    let ignore_eos = params.get("ignore_eos").is_some_and(truthy);
    Ok(Parsed {
        inputs,
        max_new_tokens,
        ignore_eos,
    })
}

/// `json.dumps(x, ensure_ascii=False)` of a string: our strings need only the basic escapes.
fn push_py_str(out: &mut BytesMut, s: &str) {
    push_json_str(out, s);
}

struct LightFramer {
    /// Keep only the latest undelivered token (off when sped up: module docs).
    latest_only: bool,
}

/// `text/event-stream` as Starlette's `StreamingResponse` sends it.
const SSE_UTF8: &str = "text/event-stream; charset=utf-8";

impl Framer for LightFramer {
    fn latest_only(&self) -> bool {
        self.latest_only
    }

    fn token(&mut self, tok: &Tok, out: &mut BytesMut) {
        let (id, text) = tok.text();
        out.extend_from_slice(b"data:{\"token\": {\"id\": ");
        out.extend_from_slice(id.to_string().as_bytes());
        out.extend_from_slice(b", \"text\": ");
        push_py_str(out, text);
        out.extend_from_slice(b", \"logprob\": ");
        out.extend_from_slice(crate::dialect::tgi::logprob(tok).as_bytes());
        out.extend_from_slice(
            b", \"special\": false}, \"generated_text\": null, \"details\": null}\n\n",
        );
    }
}

/// Shared start of both routes: `Ok((job-ready ctx, plan))` or the answer to send.
fn prepare(
    st: &Arc<AppState>,
    headers: &HeaderMap,
    body: &[u8],
    route: &str,
    stream: bool,
) -> Result<(Ctx, crate::dialect::request::Plan), Response> {
    let mut ctx = Ctx::begin(st, headers, route, stream);
    let Ok(req) = parse(body) else {
        return Err(ctx.reject(Outcome::BadRequest, uvicorn_500()));
    };
    let prompt_tokens = crate::words::count_words(&req.inputs);
    let p = &st.profile;
    let too_long = prompt_tokens > p.max_input_length
        || prompt_tokens as u64 + req.max_new_tokens as u64 > p.max_total_tokens as u64
        || !st.engine_fits(prompt_tokens, req.max_new_tokens);
    if too_long {
        ctx.rec.prompt_tokens = prompt_tokens;
        ctx.rec.max_tokens = req.max_new_tokens;
        let resp = if stream {
            response(StatusCode::OK, Some(SSE_UTF8), cut_body())
        } else {
            uvicorn_500()
        };
        return Err(ctx.reject(Outcome::ValidationError, resp));
    }
    let g = Gen {
        prompt_tokens,
        max_tokens: req.max_new_tokens,
        ignore_eos: req.ignore_eos,
        min_tokens: 0,
    };
    let plan = st.plan(&mut ctx, &g);
    match plan.fault.as_ref().and_then(Fault::http_error) {
        Some((outcome, status)) => Err(ctx.reject(outcome, python_injected_error(status))),
        None => Ok((ctx, plan)),
    }
}

async fn generate(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let (ctx, plan) = match prepare(&st, &headers, &body, "/generate", false) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let mut job = Job::start(ctx, plan);
    let Ok(toks) = job.collect().await else {
        return job.ctx.reject_ref(uvicorn_500());
    };
    job.before_headers().await;
    let text: String = toks.iter().map(|t| t.text().1).collect();
    let mut out = BytesMut::with_capacity(32 + text.len());
    out.extend_from_slice(b"{\"generated_text\": [");
    push_py_str(&mut out, &text);
    out.extend_from_slice(b"]}");
    if let Some(Fault::Disconnect { .. }) = job.plan.fault {
        job.ctx.finish(Outcome::Disconnect, 200);
        return response(StatusCode::OK, None, cut_body());
    }
    job.ctx.finish(Outcome::Ok, 200);
    response(StatusCode::OK, None, out.freeze())
}

async fn generate_stream(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (ctx, plan) = match prepare(&st, &headers, &body, "/generate_stream", true) {
        Ok(x) => x,
        Err(resp) => return resp,
    };
    let framer = LightFramer {
        latest_only: st.profile.speedup == 1.0,
    };
    let mut job = Job::start(ctx, plan);
    job.before_headers().await;
    response(
        StatusCode::OK,
        Some(SSE_UTF8),
        stream_body(job, framer, None),
    )
}
