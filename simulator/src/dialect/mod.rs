//! The wire formats, one module per API the simulator speaks: [`tgi`]
//! (text-generation-inference 1.0.2), [`vllm`] (vLLM's 2023 api_server), [`lightllm`],
//! [`openai`] (completions and chat, as vLLM serves them, and beside them the Responses
//! and Anthropic Messages APIs, framed by [`typed_sse`]; its request in
//! [`openai_request`]), [`sglang`] (its native
//! `/generate`) and [`llamacpp`] (`llama-server`'s `/completion`), plus
//! [`cache_admin`] (the prefix-cache reset endpoints) and [`sampling`] (the 2023
//! servers' `SamplingParams` checks).
//!
//! What the six share, used by each and using none of them: [`state`] (the server state
//! every handler gets), [`request`] (a request's life: validated request, plan, truth
//! record), [`tokens`] (the engine's or the null profile's tokens), [`stream`]
//! (streaming them through a dialect's framer) and [`respond`] (response helpers).
//!
//! A dialect handler parses and validates its request format, then calls
//! `AppState::plan` (output length, fault) and `Job::start` (submission to the engine,
//! or the null source), and either streams the tokens through a `Framer` (its event
//! bytes) with `stream_body`, or awaits them all with `Job::collect`. The truth record
//! travels with the request in a `Ctx`, which writes it when the request's life ends,
//! including when the client goes away (the response future or body is dropped).

pub(crate) mod cache_admin;
pub(crate) mod lightllm;
pub(crate) mod llamacpp;
pub(crate) mod openai;
pub(crate) mod openai_request;
pub(crate) mod request;
pub(crate) mod respond;
pub(crate) mod sampling;
pub(crate) mod sglang;
pub(crate) mod state;
pub(crate) mod stream;
pub(crate) mod tgi;
pub(crate) mod tokens;
pub(crate) mod typed_sse;
pub(crate) mod vllm;
