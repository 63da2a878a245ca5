//! What the metrics of one run are: [`RunMetrics`] (every definition, the JSON output's
//! field names) and the per-request [`Samples`] kept for pooling and figures.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::metrics::goodput::Goodput;
use crate::metrics::options::{LatencyFrom, TokenSource};
use crate::metrics::prefix_cache::PrefixCache;
use crate::metrics::reasoning::ReasoningTotals;
use crate::metrics::sessions::{SessionMetrics, TurnRow};
use crate::metrics::tokens::TokenTotals;
use crate::metrics::tool_calls::ToolCallTotals;
use crate::stats::Stats;

/// Every metric of one run. Field names are the JSON output's names.
#[derive(Debug, Clone, Serialize)]
pub struct RunMetrics {
    /// Requests measured (warmup excluded unless `--include-warmup`), all outcomes.
    pub requests: u64,
    pub ok: u64,
    /// Warmup requests left out.
    pub warmup_excluded: u64,
    /// Count per outcome (`ok`, `http_error`, `timeout`, ...), measured requests.
    pub outcomes: BTreeMap<String, u64>,
    /// `ok` requests whose output was shorter than asked (`output < max_tokens`).
    pub early_stops: u64,
    /// `ok` requests whose output was longer than asked.
    pub over_length: u64,
    /// Measured requests per `count_flags` flag (`prompt_only`,
    /// `capped_at_max_model_len`, `events_lost`...): counts the client inferred rather
    /// than read. Empty when no record carries a flag.
    pub count_flags: BTreeMap<String, u64>,
    /// The server's prefix cache, over the measured requests whose server reported its
    /// cached prompt tokens; absent when none did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_cache: Option<PrefixCache>,
    /// First dispatch to last completion of the measured requests, seconds.
    pub duration_s: Option<f64>,
    /// (prompt + output tokens of `ok` requests) / duration: the original definition.
    pub throughput_tok_s: Option<f64>,
    /// The same with requested output tokens (the original's count).
    pub throughput_requested_tok_s: Option<f64>,
    /// Output tokens of `ok` requests / duration.
    pub output_tok_s: Option<f64>,
    /// `ok` requests / duration.
    pub request_s: Option<f64>,
    pub output_tokens_source: TokenSource,
    pub tokens: TokenTotals,
    /// Whether the run streamed; TTFT, TPOT and ITL need a stream.
    pub streamed: bool,
    /// First token minus dispatch.
    pub ttft_s: Stats,
    /// First token minus scheduled time.
    pub ttft_from_scheduled_s: Stats,
    /// First token minus send time (dispatch where the record has no `sent_ns`).
    pub ttft_from_sent_s: Stats,
    /// Time to first answer token: first answer text minus dispatch, over the `ok`
    /// requests whose record has `first_answer_ns` (reasoning models: after the
    /// reasoning; otherwise the same as TTFT).
    pub ttfat_s: Stats,
    /// First answer token minus scheduled time.
    pub ttfat_from_scheduled_s: Stats,
    /// First answer token minus send time.
    pub ttfat_from_sent_s: Stats,
    /// Reasoning requests and tokens.
    pub reasoning: ReasoningTotals,
    /// Tool calls of the `ok` requests (requests with calls, calls, valid, invalid,
    /// argument tokens).
    pub tool_calls: ToolCallTotals,
    /// Time to first tool-call argument token, from dispatch, over the `ok` requests
    /// whose answer streamed a call.
    pub first_tool_s: Stats,
    /// (E2E - TTFT) / (output tokens - 1), requests with at least 2 output tokens.
    pub tpot_s: Stats,
    /// Gaps between consecutive token-carrying events.
    pub itl_s: Stats,
    /// Each gap divided by the token count of the event ending it.
    pub itl_per_token_s: Stats,
    /// End minus dispatch (the original's "request latency").
    pub e2e_s: Stats,
    /// End minus scheduled time.
    pub e2e_from_scheduled_s: Stats,
    /// End minus send time (dispatch where the record has no `sent_ns`).
    pub e2e_from_sent_s: Stats,
    /// E2E / output tokens (the original's "per-token latency").
    pub per_token_latency_s: Stats,
    /// E2E from scheduled / output tokens.
    pub per_token_latency_from_scheduled_s: Stats,
    /// E2E from send / output tokens.
    pub per_token_latency_from_sent_s: Stats,
    /// Dispatch minus scheduled time, every dispatched measured request.
    pub lateness_s: Stats,
    /// Send minus dispatch of `ok` requests with `sent_ns`: waiting for a connection,
    /// opening one when none was idle, encoding the request.
    pub send_delay_s: Stats,
    /// Dispatched measured requests that started a new connection (`connect_start_ns`).
    pub new_connections: u64,
    /// `ok` requests without `sent_ns`: their latencies from send are from dispatch.
    pub sent_missing: u64,
    pub goodput: Option<Goodput>,
    /// Multi-turn sessions, when the run's records carry `session_id`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sessions: Option<SessionMetrics>,
    /// TTFT, E2E and cached share by turn index (from `--from`), when the run's records
    /// carry `turn`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_by_turn: Option<Vec<TurnRow>>,
}

impl RunMetrics {
    /// TTFT measured from `from`.
    pub fn ttft_from(&self, from: LatencyFrom) -> &Stats {
        match from {
            LatencyFrom::Dispatch => &self.ttft_s,
            LatencyFrom::Sent => &self.ttft_from_sent_s,
            LatencyFrom::Scheduled => &self.ttft_from_scheduled_s,
        }
    }

    /// E2E measured from `from`.
    pub fn e2e_from(&self, from: LatencyFrom) -> &Stats {
        match from {
            LatencyFrom::Dispatch => &self.e2e_s,
            LatencyFrom::Sent => &self.e2e_from_sent_s,
            LatencyFrom::Scheduled => &self.e2e_from_scheduled_s,
        }
    }

    /// TTFAT measured from `from`.
    pub fn ttfat_from(&self, from: LatencyFrom) -> &Stats {
        match from {
            LatencyFrom::Dispatch => &self.ttfat_s,
            LatencyFrom::Sent => &self.ttfat_from_sent_s,
            LatencyFrom::Scheduled => &self.ttfat_from_scheduled_s,
        }
    }

    /// Per-token latency measured from `from`.
    pub fn per_token_latency_from(&self, from: LatencyFrom) -> &Stats {
        match from {
            LatencyFrom::Dispatch => &self.per_token_latency_s,
            LatencyFrom::Sent => &self.per_token_latency_from_sent_s,
            LatencyFrom::Scheduled => &self.per_token_latency_from_scheduled_s,
        }
    }
}

/// Per-request samples kept for tables that pool runs and for figures, under the
/// options' latency origin. Not serialized.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    pub e2e_s: Vec<f64>,
    pub per_token_s: Vec<f64>,
    pub ttft_s: Vec<f64>,
    pub itl_s: Vec<f64>,
    /// Per-request TPOT (requests with at least 2 output tokens).
    pub tpot_s: Vec<f64>,
    /// Duration and token totals, to pool throughput over repeated runs.
    pub duration_s: Option<f64>,
    pub tokens_used: u64,
    pub tokens_requested: u64,
}
