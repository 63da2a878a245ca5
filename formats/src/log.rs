//! The run-log format (`llmib-log`, version 2): what happened to every request.
//!
//! Written incrementally by the replayer while the run goes on, so a killed run leaves a
//! file readable up to its last flushed record; the trailer says whether the run ended
//! normally. All times are integer nanoseconds since the run's start instant, measured
//! with a monotonic clock; `started_unix_ns` ties that instant to wall-clock time.
//!
//! A missing trailer is legal (a killed writer) but a damaged one is not: a tail that
//! starts like a trailer and does not verify is an error, never a silent truncation.
//! The reader knows every trailer field but `complete` and `ended_ns`, so a tail that is
//! a strict prefix of such a trailer is a cut one. Version 1 logs still read.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::server_info::{PrefixCacheReset, ServerIdentity};
use crate::spec::TraceSpec;
use crate::object::{decode, encode_named};
use crate::stream::{
    Next, ObjectReader, ObjectWriter, TrailerSums, decode_header, decode_trailer,
};
use crate::trailer::{Hole, Sealed, Tail};

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

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Complete answer received.
    Ok,
    /// The server answered an error status (or an error event / empty completion).
    HttpError,
    /// The per-request timeout expired.
    Timeout,
    /// No connection could be made or the request could not be sent.
    ConnectError,
    /// The response broke off or could not be parsed.
    StreamError,
    /// In flight when the run was interrupted.
    Cancelled,
    /// Never sent (run interrupted or `--duration` reached first).
    NotSent,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::StreamError,
        Outcome::Cancelled,
        Outcome::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::StreamError => "stream_error",
            Outcome::Cancelled => "cancelled",
            Outcome::NotSent => "not_sent",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Streamed events of one response, as two parallel columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    /// Receive time of each event, ns since run start.
    pub t_ns: Vec<u64>,
    /// Output tokens carried by each event.
    pub tokens: Vec<u32>,
}

impl Events {
    pub fn push(&mut self, t_ns: u64, tokens: u32) {
        self.t_ns.push(t_ns);
        self.tokens.push(tokens);
    }

    pub fn len(&self) -> usize {
        self.t_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_ns.is_empty()
    }

    pub fn total_tokens(&self) -> u64 {
        self.tokens.iter().map(|&t| t as u64).sum()
    }
}

/// One request's fate. Every trace request replayed (or not) ends as exactly one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The trace request's id.
    pub id: u64,
    /// When the request was due, ns since run start: trace `arrival_ns / time_scale`;
    /// for a session's later turn, the end of its previous turn plus
    /// `think_ns / time_scale`. Lateness is measured against it.
    pub scheduled_ns: u64,
    /// The trace request's session, for a turn of a multi-turn session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// The turn's index in its session, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// When the request task set off to send it (after any concurrency wait): the
    /// origin of what a user waits. Connection checkout, any new connection and the
    /// request's encoding come after it (see `connect_ns`, `sent_ns`).
    pub dispatched_ns: Option<u64>,
    /// When this request started a new connection because it found no idle one in the
    /// client's pool; absent when it reused a kept-alive connection. See
    /// `formats/README.md` for the one race in which the request may still have been
    /// sent on an idle connection that freed up meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_start_ns: Option<u64>,
    /// When that new connection was established (TCP connected and, for `https://`,
    /// the TLS handshake done); absent when the request reused a connection, or its
    /// connection attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ns: Option<u64>,
    /// When the request's bytes were handed to its connection: the HTTP stack had
    /// written the request head into the connection's buffer and took the body (the
    /// socket write follows in the same step). The origin of what the server took
    /// (`llmib analyze --from sent`). Absent in logs written before it existed, and for
    /// requests that never reached a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ns: Option<u64>,
    /// Times the request was resent on another connection because the kept-alive
    /// connection it had taken was closed (by the server, idle) before any byte of the
    /// request was written: the server never saw those attempts. 0 (absent) almost
    /// always; see `replayer/README.md` ("Connections the server closes").
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resends: u32,
    /// When the response status line and headers arrived.
    pub first_byte_ns: Option<u64>,
    /// Streamed events (one entry per answer for non-streamed requests).
    pub events: Events,
    /// When the response ended (complete, failed or cancelled).
    pub end_ns: Option<u64>,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// Error text, bounded to 512 bytes.
    pub error: Option<String>,
    /// Prompt tokens according to the trace.
    pub prompt_tokens: u32,
    /// Output tokens asked for (trace `max_tokens`).
    #[serde(default)]
    pub max_tokens: u32,
    /// Output tokens counted by the client (sum of `events.tokens`).
    pub output_tokens: Option<u32>,
    /// Output tokens the server reported (TGI details, OpenAI usage), when it did.
    pub server_output_tokens: Option<u32>,
    /// Prompt tokens the server reported, when it did.
    #[serde(default)]
    pub server_prompt_tokens: Option<u32>,
    /// Of the prompt tokens, those the server found in its prefix cache, when it reported
    /// them (OpenAI `usage.prompt_tokens_details.cached_tokens`, SGLang
    /// `meta_info.cached_tokens`). Absent otherwise and in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cached_tokens: Option<u32>,
    /// Reasoning models (OpenAI chat streams with `delta.reasoning` or
    /// `delta.reasoning_content`): receive time of the first event carrying reasoning
    /// text. Absent when no reasoning was streamed, and in logs written before it
    /// existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reasoning_ns: Option<u64>,
    /// Receive time of the first event carrying answer text (`delta.content`, or a
    /// completion's `text`): the end of time to first *answer* token. Recorded by the
    /// dialects that tell answer from reasoning (the OpenAI ones); absent for the others,
    /// for non-streamed answers, for answers that never came (the length limit hit while
    /// reasoning), and in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_answer_ns: Option<u64>,
    /// Output tokens of the reasoning text, counted by the client: the tokens of the
    /// events that carried reasoning (an event carrying both is split by text bytes).
    /// Part of `output_tokens`. Absent when the response had no reasoning text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u32>,
    /// Reasoning tokens the server reported (`usage.completion_tokens_details.reasoning_tokens`,
    /// or SGLang's `usage.reasoning_tokens`), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_reasoning_tokens: Option<u32>,
    /// How `events.tokens` were counted: `per_event` (one token per event: TGI and
    /// LightLLM streams), `usage_delta` (a cumulative count on every event: OpenAI
    /// continuous usage, SGLang, llama.cpp), `final_usage` (a
    /// server-reported total, split across events by their new text), `assumed_max_tokens`
    /// (no server count, but the answer stopped at the length limit or EOS was ignored:
    /// `max_tokens`, split likewise), `event_count` (one token per event assumed: a lower
    /// bound), `no_output` (the answer shows that nothing was generated: 0), `none`
    /// (nothing to count). See `replayer/README.md`.
    #[serde(default)]
    pub token_count_method: Option<String>,
    /// What the client inferred about this record's count or outcome rather than read
    /// (documented values in `formats/README.md`): `prompt_only`,
    /// `capped_at_max_model_len`, `events_lost`. Empty (and absent) in most records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub count_flags: Vec<String>,
    /// Finish reason reported by the server (`length`, `eos_token`, `stop`...).
    pub finish_reason: Option<String>,
    /// A warmup request, excluded from metrics by default.
    pub warmup: bool,
    /// Server timing headers (e.g. TGI `x-queue-time`), verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_timing: BTreeMap<String, String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LogRecord {
    /// A record for a request that was never sent.
    pub fn not_sent(
        id: u64,
        scheduled_ns: u64,
        prompt_tokens: u32,
        max_tokens: u32,
        warmup: bool,
    ) -> Self {
        LogRecord {
            id,
            scheduled_ns,
            session_id: None,
            turn: None,
            dispatched_ns: None,
            connect_start_ns: None,
            connect_ns: None,
            sent_ns: None,
            resends: 0,
            first_byte_ns: None,
            events: Events::default(),
            end_ns: None,
            outcome: Outcome::NotSent,
            http_status: None,
            error: None,
            prompt_tokens,
            max_tokens,
            output_tokens: None,
            server_output_tokens: None,
            server_prompt_tokens: None,
            server_cached_tokens: None,
            first_reasoning_ns: None,
            first_answer_ns: None,
            reasoning_tokens: None,
            server_reasoning_tokens: None,
            token_count_method: None,
            count_flags: Vec::new(),
            finish_reason: None,
            warmup,
            server_timing: BTreeMap::new(),
        }
    }
}

/// Last object of a run log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTrailer {
    /// Always true: marks this object as the trailer.
    pub trailer: bool,
    /// False when the run was interrupted (Ctrl-C) or stopped by `--duration`.
    pub complete: bool,
    pub record_count: u64,
    /// When the run ended, ns since run start.
    pub ended_ns: u64,
    /// CRC-32 (zlib) of the concatenated bytes of all record objects.
    pub crc32: u32,
    /// CRC-32 of the header object's bytes (version 2; `None` in version 1 logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_crc32: Option<u32>,
    /// CRC-32 of this trailer's bytes before the `trailer_crc32` key, which is the last
    /// entry (version 2; `None` in version 1 logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailer_crc32: Option<u32>,
}

impl Sealed for LogTrailer {
    fn set_trailer_crc32(&mut self, crc: u32) {
        self.trailer_crc32 = Some(crc);
    }
}

impl LogTrailer {
    fn sums(&self) -> TrailerSums {
        TrailerSums {
            trailer: self.trailer,
            record_count: self.record_count,
            crc32: self.crc32,
            header_crc32: self.header_crc32,
            trailer_crc32: self.trailer_crc32,
        }
    }
}

/// Trailer fields a reader cannot know before reading them.
const LOG_TRAILER_HOLES: &[(&str, Hole)] = &[("complete", Hole::Bool), ("ended_ns", Hole::Uint)];

/// Appends records to a run log as they finish.
pub struct LogWriter {
    inner: ObjectWriter<BufWriter<File>>,
}

impl LogWriter {
    /// Creates the log, replacing an existing regular file (a directory, device node,
    /// FIFO or socket at `path` is refused). See [`LogWriter::create_new`].
    pub fn create(path: impl AsRef<Path>, header: &LogHeader) -> Result<Self> {
        Self::open(path.as_ref(), header, true)
    }

    /// Creates the log only if nothing exists at `path` (atomically: `O_EXCL`), so a
    /// run can never replace an earlier one by accident.
    pub fn create_new(path: impl AsRef<Path>, header: &LogHeader) -> Result<Self> {
        Self::open(path.as_ref(), header, false)
    }

    fn open(path: &Path, header: &LogHeader, replace: bool) -> Result<Self> {
        crate::output::ensure_regular_or_absent(path)?;
        crate::output::ensure_parent_dir(path)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if replace {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                FormatError::Output(crate::output::OutputError::Exists {
                    path: path.to_path_buf(),
                })
            }
            _ => FormatError::io(path, e),
        })?;
        let mut inner = ObjectWriter::new(BufWriter::with_capacity(1 << 16, file), header)?;
        inner.flush()?;
        Ok(LogWriter { inner })
    }

    pub fn write(&mut self, record: &LogRecord) -> Result<()> {
        self.inner.write_record(record)
    }

    /// Pushes buffered records to the operating system.
    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    pub fn record_count(&self) -> u64 {
        self.inner.count()
    }

    /// Writes the trailer, flushes and syncs.
    pub fn finish(self, complete: bool, ended_ns: u64) -> Result<LogTrailer> {
        let mut trailer = LogTrailer {
            trailer: true,
            complete,
            record_count: self.inner.count(),
            ended_ns,
            crc32: self.inner.crc32(),
            header_crc32: Some(self.inner.header_crc32()),
            trailer_crc32: None,
        };
        let buf = self.inner.write_trailer(&mut trailer)?;
        let file = buf
            .into_inner()
            .map_err(|e| FormatError::Stream(e.into_error()))?;
        file.sync_all()?;
        Ok(trailer)
    }
}

/// How a log ended, known once all records were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// A valid trailer: count and checksum verified.
    Trailer(LogTrailer),
    /// No trailer (the writer was killed): every complete record was returned;
    /// `partial_tail` says whether a half-written record was dropped.
    Truncated { records: u64, partial_tail: bool },
}

/// Streams the records of a run log. A missing trailer is not an error (see
/// [`LogReader::end`]); a bad checksum or count, or a damaged trailer, is.
pub struct LogReader<R: BufRead> {
    header: LogHeader,
    objects: ObjectReader<R>,
    end: Option<LogEnd>,
    failed: bool,
}

impl LogReader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
        LogReader::new(BufReader::with_capacity(1 << 16, file))
    }
}

impl<R: BufRead> LogReader<R> {
    pub fn new(input: R) -> Result<Self> {
        let mut objects = ObjectReader::new(input);
        let header: LogHeader = decode_header(objects.header(LOG_FORMAT, LOG_VERSION)?)?;
        Ok(LogReader {
            header,
            objects,
            end: None,
            failed: false,
        })
    }

    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// How the file ended; `None` until the iterator is exhausted.
    pub fn end(&self) -> Option<&LogEnd> {
        self.end.as_ref()
    }

    fn next_record(&mut self) -> Result<Option<LogRecord>> {
        let index = self.objects.count();
        match self.objects.next()? {
            Next::Record(bytes) => Ok(Some(decode("log record", index + 1, bytes)?)),
            Next::Trailer(bytes) => {
                let trailer: LogTrailer = decode_trailer(bytes)?;
                self.objects.verify_trailer(&trailer.sums())?;
                self.end = Some(LogEnd::Trailer(trailer));
                Ok(None)
            }
            Next::EndWithoutTrailer => {
                self.end = Some(LogEnd::Truncated {
                    records: index,
                    partial_tail: false,
                });
                Ok(None)
            }
            Next::PartialTail => self.partial_tail(index),
            Next::Invalid(message) => {
                let message = format!("after {index} records: {message}");
                Err(match self.objects.tail(&[], &[]) {
                    Tail::DamagedTrailer => FormatError::DamagedTrailer(message),
                    _ => FormatError::Corrupted(message),
                })
            }
        }
    }

    /// A file ending inside an object: a cut record or a cut trailer is a truncated
    /// log (a killed writer), anything else an error.
    fn partial_tail(&mut self, index: u64) -> Result<Option<LogRecord>> {
        let expected = self.expected_trailer();
        match self.objects.tail(&expected, LOG_TRAILER_HOLES) {
            Tail::CutRecord | Tail::CutTrailer => {
                self.end = Some(LogEnd::Truncated {
                    records: index,
                    partial_tail: true,
                });
                Ok(None)
            }
            Tail::DamagedTrailer => Err(FormatError::DamagedTrailer(format!(
                "the file ends inside a trailer that does not match its {index} records"
            ))),
            Tail::Other => Err(FormatError::Corrupted(format!(
                "after {index} records the file ends inside an object that is neither a record nor a trailer"
            ))),
        }
    }

    /// The trailer this crate's writer puts after the records read so far, with
    /// placeholders for the fields in [`LOG_TRAILER_HOLES`].
    fn expected_trailer(&self) -> Vec<u8> {
        let sums = self.objects.expected_sums();
        let trailer = LogTrailer {
            trailer: true,
            complete: false,
            record_count: sums.record_count,
            ended_ns: 0,
            crc32: sums.crc32,
            header_crc32: sums.header_crc32,
            trailer_crc32: sums.trailer_crc32,
        };
        let mut out = Vec::new();
        encode_named("trailer", &trailer, &mut out).expect("a trailer always encodes");
        out
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<LogRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() || self.failed {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// A whole run log in memory.
#[derive(Debug, Clone)]
pub struct RunLog {
    pub header: LogHeader,
    pub records: Vec<LogRecord>,
    pub end: LogEnd,
}

impl RunLog {
    /// True when the log has a verified trailer.
    pub fn has_trailer(&self) -> bool {
        matches!(self.end, LogEnd::Trailer(_))
    }
}

/// Reads a whole run log (tolerating a missing trailer, see [`LogEnd`]).
pub fn read_log(path: impl AsRef<Path>) -> Result<RunLog> {
    let mut reader = LogReader::open(path)?;
    let mut records = Vec::new();
    for r in reader.by_ref() {
        records.push(r?);
    }
    let end = reader
        .end()
        .cloned()
        .expect("iterator exhausted without error");
    Ok(RunLog {
        header: reader.header,
        records,
        end,
    })
}
