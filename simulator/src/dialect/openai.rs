//! OpenAI-compatible API, as vLLM's OpenAI server (>= 0.10) writes it:
//! `POST /v1/completions`, `POST /v1/chat/completions`, `GET /v1/models`.
//!
//! - request fields used: `model` (optional; another name is a 404), `prompt` (string, one
//!   string in an array, or token ids), `messages` (chat; prompt tokens = words of all
//!   contents, no chat-template overhead), `max_tokens` (completions default 16) /
//!   `max_completion_tokens` (chat default: the rest of the context), `stream`,
//!   `stream_options.include_usage`, `stream_options.continuous_usage_stats`,
//!   `ignore_eos`, `min_tokens`, `n` (1 only). Unknown fields are ignored, as vLLM does.
//! - stream: `data: {json}\n\n` (one space), one chunk per token; the chunk of the last
//!   token carries `finish_reason` (`length` or `stop`); with `include_usage` every chunk
//!   has `"usage":null` and a last chunk `{"choices":[],"usage":{..}}` follows; with
//!   `continuous_usage_stats` every chunk carries the cumulative usage; then
//!   `data: [DONE]\n\n`. Chat streams start with a `{"role":"assistant","content":""}` delta.
//! - errors: `{"error":{"message":..,"type":..,"param":null,"code":N}}` with 400
//!   (validation, bad JSON, wrong types), 404 (unknown model), and injected 429/500/503.
//! - reasoning (`SimConfig::reasoning`, see `crate::reasoning`): chat deltas
//!   `{"reasoning":".."}` (or `reasoning_content`, or both) for the first tokens, then
//!   `{"content":".."}`; the whole answer's `message` carries both texts; usage objects
//!   add `completion_tokens_details.reasoning_tokens`. `chat_template_kwargs` with
//!   `enable_thinking` or `thinking` false turns it off for the request.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use serde_json::{Value, json};

use crate::dialect::openai_request::{Kind, Parsed, error, parse, validate};
use crate::dialect::request::{Ctx, Gen};
use crate::dialect::respond::{JSON, SSE, push_json_str, response};
use crate::dialect::state::AppState;
use crate::dialect::stream::{Framer, cut_body, stream_body};
use crate::dialect::tokens::{Job, Tok};
use crate::dialect::typed_sse;
use crate::faults::Fault;
use crate::truth::Outcome;

pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/completions", post(completions))
        .route("/v1/chat/completions", post(chat))
        .route("/v1/responses", post(responses))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The answer to an injected HTTP error fault.
fn injected_error(route: Kind, status: StatusCode) -> Response {
    let (message, what) = match status {
        StatusCode::TOO_MANY_REQUESTS => {
            ("The server is overloaded, retry later.", "RateLimitError")
        }
        StatusCode::SERVICE_UNAVAILABLE => ("Service Unavailable", "ServiceUnavailableError"),
        _ => ("Simulated internal error.", "InternalServerError"),
    };
    route.error(status, message, what)
}

async fn models(State(st): State<Arc<AppState>>) -> Response {
    let body = json!({
        "object": "list",
        "data": [{
            "id": st.profile.model,
            "object": "model",
            "created": unix_now(),
            "owned_by": "llmib",
            "root": st.profile.model,
            "parent": null,
            "max_model_len": st.profile.max_total_tokens,
        }]
    });
    response(
        StatusCode::OK,
        Some(JSON),
        serde_json::to_vec(&body).expect("json"),
    )
}

fn finish_reason(eos: bool) -> &'static str {
    if eos { "stop" } else { "length" }
}

/// A usage object; `reasoning`: the reasoning tokens among `completion`, when the
/// server reasons (then reported as OpenAI does).
/// `cached`: the prompt tokens found in the prefix cache, when the engine has one.
fn push_usage(
    out: &mut BytesMut,
    prompt: u32,
    completion: u32,
    reasoning: Option<u32>,
    cached: Option<u32>,
) {
    out.extend_from_slice(
        format!(
            "{{\"prompt_tokens\":{prompt},\"total_tokens\":{},\"completion_tokens\":{completion}",
            prompt + completion
        )
        .as_bytes(),
    );
    if let Some(c) = cached {
        out.extend_from_slice(
            format!(",\"prompt_tokens_details\":{{\"cached_tokens\":{c}}}").as_bytes(),
        );
    }
    if let Some(r) = reasoning {
        out.extend_from_slice(
            format!(",\"completion_tokens_details\":{{\"reasoning_tokens\":{r}}}").as_bytes(),
        );
    }
    out.extend_from_slice(b"}");
}

fn usage_json(prompt: u32, completion: u32, reasoning: Option<u32>, cached: Option<u32>) -> Value {
    let mut u = json!({"prompt_tokens": prompt, "total_tokens": prompt + completion, "completion_tokens": completion});
    if let Some(c) = cached {
        u["prompt_tokens_details"] = json!({"cached_tokens": c});
    }
    if let Some(r) = reasoning {
        u["completion_tokens_details"] = json!({"reasoning_tokens": r});
    }
    u
}

struct OpenAiFramer {
    kind: Kind,
    /// `{"id":"..","object":"..","created":N,"model":".."`, shared by every chunk.
    head: Vec<u8>,
    prompt_tokens: u32,
    include_usage: bool,
    continuous_usage: bool,
    /// Some(cached prompt tokens, updated from each token) when the engine caches prefixes.
    cached: Option<u32>,
    thought: Thought,
}

/// How a request reasons: its first `planned` tokens, under `field`; `report`: usage
/// objects say how many (the server reasons, even if this request does not).
#[derive(Clone, Copy, Default)]
struct Thought {
    planned: u32,
    field: crate::ReasoningField,
    report: bool,
}

impl Thought {
    fn of(st: &AppState, kind: Kind, p: &Parsed, plan: &crate::dialect::request::Plan) -> Thought {
        match st.reasoning {
            Some(r) if kind == Kind::Chat => Thought {
                planned: if p.thinking {
                    r.planned(plan.target, plan.eos)
                } else {
                    0
                },
                field: r.field,
                report: true,
            },
            _ => Thought::default(),
        }
    }

    /// Reasoning tokens among the first `completion` ones, when reported.
    fn count(&self, completion: u32) -> Option<u32> {
        self.report.then(|| completion.min(self.planned))
    }
}

impl OpenAiFramer {
    fn new(
        kind: Kind,
        id: &str,
        model: &str,
        p: &Parsed,
        thought: Thought,
        cache_on: bool,
    ) -> OpenAiFramer {
        let object = match kind {
            Kind::Completion => "text_completion",
            // Responses and Messages stream through `typed_sse`, never here.
            _ => "chat.completion.chunk",
        };
        let mut head = BytesMut::new();
        head.extend_from_slice(b"{\"id\":");
        push_json_str(&mut head, id);
        head.extend_from_slice(
            format!(
                ",\"object\":\"{object}\",\"created\":{},\"model\":",
                unix_now()
            )
            .as_bytes(),
        );
        push_json_str(&mut head, model);
        OpenAiFramer {
            kind,
            head: head.to_vec(),
            prompt_tokens: p.prompt_tokens,
            include_usage: p.include_usage,
            continuous_usage: p.continuous_usage,
            cached: cache_on.then_some(0),
            thought,
        }
    }

    fn usage(&self, out: &mut BytesMut, completion: u32) {
        let reasoning = self.thought.count(completion);
        push_usage(out, self.prompt_tokens, completion, reasoning, self.cached);
    }

    fn chunk_end(&self, out: &mut BytesMut, completion: u32) {
        if self.continuous_usage {
            out.extend_from_slice(b",\"usage\":");
            self.usage(out, completion);
        } else if self.include_usage {
            out.extend_from_slice(b",\"usage\":null");
        }
        out.extend_from_slice(b"}\n\n");
    }

    /// A chat delta carrying `text` as reasoning (under the configured field or fields)
    /// or as answer.
    fn delta(&self, out: &mut BytesMut, text: &str, reasoning: bool) {
        out.extend_from_slice(b"{");
        let keys: &[&str] = if reasoning {
            self.thought.field.keys()
        } else {
            &["content"]
        };
        for (i, key) in keys.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(b",");
            }
            out.extend_from_slice(format!("\"{key}\":").as_bytes());
            push_json_str(out, text);
        }
        out.extend_from_slice(b"}");
    }

    fn role_chunk(&self) -> Bytes {
        let mut out = BytesMut::new();
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.head);
        out.extend_from_slice(
            b",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"logprobs\":null,\"finish_reason\":null}]",
        );
        self.chunk_end(&mut out, 0);
        out.freeze()
    }
}

impl Framer for OpenAiFramer {
    fn token(&mut self, tok: &Tok, out: &mut BytesMut) {
        let (_, text) = tok.text();
        if let Some(c) = &mut self.cached {
            *c = tok.cached;
        }
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.head);
        match self.kind {
            Kind::Completion => {
                out.extend_from_slice(b",\"choices\":[{\"index\":0,\"text\":");
                push_json_str(out, text);
                out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
            }
            _ => {
                out.extend_from_slice(b",\"choices\":[{\"index\":0,\"delta\":");
                self.delta(out, text, tok.index < self.thought.planned);
                out.extend_from_slice(b",\"logprobs\":null,\"finish_reason\":");
            }
        }
        if tok.last {
            out.extend_from_slice(b"\"");
            out.extend_from_slice(finish_reason(tok.eos).as_bytes());
            out.extend_from_slice(b"\",\"stop_reason\":null}]");
        } else {
            out.extend_from_slice(b"null,\"stop_reason\":null}]");
        }
        self.chunk_end(out, tok.index + 1);
        if tok.last && self.include_usage {
            out.extend_from_slice(b"data: ");
            out.extend_from_slice(&self.head);
            out.extend_from_slice(b",\"choices\":[],\"usage\":");
            self.usage(out, tok.index + 1);
            out.extend_from_slice(b"}\n\n");
        }
    }

    fn end(&mut self, out: &mut BytesMut) {
        out.extend_from_slice(b"data: [DONE]\n\n");
    }
}

/// The whole answer's `message`: the reasoning text under the configured field(s), the
/// answer in `content` (null when the answer never came, as vLLM's reasoning parsers
/// leave it).
fn chat_message(toks: &[Tok], thought: &Thought) -> Value {
    let (mut reasoning, mut answer) = (String::new(), String::new());
    for t in toks {
        let text = if t.index < thought.planned {
            &mut reasoning
        } else {
            &mut answer
        };
        text.push_str(t.text().1);
    }
    let mut m = json!({"role": "assistant", "content": answer});
    if thought.planned > 0 {
        for key in thought.field.keys() {
            m[*key] = json!(reasoning);
        }
        if toks.len() as u32 <= thought.planned {
            m["content"] = Value::Null;
        }
    }
    m
}

async fn completions(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(st, headers, body, Kind::Completion).await
}

async fn chat(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(st, headers, body, Kind::Chat).await
}

async fn responses(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(st, headers, body, Kind::Responses).await
}

async fn messages(State(st): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    serve(st, headers, body, Kind::Messages).await
}

async fn serve(st: Arc<AppState>, headers: HeaderMap, body: Bytes, kind: Kind) -> Response {
    let route = match kind {
        Kind::Completion => "/v1/completions",
        Kind::Chat => "/v1/chat/completions",
        Kind::Responses => "/v1/responses",
        Kind::Messages => "/v1/messages",
    };
    let mut ctx = Ctx::begin(&st, &headers, route, false);
    let mut p = match parse(&st, kind, &body) {
        Ok(p) => p,
        Err(resp) => return ctx.reject(Outcome::BadRequest, resp),
    };
    ctx.rec.stream = p.stream;
    let max_tokens = match validate(&st, &p) {
        Ok(m) => m,
        Err(m) => {
            ctx.rec.prompt_tokens = p.prompt_tokens;
            return ctx.reject(Outcome::ValidationError, kind.bad_request(&m));
        }
    };
    let g = Gen {
        prompt_tokens: p.prompt_tokens,
        max_tokens,
        ignore_eos: p.ignore_eos,
        min_tokens: p.min_tokens,
    };
    let mut plan = st.plan(&mut ctx, &g);
    if let Some((outcome, status)) = plan.fault.as_ref().and_then(Fault::http_error) {
        return ctx.reject(outcome, injected_error(kind, status));
    }
    ctx.prefix = std::mem::take(&mut p.prefix);
    let thought = Thought::of(&st, kind, &p, &plan);
    plan.reasoning = thought.planned;
    let id = format!(
        "{}-{:016x}",
        if kind == Kind::Completion {
            "cmpl"
        } else {
            "chatcmpl"
        },
        crate::faults::mix(0x1d, ctx.seq(), 3)
    );
    let mut job = Job::start(ctx, plan);
    if matches!(kind, Kind::Responses | Kind::Messages) {
        let summary = typed_sse::Summary {
            id: id.trim_start_matches("chatcmpl-").to_string(),
            model: st.profile.model.clone(),
            created: unix_now(),
            prompt_tokens: p.prompt_tokens,
            max_tokens,
            cached: st.block_hasher().map(|_| 0),
        };
        return serve_typed(job, kind, summary, p.stream).await;
    }
    if p.stream {
        job.before_headers().await;
        let cache_on = st.block_hasher().is_some();
        let framer = OpenAiFramer::new(kind, &id, &st.profile.model, &p, thought, cache_on);
        let prefix = (kind == Kind::Chat).then(|| framer.role_chunk());
        return sse_response(stream_body(job, framer, prefix));
    }
    let Ok(toks) = job.collect().await else {
        return job.ctx.reject_ref(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server shutting down",
            "InternalServerError",
        ));
    };
    job.before_headers().await;
    let last = toks.last().expect("at least one token");
    let n = toks.len() as u32;
    let cached = st.block_hasher().map(|_| job.ctx.rec.cached_tokens);
    let usage = usage_json(p.prompt_tokens, n, thought.count(n), cached);
    let body = match kind {
        Kind::Completion => {
            let mut text = p.echo.clone().unwrap_or_default();
            toks.iter().for_each(|t| text.push_str(t.text().1));
            json!({
                "id": id, "object": "text_completion", "created": unix_now(), "model": st.profile.model,
                "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": finish_reason(last.eos), "stop_reason": null}],
                "usage": usage,
            })
        }
        _ => json!({
            "id": id, "object": "chat.completion", "created": unix_now(), "model": st.profile.model,
            "choices": [{"index": 0, "message": chat_message(&toks, &thought), "logprobs": null, "finish_reason": finish_reason(last.eos), "stop_reason": null}],
            "usage": usage,
        }),
    };
    whole_answer(job, &body)
}

/// A Responses or Messages request: its typed-event stream, or its whole answer.
async fn serve_typed(
    mut job: Job,
    kind: Kind,
    mut summary: typed_sse::Summary,
    stream: bool,
) -> Response {
    if stream {
        job.before_headers().await;
        let mut framer = typed_sse::TypedFramer::new(kind, summary);
        let opening = framer.opening();
        return sse_response(stream_body(job, framer, Some(opening)));
    }
    let Ok(toks) = job.collect().await else {
        return job.ctx.reject_ref(kind.error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server shutting down",
            "InternalServerError",
        ));
    };
    job.before_headers().await;
    let last = toks.last().expect("at least one token");
    let n = toks.len() as u32;
    if summary.cached.is_some() {
        summary.cached = Some(job.ctx.rec.cached_tokens);
    }
    let text: String = toks.iter().map(|t| t.text().1).collect();
    let body = match kind {
        Kind::Messages => summary.message(&text, n, last.eos),
        _ => summary.response(&text, n, last.eos, true),
    };
    whole_answer(job, &body)
}

/// A 200 event stream with vLLM's content type.
fn sse_response(body: axum::body::Body) -> Response {
    let mut resp = response(StatusCode::OK, Some(SSE), body);
    resp.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    resp
}

/// A whole answer: `body`, or a cut body when the plan injects a disconnect; the truth
/// record written either way.
fn whole_answer(mut job: Job, body: &Value) -> Response {
    if let Some(Fault::Disconnect { .. }) = job.plan.fault {
        job.ctx.finish(Outcome::Disconnect, 200);
        return response(StatusCode::OK, Some(JSON), cut_body());
    }
    job.ctx.finish(Outcome::Ok, 200);
    response(
        StatusCode::OK,
        Some(JSON),
        serde_json::to_vec(body).expect("json"),
    )
}
