//! What the metric definitions can be asked to change (`llmib analyze` flags): which
//! output-token count, which latency origin, warmup or not, the goodput SLO.
//!
//! Why its own module: the per-run metrics, the session metrics and the report all
//! read these options; none of them owns them.

use serde::Serialize;

use crate::slo::Slo;

/// Which output-token count a metric divides by (`--output-tokens`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TokenSource {
    /// Tokens the client counted in the stream (`output_tokens` of the record).
    #[default]
    Client,
    /// Tokens the server reported (usage / details); the client count where the server
    /// reported none (counted in `tokens.server_fallbacks`).
    Server,
    /// Tokens asked for (`max_tokens`): the original benchmark's count, equal to the
    /// others when the server honoured `ignore_eos`.
    Requested,
}

impl TokenSource {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "client" => TokenSource::Client,
            "server" => TokenSource::Server,
            "requested" => TokenSource::Requested,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            TokenSource::Client => "client",
            TokenSource::Server => "server",
            TokenSource::Requested => "requested",
        }
    }
}

/// Origin of latencies in tables and SLO checks (`--from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LatencyFrom {
    /// From the moment the client set off to send the request (`dispatched_ns`): what
    /// a user waits, connection setup included (the original benchmark's measure).
    #[default]
    Dispatch,
    /// From the moment the request's bytes were handed to its connection
    /// (`sent_ns`): what the server took. Records without `sent_ns` (logs written
    /// before it existed) fall back to dispatch (`sent_missing`, warned).
    Sent,
    /// From the moment the trace scheduled it: includes client lateness
    /// (coordinated-omission corrected).
    Scheduled,
}

impl LatencyFrom {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "dispatch" | "dispatched" => LatencyFrom::Dispatch,
            "sent" | "send" => LatencyFrom::Sent,
            "scheduled" | "schedule" => LatencyFrom::Scheduled,
            _ => return None,
        })
    }
    pub fn name(self) -> &'static str {
        match self {
            LatencyFrom::Dispatch => "dispatch",
            LatencyFrom::Sent => "sent",
            LatencyFrom::Scheduled => "scheduled",
        }
    }
}

/// What the metric computation needs from the analysis options.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct MetricOptions {
    pub include_warmup: bool,
    pub output_tokens: TokenSource,
    pub latency_from: LatencyFrom,
    pub slo: Option<Slo>,
}
