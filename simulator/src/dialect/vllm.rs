//! vLLM's legacy api_server (`python -m vllm.entrypoints.api_server`, 2023): `POST /generate`.
//!
//! Bytes as that FastAPI server writes them:
//! - request `{"prompt":..,"stream":bool,<SamplingParams kwargs>}`; `max_tokens` default 16.
//!   An unknown key (v0.1.4 takes 12, see [`crate::sampling`]), a missing prompt, a wrong
//!   type, a value `SamplingParams` refuses, or bad JSON raise in Python: HTTP 500
//!   `Internal Server Error` (text/plain, uvicorn).
//! - not streamed: `{"text":["<prompt><output>"]}` (Starlette `JSONResponse`: compact,
//!   `application/json`). The text includes the prompt; no counts, no finish reason.
//! - streamed: no Content-Type; per engine step `json.dumps({"text": [prompt + output so
//!   far]})` (Python's default separators `", "` and `": "`, ASCII-escaped) followed by a
//!   NUL byte (`yield (json.dumps(ret) + "\0").encode("utf-8")` at 28873a2, the
//!   original's v0.1.4). Cumulative, one object per step. From commit 9e37266
//!   (2024-11) on, the same file yields `json.dumps(ret) + "\n"`: a newline separates
//!   the objects ([`VllmSeparator::Newline`], `llmib sim --vllm-separator newline`).
//! - a prompt longer than max_model_len (the profile's `max_total_tokens`) is not an HTTP
//!   error: vLLM 0.1.x ignores the request and answers 200 with an empty completion (the
//!   text is just the prompt). Output stops once prompt + output exceeds max_model_len,
//!   at `max_model_len - prompt + 1` tokens (the scheduler's length check).
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
use crate::dialect::respond::{
    JSON, push_py_json_str, python_injected_error, response, uvicorn_500,
};
use crate::dialect::sampling::truthy;
use crate::dialect::state::AppState;
use crate::dialect::stream::{Framer, stream_body};
use crate::dialect::tokens::{Job, Tok};
use crate::faults::Fault;
use crate::truth::Outcome;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/generate", post(generate))
}

/// What ends each streamed object: the byte after `json.dumps(ret)` in the server's
/// `stream_results`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum VllmSeparator {
    /// `\0`: the api_server of 2023 (28873a2, v0.1.4), the original benchmark's.
    #[default]
    Nul,
    /// `\n`: the same api_server from commit 9e37266 (2024-11) on.
    Newline,
}

impl VllmSeparator {
    fn byte(self) -> u8 {
        match self {
            VllmSeparator::Nul => b'\0',
            VllmSeparator::Newline => b'\n',
        }
    }
}

impl std::str::FromStr for VllmSeparator {
    type Err = crate::SimError;
    fn from_str(s: &str) -> Result<Self, crate::SimError> {
        match s {
            "nul" => Ok(VllmSeparator::Nul),
            "newline" => Ok(VllmSeparator::Newline),
            other => Err(crate::SimError::Config(format!(
                "unknown vLLM separator `{other}` (expected nul or newline)"
            ))),
        }
    }
}

struct Parsed {
    prompt: String,
    stream: bool,
    max_tokens: u32,
    ignore_eos: bool,
}

/// What vLLM's handler does with the dict; `Err` = a Python exception (HTTP 500).
fn parse(body: &[u8]) -> Result<Parsed, ()> {
    let v: Value = serde_json::from_slice(body).map_err(|_| ())?;
    let Value::Object(mut obj) = v else {
        return Err(());
    };
    let Some(Value::String(prompt)) = obj.remove("prompt") else {
        return Err(());
    };
    let stream = obj.remove("stream").is_some_and(|s| truthy(&s));
    crate::dialect::sampling::vllm_0_1_4(&obj)?;
    let max_tokens = match obj.get("max_tokens") {
        None => 16,
        Some(Value::Number(n)) => match n.as_u64() {
            Some(m) if m >= 1 && m <= u32::MAX as u64 => m as u32,
            _ => return Err(()),
        },
        Some(_) => return Err(()),
    };
    match obj.get("n") {
        None => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => {}
        // The simulator generates one sequence per request.
        Some(_) => return Err(()),
    }
    let ignore_eos = obj.get("ignore_eos").is_some_and(truthy);
    Ok(Parsed {
        prompt,
        stream,
        max_tokens,
        ignore_eos,
    })
}

struct VllmFramer {
    /// `{"text": ["` + escaped prompt and output so far.
    buf: Vec<u8>,
    /// Ends each object.
    separator: u8,
}

impl VllmFramer {
    fn new(prompt: &str, separator: VllmSeparator) -> VllmFramer {
        let mut b = BytesMut::new();
        b.extend_from_slice(b"{\"text\": [");
        push_py_json_str(&mut b, prompt);
        let mut buf = b.to_vec();
        buf.pop(); // the closing quote: output text is appended after the prompt
        VllmFramer {
            buf,
            separator: separator.byte(),
        }
    }

    fn object(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.buf);
        out.extend_from_slice(b"\"]}");
        out.extend_from_slice(&[self.separator]);
    }
}

impl Framer for VllmFramer {
    fn token(&mut self, tok: &Tok, out: &mut BytesMut) {
        // Output tokens are ASCII words: no escaping needed.
        self.buf.extend_from_slice(tok.text().1.as_bytes());
        self.object(out);
    }
}

async fn generate(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let mut ctx = Ctx::begin(&st, &headers, "/generate", false);
    let Ok(req) = parse(&body) else {
        return ctx.reject(Outcome::BadRequest, uvicorn_500());
    };
    ctx.rec.stream = req.stream;
    let prompt_tokens = crate::words::count_words(&req.prompt);
    let max_model_len = st.profile.max_total_tokens;
    if prompt_tokens >= max_model_len || !st.engine_fits(prompt_tokens, 1) {
        // Ignored by the scheduler: 200 with the prompt only.
        ctx.rec.prompt_tokens = prompt_tokens;
        let mut out = BytesMut::new();
        let framer = VllmFramer::new(&req.prompt, st.vllm_separator);
        let resp = if req.stream {
            framer.object(&mut out);
            response(StatusCode::OK, None, out.freeze())
        } else {
            let body =
                serde_json::to_vec(&serde_json::json!({"text": [req.prompt]})).expect("json");
            response(StatusCode::OK, Some(JSON), body)
        };
        return ctx.reject(Outcome::ValidationError, resp);
    }
    // Generation stops once the sequence is longer than max_model_len.
    let max_tokens = req.max_tokens.min(max_model_len - prompt_tokens + 1);
    let g = Gen {
        prompt_tokens,
        max_tokens,
        ignore_eos: req.ignore_eos,
        min_tokens: 0,
    };
    let plan = st.plan(&mut ctx, &g);
    if let Some((outcome, status)) = plan.fault.as_ref().and_then(Fault::http_error) {
        return ctx.reject(outcome, python_injected_error(status));
    }
    let mut job = Job::start(ctx, plan);
    if req.stream {
        job.before_headers().await;
        return response(
            StatusCode::OK,
            None,
            stream_body(job, VllmFramer::new(&req.prompt, st.vllm_separator), None),
        );
    }
    if job.collect().await.is_err() {
        return job.ctx.reject_ref(uvicorn_500());
    }
    job.before_headers().await;
    let mut text = req.prompt.clone();
    let n = job.ctx.rec.output_tokens;
    for index in 0..n {
        let t = Tok {
            seq: job.ctx.seq(),
            index,
            last: index + 1 == n,
            eos: index + 1 == n && job.plan.eos,
            at_ns: 0,
            cached: 0,
        };
        text.push_str(t.text().1);
    }
    let body = serde_json::to_vec(&serde_json::json!({"text": [text]})).expect("json");
    if let Some(Fault::Disconnect { .. }) = job.plan.fault {
        job.ctx.finish(Outcome::Disconnect, 200);
        return response(
            StatusCode::OK,
            Some(JSON),
            crate::dialect::stream::cut_body(),
        );
    }
    job.ctx.finish(Outcome::Ok, 200);
    response(StatusCode::OK, Some(JSON), body)
}
