//! The wire dialects: what each backend's HTTP API looks like (route, request body,
//! stream framing, event decoding, whole answers), one module per backend, and what
//! they share.
//!
//! * [`adapter`]: the [`adapter::Dialect`] and [`adapter::Decoder`] traits every dialect
//!   implements, the per-response accumulator (`Accum`) and token-count settling;
//! * [`reasoning`]: reasoning text told from answer text (OpenAI chat);
//! * [`tool_calls`]: tool calls in an answer (count, valid JSON, first argument token);
//! * [`scan`] and [`template`]: the allocation-free JSON scanner behind the decoders'
//!   fast paths, and the previous event as a template for the next (OpenAI streams);
//! * `tgi`, `vllm`, `lightllm`, `openai`, `sglang`, `llamacpp`, `responses` (OpenAI
//!   Responses), `anthropic` (Messages): one dialect each.
//!
//! Sans-I/O: nothing here touches the network or the run; the dialects use only the
//! modules of this folder, and the rest of the crate reaches them through
//! `BackendKind::dialect` (`config.rs`).

pub mod adapter;
pub(crate) mod anthropic;
pub(crate) mod lightllm;
pub(crate) mod llamacpp;
pub(crate) mod openai;
pub(crate) mod reasoning;
pub(crate) mod responses;
pub(crate) mod scan;
pub(crate) mod sglang;
pub(crate) mod template;
pub(crate) mod tgi;
pub(crate) mod tool_calls;
pub(crate) mod vllm;
