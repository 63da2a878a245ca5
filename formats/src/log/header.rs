//! The run log's header: the first object, saying what was run against what (the trace,
//! the backend, the replay options, shards and clock sync), so that a log read long
//! after still says how its numbers were made.

use serde::{Deserialize, Serialize};

use crate::server_info::{PrefixCacheReset, ServerIdentity};
use crate::spec::TraceSpec;

pub const LOG_FORMAT: &str = "llmib-log";
/// Version written; readers read every version up to it.
pub const LOG_VERSION: u32 = 2;

/// First object of a run log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogHeader {
    /// Always `"llmib-log"`.
    pub format: String,
    /// Format version, currently 2.
    pub version: u32,
    pub trace: TraceRef,
    pub backend: BackendInfo,
    /// Wall-clock time of the run's start instant, ns since the Unix epoch.
    pub started_unix_ns: u64,
    /// Version of llm-infer-bench that wrote the log.
    pub tool_version: String,
    /// Host name of the client machine.
    pub host: String,
    /// How the replay was run.
    pub options: ReplayOptions,
    /// What the server said about itself before the run (see [`ServerIdentity`]);
    /// `None` in logs written before it existed, and by callers that did not ask.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_identity: Option<ServerIdentity>,
    /// The prefix-cache reset done before the run (`--reset-prefix-cache`, and sweeps
    /// and searches by default); `None` when none was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prefix_cache_reset: Option<PrefixCacheReset>,
}

impl SimulatedInfo {
    /// Parses a [`SIMULATOR_HEADER`] value.
    pub fn from_header(value: &str) -> Option<SimulatedInfo> {
        let mut profile = None;
        let mut dialect = None;
        let mut speedup = None;
        for part in value.split(';') {
            match part.trim().split_once('=') {
                Some(("profile", v)) => profile = Some(v.trim().to_string()),
                Some(("dialect", v)) => dialect = Some(v.trim().to_string()),
                Some(("speedup", v)) => {
                    speedup = v
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|k| k.is_finite() && *k >= 1.0)
                }
                _ => {}
            }
        }
        Some(SimulatedInfo {
            dialect: dialect.unwrap_or_default(),
            profile: profile?,
            speedup,
            virtual_time: false,
        })
    }

    /// The [`SIMULATOR_HEADER`] value that [`Self::from_header`] parses back.
    pub fn header_value(&self) -> String {
        let mut v = format!("profile={}; dialect={}", self.profile, self.dialect);
        if let Some(k) = self.speedup {
            v.push_str(&format!("; speedup={k}"));
        }
        v
    }
}

impl LogHeader {
    pub fn new(
        trace: TraceRef,
        backend: BackendInfo,
        started_unix_ns: u64,
        tool_version: impl Into<String>,
        host: impl Into<String>,
        options: ReplayOptions,
    ) -> Self {
        LogHeader {
            format: LOG_FORMAT.to_string(),
            version: LOG_VERSION,
            trace,
            backend,
            started_unix_ns,
            tool_version: tool_version.into(),
            host: host.into(),
            options,
            server_identity: None,
            prefix_cache_reset: None,
        }
    }
}

/// Which trace was replayed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceRef {
    pub name: String,
    /// sha256 of the trace file, lowercase hex.
    pub sha256: String,
    /// Requests in the trace.
    #[serde(default)]
    pub request_count: u64,
    /// The trace header's `spec`, copied so the analyzer can label runs from logs alone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<TraceSpec>,
}

/// The server the run talked to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BackendInfo {
    /// `tgi`, `vllm`, `lightllm`, `openai` or `openai-chat`.
    pub kind: String,
    /// Base URL; a password in it is written as `***` (`http://user:***@host`), never
    /// as given.
    pub endpoint: String,
    /// Model name sent to the server, when any.
    #[serde(default)]
    pub model: Option<String>,
    /// Set when the server was llm-infer-bench's simulator: the numbers are simulated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulated: Option<SimulatedInfo>,
}

/// Response header llm-infer-bench's simulator puts on every answer
/// (`profile=NAME; dialect=DIALECT`), so the replayer records a run against it as
/// simulated even when the user did not say so.
pub const SIMULATOR_HEADER: &str = "x-llmib-simulator";

/// Simulator settings of a simulated run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SimulatedInfo {
    pub dialect: String,
    pub profile: String,
    /// The simulator ran its profile this many times faster than calibrated
    /// (`llmib sim --speedup K`): the run's times are the profile's divided by it.
    /// Absent when 1, and in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
    /// No server and no HTTP: the engine model of the profile ran the trace in virtual
    /// time and wrote this log (`llmib sweep/search --profile` without `--endpoint`;
    /// `simulator::virtual_run`). Absent (false) for a replay, and in older logs.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub virtual_time: bool,
}

/// Replay options, recorded for reproducibility. Header values given with `--header`
/// and API keys are never recorded, only header names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplayOptions {
    /// Streaming requests.
    pub stream: bool,
    /// Cap on requests in flight; `None` = unbounded (open loop).
    pub concurrency: Option<u32>,
    /// The first `warmup` requests are marked `warmup` and excluded from metrics.
    pub warmup: u32,
    /// Per-request timeout, milliseconds.
    pub timeout_ms: Option<u64>,
    /// Arrival offsets are divided by this (2 = twice as fast).
    pub time_scale: f64,
    pub max_requests: Option<u64>,
    /// Dispatching stops after this long, milliseconds.
    pub duration_ms: Option<u64>,
    /// `ignore_eos` was sent where the API has it.
    pub send_ignore_eos: bool,
    /// `min_tokens = max_tokens` was sent (OpenAI dialect).
    pub send_min_tokens: bool,
    /// `stream_options.include_usage` was sent (OpenAI dialect).
    pub send_include_usage: bool,
    /// `stream_options.continuous_usage_stats` was sent (OpenAI dialect).
    pub send_continuous_usage: bool,
    /// Prompts were sent as token ids.
    pub prompt_as_token_ids: bool,
    /// Names of extra request headers (values are not recorded).
    pub header_names: Vec<String>,
    /// Keep-alive connections opened before the clock started (`--connections`);
    /// `None` in logs written before the warm-up existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warm_connections: Option<WarmConnections>,
    /// `--insecure`: the server's TLS certificate was not verified.
    pub tls_insecure: bool,
    /// `--cacert FILE`: the PEM file whose certificates were trusted besides the
    /// built-in and system roots, as given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_cacert: Option<String>,
    /// Idle connections older than this were dropped from the client's pool, never
    /// reused (`--pool-idle-timeout`), milliseconds; `None` in logs written before it
    /// was recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool_idle_timeout_ms: Option<u64>,
    /// `backend.model` was not given but discovered: the only model the server listed
    /// at `GET /v1/models` (OpenAI dialects).
    pub model_discovered: bool,
    /// `--max-model-len N`: the server's context limit as the user gave it; assumed
    /// counts were capped by it where the dialect's server caps output (vLLM legacy:
    /// `N - prompt_tokens + 1`, flagged per record). `None` when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_model_len: Option<u32>,
    /// `--server-metrics`: the server's own metrics were scraped during the run into
    /// the sidecar file next to this log ([`crate::sidecar_path`]); `None` when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_metrics: Option<crate::ServerMetricsRef>,
    /// `--shard I/N`: this log holds only the requests of shard `index` of `count`
    /// (a partial log by design: the other shards' requests have no record here).
    /// `None` for an unsharded run and for a merged log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shard: Option<ShardInfo>,
    /// `--start-at`: the run's start instant was a wall-clock time given in advance
    /// (shared by the shards of one run); `started_unix_ns` equals it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_at: Option<StartAtInfo>,
    /// `llmib merge`: the shard logs this log was merged from, by shard index. Empty
    /// (absent) for a log written by a replay.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<MergedShard>,
    /// `llmib sweep` and `llmib search`: the offered rate this run was asked for,
    /// requests/s in the profile's time (its `time_scale` was chosen to offer it);
    /// the analysis labels the run by it. `None` for a plain replay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_rate: Option<f64>,
}

/// Most shards one run may be split into (`--shard I/N`, `--shards N`, and what a log
/// header may claim): a sanity limit far above any fleet of client machines, which
/// keeps a damaged or hostile header from sizing an allocation.
pub const MAX_SHARDS: u32 = 1 << 16;

/// The shard a log's replay covered (`llmib replay --shard I/N`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// This shard, from 0.
    pub index: u32,
    /// Shards of the run.
    pub count: u32,
    /// The assignment rule, versioned (`arrival-least-loaded-v1`, see
    /// `replayer/README.md`): the same trace, count and rule give every shard the
    /// same requests anywhere.
    pub rule: String,
    /// Requests assigned to this shard (each ends as one record of this log).
    pub requests: u64,
    /// Requests split between all the shards: the trace's, or the first
    /// `max_requests`.
    pub total_requests: u64,
}

/// A start instant fixed in advance (`llmib replay --start-at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartAtInfo {
    /// The instant, ns since the Unix epoch (`CLOCK_REALTIME`).
    pub unix_ns: u64,
    /// How the instant became the run clock: `realtime-to-monotonic` (the wall clock
    /// waited on until shortly before it, then the instant mapped once onto the
    /// monotonic clock all run times are measured with).
    pub clock_source: String,
    /// How early the mapping was done, ns before the instant.
    pub mapped_ahead_ns: u64,
    /// The kernel's view of the wall clock's synchronisation when the mapping was
    /// done (`adjtimex`); `None` where it cannot be read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<ClockSync>,
}

/// The host clock's synchronisation state as the kernel reports it (`adjtimex(2)`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockSync {
    /// The kernel does not flag the clock unsynchronised (`STA_UNSYNC` clear and the
    /// call did not return `TIME_ERROR`): a time daemon (chrony, ntpd,
    /// systemd-timesyncd, PTP) is disciplining it.
    pub synchronized: bool,
    /// The kernel's maximum error estimate, microseconds.
    pub max_error_us: i64,
    /// The kernel's estimated error, microseconds.
    pub est_error_us: i64,
}

/// One shard log of a merged log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MergedShard {
    /// The shard's index.
    pub index: u32,
    /// The shard log's file name, as given to `llmib merge`.
    pub file: String,
    /// sha256 of the shard log file.
    pub sha256: String,
    /// The host that ran the shard.
    pub host: String,
    /// The shard log's `started_unix_ns`.
    pub started_unix_ns: u64,
    /// Records taken from it.
    pub records: u64,
    /// Its trailer said the shard's run completed.
    pub complete: bool,
}

/// The connection warm-up done before the run's clock started (`--connections N`):
/// N concurrent cheap requests (`GET /health`, `/v1/models` for OpenAI dialects) sent
/// while the client's pool was empty, so each started a connection of its own, and
/// every one of those connects waited for; the connections are then idle in the pool.
/// Those requests are in no record and no statistic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmConnections {
    /// Connections asked for; 0 when the warm-up was disabled (`--connections 0`).
    pub requested: u32,
    /// Why that many: `flag` (given with `--connections`), `concurrency` (the
    /// concurrency cap), `trace_peak` (the most requests due within any one second at
    /// the run's time scale), `disabled`. The defaults are bounded (1024, and the
    /// open-file limit); `bounded` says when that lowered the count.
    pub basis: String,
    /// The default was lowered by the bound of 1024 or by the open-file limit.
    #[serde(default)]
    pub bounded: bool,
    /// Connections the client established for the warm-up (counted where connections
    /// are made, every connect it started waited for): normally `requested`, fewer
    /// when connects failed or timed out.
    pub opened: u32,
    /// Wall time the warm-up took, ns (before the clock started).
    pub elapsed_ns: u64,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            stream: true,
            concurrency: None,
            warmup: 0,
            timeout_ms: None,
            time_scale: 1.0,
            max_requests: None,
            duration_ms: None,
            send_ignore_eos: true,
            send_min_tokens: false,
            send_include_usage: true,
            send_continuous_usage: false,
            prompt_as_token_ids: false,
            header_names: Vec::new(),
            warm_connections: None,
            tls_insecure: false,
            tls_cacert: None,
            pool_idle_timeout_ms: None,
            model_discovered: false,
            max_model_len: None,
            server_metrics: None,
            shard: None,
            start_at: None,
            merged_from: Vec::new(),
            offered_rate: None,
        }
    }
}
