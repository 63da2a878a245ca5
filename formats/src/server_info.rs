//! What a run log's header says about the server beyond its URL: what the server said
//! about itself before the run ([`ServerIdentity`]) and whether its prefix cache was
//! dropped before the run ([`PrefixCacheReset`]).
//!
//! Why: a run's numbers belong to one server build and one cache state. Two runs of the
//! same trace against "the endpoint" may have measured two vLLM versions, two block
//! sizes, or a cold and a warm prefix cache; without these fields nothing in the log
//! could tell. Both are optional: logs written before they existed still read, and a
//! server that says nothing about itself leaves [`ServerIdentity`] mostly empty.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What the server said about itself before the run, from requests without side effects
/// (`GET` only), each bounded in time and size; an endpoint the server does not have is
/// simply absent. See `formats/README.md` for where each field comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerIdentity {
    /// The server software, when recognised: `vllm`, `sglang`, `tgi`, `llamacpp` or
    /// `llmib-sim` (llm-infer-bench's simulator).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Its version as it reports it (vLLM `/version`, TGI and SGLang `version`,
    /// llama.cpp `build_info`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The `Server` response header (e.g. `uvicorn`, `llama.cpp`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_header: Option<String>,
    /// The models it serves, with their context limit when it says.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<ServedModel>,
    /// Its KV-cache settings as it reports them, verbatim: vLLM's `vllm:cache_config_info`
    /// labels (`block_size`, `num_gpu_blocks`, `kv_cache_size_tokens`,
    /// `enable_prefix_caching`...); SGLang's `page_size`, `max_total_num_tokens`,
    /// `disable_radix_cache`; llama.cpp's `n_ctx`, `total_slots`; TGI's
    /// `max_batch_total_tokens`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub cache_config: BTreeMap<String, String>,
    /// The endpoints that answered, with their answer (bounded).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<IdentitySource>,
    /// Wall time the requests took, ns (before the run's clock started).
    pub elapsed_ns: u64,
}

impl ServerIdentity {
    /// One line naming the server by what it said: kind, version, models and KV-cache
    /// settings (`vllm 0.32.0 model tiny-llama cache block_size=128,...`); "" when it said
    /// nothing. Two logs of one server give the same line (`llmib calibrate` and `llmib
    /// compare` compare them).
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.kind.clone());
        parts.extend(self.version.clone());
        let models: Vec<&str> = self.models.iter().map(|m| m.id.as_str()).collect();
        if !models.is_empty() {
            parts.push(format!("model {}", models.join(",")));
        }
        let cache: Vec<String> = self
            .cache_config
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !cache.is_empty() {
            parts.push(format!("cache {}", cache.join(",")));
        }
        parts.join(" ")
    }

    /// True when the server said nothing at all.
    pub fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.version.is_none()
            && self.server_header.is_none()
            && self.models.is_empty()
            && self.cache_config.is_empty()
    }
}

/// One model of the server's list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedModel {
    pub id: String,
    /// Its context limit: OpenAI list `max_model_len` (vLLM, SGLang), TGI
    /// `max_total_tokens`, llama.cpp `n_ctx`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u64>,
}

/// One endpoint that answered the identity requests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentitySource {
    /// The request, e.g. `GET /v1/models`.
    pub request: String,
    /// The answer, compact JSON with long strings shortened, at most 4 KiB (absent for
    /// `/metrics`, of which only `cache_config` is kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// `body` was cut at its bound (it is then not valid JSON).
    #[serde(default)]
    pub truncated: bool,
}

/// `--reset-prefix-cache` (and sweeps and searches by default): the request that dropped
/// the server's prefix cache before the run, and what the server answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrefixCacheReset {
    /// `ok` (dropped), `refused` (the server has the endpoint but did not reset: vLLM's
    /// `{"success": false}` while blocks are in use, SGLang's 400 while requests run;
    /// retried for a while first), `unsupported` (every candidate endpoint answered
    /// 404, 405 or 501: vLLM without `VLLM_SERVER_DEV_MODE=1`, TGI, llama.cpp) or
    /// `failed` (no answer).
    pub outcome: String,
    /// The request that decided the outcome, e.g. `POST /reset_prefix_cache`; absent
    /// when unsupported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// Every request tried, in order (`POST /reset_prefix_cache`, `POST /flush_cache`).
    #[serde(default)]
    pub tried: Vec<String>,
    /// Requests sent to the deciding endpoint (more than 1 when refusals were retried).
    #[serde(default)]
    pub attempts: u32,
    /// The deciding answer's HTTP status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// The deciding answer's body (at most 256 bytes), or why there was none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
    /// Wall-clock time the deciding answer arrived, ns since the Unix epoch.
    pub at_unix_ns: u64,
    /// How long before the run's start instant it arrived, ns: the reset happened at run
    /// clock `-before_start_ns` (no request of the run was sent before it).
    pub before_start_ns: u64,
}

impl PrefixCacheReset {
    /// The cache was dropped.
    pub fn is_ok(&self) -> bool {
        self.outcome == "ok"
    }
}
