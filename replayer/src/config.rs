//! What a replay is told to do: backend, endpoint, request fields, run control.
//!
//! [`BackendKind`] is also the one list of dialects: [`BackendKind::dialect`] maps each
//! name to the module that speaks it, so adding a backend means a new dialect module and
//! a new variant here.

use std::path::PathBuf;
use std::time::Duration;

use crate::dialect::adapter::Dialect;
use crate::dialect::{anthropic, lightllm, llamacpp, openai, responses, sglang, tgi, vllm};

/// The wire dialect spoken to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// text-generation-inference: `/generate_stream` (SSE) and `/generate`.
    Tgi,
    /// vLLM's legacy `api_server`: `/generate`, NUL-delimited cumulative JSON.
    Vllm,
    /// LightLLM: `/generate_stream` (SSE) and `/generate`.
    Lightllm,
    /// OpenAI-compatible `/v1/completions`.
    Openai,
    /// OpenAI-compatible `/v1/chat/completions`.
    OpenaiChat,
    /// SGLang's native `/generate` (SSE, cumulative text and counts, `[DONE]`).
    Sglang,
    /// llama.cpp `llama-server`'s native `/completion` (SSE, one event per token).
    Llamacpp,
    /// The OpenAI Responses API, `/v1/responses` (typed SSE events).
    OpenaiResponses,
    /// The Anthropic Messages API, `/v1/messages` (typed SSE events).
    Anthropic,
}

impl BackendKind {
    pub const ALL: [BackendKind; 9] = [
        BackendKind::Tgi,
        BackendKind::Vllm,
        BackendKind::Lightllm,
        BackendKind::Openai,
        BackendKind::OpenaiChat,
        BackendKind::Sglang,
        BackendKind::Llamacpp,
        BackendKind::OpenaiResponses,
        BackendKind::Anthropic,
    ];

    /// The name used on the command line and in run-log headers.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Tgi => "tgi",
            BackendKind::Vllm => "vllm",
            BackendKind::Lightllm => "lightllm",
            BackendKind::Openai => "openai",
            BackendKind::OpenaiChat => "openai-chat",
            BackendKind::Sglang => "sglang",
            BackendKind::Llamacpp => "llamacpp",
            BackendKind::OpenaiResponses => "openai-responses",
            BackendKind::Anthropic => "anthropic",
        }
    }

    /// OpenAI completions or chat completions (`stream_options`, `min_tokens`...).
    pub fn is_openai(self) -> bool {
        matches!(self, BackendKind::Openai | BackendKind::OpenaiChat)
    }

    /// The server lists its models at `/v1/models` (the OpenAI-style APIs: completions,
    /// chat, Responses, and Anthropic's Messages): the warm-up probe, the model
    /// discovery, and a trailing `/v1` accepted on the endpoint.
    pub fn serves_v1_models(self) -> bool {
        self.is_openai() || matches!(self, BackendKind::OpenaiResponses | BackendKind::Anthropic)
    }

    /// The environment variable the API key is read from when `--api-key-env` is not
    /// given: `OPENAI_API_KEY` for the OpenAI APIs, `ANTHROPIC_API_KEY` for Messages.
    pub fn api_key_env(self) -> Option<&'static str> {
        match self {
            BackendKind::Anthropic => Some("ANTHROPIC_API_KEY"),
            k if k.serves_v1_models() => Some("OPENAI_API_KEY"),
            _ => None,
        }
    }

    /// The module that speaks this dialect.
    pub(crate) fn dialect(self) -> &'static dyn Dialect {
        match self {
            BackendKind::Tgi => &tgi::Tgi,
            BackendKind::Vllm => &vllm::Vllm,
            BackendKind::Lightllm => &lightllm::Lightllm,
            BackendKind::Openai => &openai::OpenAi { chat: false },
            BackendKind::OpenaiChat => &openai::OpenAi { chat: true },
            BackendKind::Sglang => &sglang::Sglang,
            BackendKind::Llamacpp => &llamacpp::Llamacpp,
            BackendKind::OpenaiResponses => &responses::Responses,
            BackendKind::Anthropic => &anthropic::Anthropic,
        }
    }

    /// The API has an `ignore_eos` field at all (TGI hard-codes it off).
    pub fn has_ignore_eos(self) -> bool {
        self.dialect().has_ignore_eos()
    }

    /// The API accepts the prompt as a list of token ids.
    pub fn accepts_token_ids(self) -> bool {
        self.dialect().accepts_token_ids()
    }
}

impl std::str::FromStr for BackendKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        BackendKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown backend `{s}` (expected tgi, vllm, lightllm, openai, openai-chat, \
                     openai-responses, anthropic, sglang or llamacpp)"
                )
            })
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether to send `ignore_eos` (where the API has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IgnoreEos {
    /// As the trace request says (its `ignore_eos` field).
    #[default]
    FromTrace,
    Always,
    Never,
}

/// Non-standard request fields, chosen by the user because strict servers refuse them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestFields {
    pub ignore_eos: IgnoreEos,
    /// OpenAI dialect: send `min_tokens = max_tokens` (vLLM, SGLang).
    pub min_tokens: bool,
    /// OpenAI dialect, streaming: `stream_options.include_usage`.
    pub stream_usage: bool,
    /// OpenAI dialect, streaming: `stream_options.continuous_usage_stats` (vLLM, SGLang).
    pub continuous_usage: bool,
    /// Send the prompt as token ids (OpenAI completions only; the trace must hold them).
    pub prompt_token_ids: bool,
}

impl Default for RequestFields {
    fn default() -> Self {
        RequestFields {
            ignore_eos: IgnoreEos::FromTrace,
            min_tokens: false,
            stream_usage: true,
            continuous_usage: false,
            prompt_token_ids: false,
        }
    }
}

/// How to verify the server's certificate (`--cacert`, `--insecure`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsOptions {
    /// PEM file of extra trusted certificates (a private CA, a self-signed server).
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate at all.
    pub insecure: bool,
}

/// Where `--server-metrics` scrapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerMetricsSource {
    /// `/metrics` on the endpoint's host; a server that does not answer there is a
    /// warning, not a failure.
    Auto,
    /// This URL; a failure before the run fails the run.
    Url(String),
}

impl std::str::FromStr for ServerMetricsSource {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.trim() {
            "auto" => ServerMetricsSource::Auto,
            url => ServerMetricsSource::Url(url.to_string()),
        })
    }
}

/// How long a connection may stay idle in the pool before the client drops it, by
/// default: below the keep-alive timeouts of common servers (5 s for uvicorn, behind
/// vLLM's and SGLang's OpenAI servers and `transformers serve`, and for cpp-httplib,
/// behind llama.cpp's `llama-server`), so that the client never sends a request on a
/// connection the server is closing as idle.
pub const DEFAULT_POOL_IDLE: Duration = Duration::from_secs(4);

/// Default `--server-metrics-interval`.
pub const DEFAULT_SERVER_METRICS_INTERVAL: Duration = Duration::from_millis(500);

/// Everything [`crate::replay`] needs besides the trace.
#[derive(Debug, Clone)]
pub struct ReplayConfig {
    pub backend: BackendKind,
    /// Base URL, e.g. `http://127.0.0.1:8080` (a trailing `/v1` is accepted for OpenAI).
    pub endpoint: String,
    /// Model name sent to OpenAI-style servers (omitted when `None`).
    pub model: Option<String>,
    pub stream: bool,
    pub fields: RequestFields,
    /// Run log to write.
    pub output: PathBuf,
    /// Replace an existing run log at `output` (`--force`). Default: an existing file
    /// is an error, checked before anything is sent. The trace itself is never replaced.
    pub overwrite: bool,
    /// Cap on requests in flight; later requests wait (in trace order) and are logged
    /// with their wait. `None`: unbounded, true open loop.
    pub concurrency: Option<u32>,
    /// Keep-alive connections to open before the clock starts (`--connections`), so no
    /// request pays for connection setup inside its timings. `None`: what the
    /// concurrency cap needs, or without a cap the most requests due within one second
    /// (bounded by 1024 and the open-file limit); `Some(0)`: no warm-up.
    pub connections: Option<u32>,
    /// The first `warmup` requests (trace order) are marked `warmup` in the log.
    pub warmup: u32,
    /// Per-request timeout, from dispatch to the end of the response.
    pub timeout: Option<Duration>,
    /// Arrival offsets are divided by this (2.0 = twice as fast).
    pub time_scale: f64,
    /// Replay only the first N requests of the trace.
    pub max_requests: Option<u64>,
    /// Stop dispatching after this long; unsent requests are logged `not_sent`.
    pub duration: Option<Duration>,
    /// After a stop, how long in-flight requests may still finish before being cancelled.
    pub grace: Duration,
    /// Extra request headers (values are never logged).
    pub headers: Vec<(String, String)>,
    /// Sent as `Authorization: Bearer ...` to every backend; never logged.
    pub api_key: Option<String>,
    /// Certificate verification for `https://` endpoints (`--cacert`, `--insecure`).
    pub tls: TlsOptions,
    /// Idle connections older than this are dropped from the pool, never reused
    /// (`--pool-idle-timeout`; default [`DEFAULT_POOL_IDLE`], below common
    /// servers' keep-alive timeouts).
    pub pool_idle_timeout: Duration,
    /// The server's context limit (`--max-model-len`), when the user knows it: where
    /// the dialect's server caps output by it instead of refusing (vLLM legacy), the
    /// assumed counts are capped likewise and the records flagged.
    pub max_model_len: Option<u32>,
    /// Set when the server is llm-infer-bench's simulator (recorded in the header).
    pub simulated: Option<formats::SimulatedInfo>,
    /// Show a progress bar on stderr (only when it is a terminal).
    pub progress: bool,
    /// `--server-metrics`: scrape the server's Prometheus metrics during the run into
    /// the sidecar next to the log (see `crate::server_metrics`). `None`: do not.
    pub server_metrics: Option<ServerMetricsSource>,
    /// `--server-metrics-interval`: time between the starts of two scrapes.
    pub server_metrics_interval: Duration,
    /// `--shard I/N`: replay only this shard's requests (see `crate::shard`); the log
    /// holds their records alone.
    pub shard: Option<crate::shard::Shard>,
    /// `--start-at`: the run clock starts at this wall-clock instant, ns since the Unix
    /// epoch (see `crate::run::start_at`); it must be ahead. `None`: as soon as ready.
    pub start_at_unix_ns: Option<u64>,
    /// The offered rate a capacity command (`sweep`, `search`) chose `time_scale` for,
    /// requests/s in the profile's time; recorded in the log header, nothing else.
    pub offered_rate: Option<f64>,
    /// Ask the server what it is before the run and record it in the log header
    /// (`server_identity`, see `crate::identity`): a handful of `GET`s of its own.
    /// Off in [`ReplayConfig::new`], so that tests of the wire see only the requests
    /// they expect; every `llmib` command turns it on.
    pub identify_server: bool,
    /// `--reset-prefix-cache`: drop the server's prefix cache just before the clock
    /// starts (see `crate::net::cache_reset`) and record how that went.
    pub reset_prefix_cache: bool,
}

impl ReplayConfig {
    pub fn new(backend: BackendKind, endpoint: impl Into<String>, output: PathBuf) -> Self {
        ReplayConfig {
            backend,
            endpoint: endpoint.into(),
            model: None,
            stream: true,
            fields: RequestFields::default(),
            output,
            overwrite: false,
            concurrency: None,
            connections: None,
            warmup: 0,
            timeout: None,
            time_scale: 1.0,
            max_requests: None,
            duration: None,
            grace: Duration::from_secs(5),
            headers: Vec::new(),
            api_key: None,
            tls: TlsOptions::default(),
            pool_idle_timeout: DEFAULT_POOL_IDLE,
            max_model_len: None,
            simulated: None,
            progress: false,
            server_metrics: None,
            server_metrics_interval: DEFAULT_SERVER_METRICS_INTERVAL,
            shard: None,
            start_at_unix_ns: None,
            offered_rate: None,
            identify_server: false,
            reset_prefix_cache: false,
        }
    }
}
