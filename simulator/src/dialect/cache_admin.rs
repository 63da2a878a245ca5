//! The prefix-cache reset endpoints of the servers the dialects model, so a client can
//! drop the simulated cache between runs exactly as it would a real one:
//!
//! * vLLM's OpenAI server (the `openai` and `vllm` dialects): `POST /reset_prefix_cache`
//!   answers 200 `{"success": true}`, or `{"success": false}` while running requests
//!   hold cached blocks (vLLM 0.32 `entrypoints/serve/dev/cache/api_router.py`; a real
//!   vLLM has it only with `VLLM_SERVER_DEV_MODE=1`, 404 otherwise).
//! * SGLang (the `sglang` dialect): `POST` (or `GET`) `/flush_cache` answers 200
//!   `Cache flushed. ...`, or 400 with the same text while any request is running or
//!   waiting (SGLang's `http_server.py`).
//!
//! TGI, LightLLM and llama.cpp have no such endpoint: their dialects answer 404.
//! Without a prefix cache (or without an engine) there is nothing to drop and the reset
//! succeeds, as vLLM's does.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;

use crate::dialect::respond::response;
use crate::dialect::state::AppState;

/// SGLang's answer text, success or not.
const FLUSHED: &str = "Cache flushed.\nPlease check backend logs for more details. (When there are running or waiting requests, the operation will not be performed.)\n";

/// vLLM's reset route.
pub(crate) fn vllm_routes() -> Router<Arc<AppState>> {
    Router::new().route("/reset_prefix_cache", post(reset_prefix_cache))
}

/// SGLang's flush route.
pub(crate) fn sglang_routes() -> Router<Arc<AppState>> {
    Router::new().route("/flush_cache", post(flush_cache).get(flush_cache))
}

async fn reset_prefix_cache(State(st): State<Arc<AppState>>) -> Response {
    let success = st.reset_prefix_cache(false).await.unwrap_or(true);
    response(
        StatusCode::OK,
        Some("application/json"),
        serde_json::json!({ "success": success }).to_string(),
    )
}

async fn flush_cache(State(st): State<Arc<AppState>>) -> Response {
    let status = match st.reset_prefix_cache(true).await {
        Some(false) => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    response(status, Some("text/plain; charset=utf-8"), FLUSHED)
}
