//! Per-run metrics, computed from the requests and events tables under the definitions
//! of `analyzer/README.md`.
//!
//! Why plain loops over column slices rather than polars expressions: every definition
//! here (which requests count, which token count, which origin for a latency) is a
//! line of code a reviewer can check against the README, and one pass over the run's
//! rows computes all of them; a 13M-event run is analysed in well under a second.
//!
//! Units: latencies in seconds, throughputs in tokens or requests per second.

pub(crate) mod columns;
pub mod options;
pub(crate) mod origins;
pub mod prefix_cache;
pub mod rates;
pub mod sessions;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::Result;
use crate::load::runs::{RunInfo, Runs};
use crate::stats::{Stats, summarize};
use columns::{EvCols, ReqCols};
use origins::{ByOrigin, Origins, secs};
use sessions::{SessionMetrics, TurnRow};

pub use crate::slo::Slo;
pub use options::{LatencyFrom, MetricOptions, TokenSource};
pub use prefix_cache::PrefixCache;

/// Token totals of a run's successful requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenTotals {
    /// Prompt tokens (the trace's count) of the `ok` requests.
    pub prompt: u64,
    /// Output tokens counted by the client.
    pub output_client: u64,
    /// Output tokens reported by the server, over the requests where it reported any.
    pub output_server: u64,
    /// `ok` requests with a server-reported count.
    pub server_reported: u64,
    /// Output tokens asked for (`max_tokens`).
    pub output_requested: u64,
    /// Output tokens under the chosen source (`output_tokens_source`).
    pub output_used: u64,
    /// With `--output-tokens server`: requests that fell back to the client count.
    pub server_fallbacks: u64,
}

/// Reasoning models: what the `ok` requests' responses said about reasoning (records of
/// streams that told reasoning text from answer text, see `formats/README.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReasoningTotals {
    /// `ok` requests whose response carried reasoning text.
    pub requests: u64,
    /// Of those, requests whose answer never came (no answer text: typically the
    /// length limit hit while reasoning); they have no time to first answer token.
    pub without_answer: u64,
    /// Reasoning tokens counted by the client (part of the output tokens).
    pub tokens_client: u64,
    /// Reasoning tokens the server reported, over the requests where it reported any.
    pub tokens_server: u64,
    /// `ok` requests with a server-reported reasoning count.
    pub server_reported: u64,
}

/// Goodput: `ok` requests that met every SLO.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goodput {
    pub slo: Slo,
    pub good: u64,
    /// `good` / measured requests (all outcomes).
    pub fraction: Option<f64>,
    /// `good` / run duration.
    pub request_s: Option<f64>,
}

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

fn per_s(x: f64, d: Option<f64>) -> Option<f64> {
    d.filter(|d| *d > 0.0).map(|d| x / d)
}

/// What the `ok` requests of a run said about reasoning, as they are counted.
#[derive(Debug, Default)]
struct Reasoning {
    ttfat: ByOrigin,
    totals: ReasoningTotals,
}

impl Reasoning {
    /// Request `i`, `ok`; `o` its origins when it was dispatched and ended, `streamed`
    /// whether times to first tokens are measured at all.
    fn add(&mut self, rc: &ReqCols, i: usize, o: Option<Origins>, streamed: bool) {
        let t = &mut self.totals;
        let reasoned = rc.first_reasoning[i].is_some() || rc.reasoning_client[i].is_some();
        if reasoned {
            t.requests += 1;
            t.without_answer += u64::from(rc.first_answer[i].is_none() && streamed);
        }
        t.tokens_client += rc.reasoning_client[i].unwrap_or(0) as u64;
        if let Some(r) = rc.reasoning_server[i] {
            t.tokens_server += r as u64;
            t.server_reported += 1;
        }
        if let (true, Some(o), Some(fa)) = (streamed, o, rc.first_answer[i]) {
            self.ttfat.push(fa, o, 1.0);
        }
    }
}

/// Computes the metrics of every run.
pub fn compute_all(runs: &Runs, opts: &MetricOptions) -> Result<Vec<(RunMetrics, Samples)>> {
    let rc = ReqCols::new(&runs.requests)?;
    let ec = EvCols::new(&runs.events)?;
    Ok(runs
        .runs
        .iter()
        .map(|r| compute(r, &rc, &ec, opts))
        .collect())
}

/// Computes one run's metrics (see `analyzer/README.md` for every definition).
pub(crate) fn compute(
    run: &RunInfo,
    rc: &ReqCols,
    ec: &EvCols,
    opts: &MetricOptions,
) -> (RunMetrics, Samples) {
    let streamed = run.header.options.stream;
    let mut outcomes: BTreeMap<String, u64> = BTreeMap::new();
    let mut count_flags: BTreeMap<String, u64> = BTreeMap::new();
    let mut prefix_cache = None;
    let (mut requests, mut ok, mut warmup_excluded) = (0u64, 0u64, 0u64);
    let (mut early_stops, mut over_length) = (0u64, 0u64);
    let mut tokens = TokenTotals::default();
    let (mut first_dispatch, mut last_end): (Option<u64>, Option<u64>) = (None, None);
    let mut lateness = Vec::new();
    let (mut ttft, mut e2e, mut ptl) = (
        ByOrigin::default(),
        ByOrigin::default(),
        ByOrigin::default(),
    );
    let (mut send_delay, mut new_connections, mut sent_missing) = (Vec::new(), 0u64, 0u64);
    let mut tpot = Vec::new();
    let total_events = run.events.len();
    let mut itl = Vec::with_capacity(if streamed { total_events } else { 0 });
    let mut itl_tok = Vec::with_capacity(if streamed { total_events } else { 0 });
    let mut good = 0u64;
    let mut reasoning = Reasoning::default();

    for i in run.requests.clone() {
        if rc.warmup[i] && !opts.include_warmup {
            warmup_excluded += 1;
            continue;
        }
        requests += 1;
        *outcomes.entry(rc.outcome[i].to_string()).or_default() += 1;
        for flag in rc.count_flags[i].into_iter().flat_map(|f| f.split(',')) {
            *count_flags.entry(flag.to_string()).or_default() += 1;
        }
        let prompt = rc.server_prompt[i].unwrap_or(rc.prompt[i]);
        PrefixCache::add(&mut prefix_cache, rc.server_cached[i], prompt);
        let sched = rc.scheduled[i];
        if let Some(d) = rc.dispatched[i] {
            lateness.push(secs(d, sched));
            new_connections += u64::from(rc.connect_start[i].is_some());
            first_dispatch = Some(first_dispatch.map_or(d, |f| f.min(d)));
            if let Some(e) = rc.end[i] {
                last_end = Some(last_end.map_or(e, |l| l.max(e)));
            }
        }
        if rc.outcome[i] != "ok" {
            continue;
        }
        ok += 1;
        let client = rc.client[i].unwrap_or(0) as u64;
        let requested = rc.max_tokens[i] as u64;
        let server = rc.server[i];
        tokens.prompt += rc.prompt[i] as u64;
        tokens.output_client += client;
        tokens.output_requested += requested;
        if let Some(s) = server {
            tokens.output_server += s as u64;
            tokens.server_reported += 1;
        }
        let used = match opts.output_tokens {
            TokenSource::Client => client,
            TokenSource::Requested => requested,
            TokenSource::Server => match server {
                Some(s) => s as u64,
                None => {
                    tokens.server_fallbacks += 1;
                    client
                }
            },
        };
        tokens.output_used += used;
        // Early stop: the count actually produced (server's when chosen) vs asked.
        let produced = match (opts.output_tokens, server) {
            (TokenSource::Server, Some(s)) => s as u64,
            _ => client,
        };
        if requested > 0 && produced < requested {
            early_stops += 1;
        } else if requested > 0 && produced > requested {
            over_length += 1;
        }

        let (Some(d), Some(e)) = (rc.dispatched[i], rc.end[i]) else {
            reasoning.add(rc, i, None, streamed);
            continue;
        };
        match rc.sent[i] {
            Some(s) => send_delay.push(secs(s, d)),
            None => sent_missing += 1,
        }
        let o = Origins::of_request(rc, i).expect("dispatched");
        reasoning.add(rc, i, Some(o), streamed);
        e2e.push(e, o, 1.0);
        if used > 0 {
            ptl.push(e, o, used as f64);
        }
        let mut ttft_here = None;
        let mut tpot_here = None;
        if streamed {
            if let Some(ft) = rc.first_token[i] {
                ttft.push(ft, o, 1.0);
                ttft_here = Some(secs(ft, o.of(opts.latency_from)));
                if used >= 2 {
                    // E2E - TTFT = end - first token, whatever the origin.
                    let t = secs(e, ft) / (used - 1) as f64;
                    tpot.push(t);
                    tpot_here = Some(t);
                }
            }
            let start = run.events.start + rc.ev_offset[i] as usize;
            let n = rc.ev_count[i] as usize;
            let t = &ec.t_ns[start..start + n];
            let k = &ec.tokens[start..start + n];
            let mut prev: Option<u64> = None;
            for j in 0..n {
                if k[j] == 0 {
                    continue;
                }
                if let Some(p) = prev {
                    let gap = secs(t[j], p);
                    itl.push(gap);
                    itl_tok.push(gap / k[j] as f64);
                }
                prev = Some(t[j]);
            }
        }
        if let Some(slo) = &opts.slo {
            let e2e_here = secs(e, o.of(opts.latency_from));
            let pass = slo.e2e_s.is_none_or(|l| e2e_here <= l)
                && slo.ttft_s.is_none_or(|l| ttft_here.is_some_and(|t| t <= l))
                && slo.tpot_s.is_none_or(|l| tpot_here.is_none_or(|t| t <= l));
            if pass {
                good += 1;
            }
        }
    }

    let duration_s = match (first_dispatch, last_end) {
        (Some(a), Some(b)) if b > a => Some(secs(b, a)),
        _ => None,
    };
    let throughput = per_s((tokens.prompt + tokens.output_used) as f64, duration_s);
    let throughput_req = per_s((tokens.prompt + tokens.output_requested) as f64, duration_s);
    let goodput = opts.slo.and_then(|slo| {
        // TTFT and TPOT cannot be checked without a stream.
        if !streamed && (slo.ttft_s.is_some() || slo.tpot_s.is_some()) {
            return None;
        }
        Some(Goodput {
            slo,
            good,
            fraction: (requests > 0).then(|| good as f64 / requests as f64),
            request_s: per_s(good as f64, duration_s),
        })
    });
    let from = opts.latency_from;
    let (sessions, ttft_by_turn) = sessions::compute(run, rc, opts, streamed);
    let (sample_e2e, sample_ptl, sample_ttft) =
        (e2e.chosen(from), ptl.chosen(from), ttft.chosen(from));
    let metrics = RunMetrics {
        requests,
        ok,
        warmup_excluded,
        outcomes,
        early_stops,
        over_length,
        count_flags,
        prefix_cache,
        duration_s,
        throughput_tok_s: throughput,
        throughput_requested_tok_s: throughput_req,
        output_tok_s: per_s(tokens.output_used as f64, duration_s),
        request_s: per_s(ok as f64, duration_s),
        output_tokens_source: opts.output_tokens,
        streamed,
        ttft_s: summarize(&mut ttft.dispatch),
        ttft_from_scheduled_s: summarize(&mut ttft.scheduled),
        ttft_from_sent_s: summarize(&mut ttft.sent),
        ttfat_s: summarize(&mut reasoning.ttfat.dispatch),
        ttfat_from_scheduled_s: summarize(&mut reasoning.ttfat.scheduled),
        ttfat_from_sent_s: summarize(&mut reasoning.ttfat.sent),
        reasoning: reasoning.totals,
        tpot_s: summarize(&mut tpot),
        itl_per_token_s: summarize(&mut itl_tok),
        e2e_s: summarize(&mut e2e.dispatch),
        e2e_from_scheduled_s: summarize(&mut e2e.scheduled),
        e2e_from_sent_s: summarize(&mut e2e.sent),
        per_token_latency_s: summarize(&mut ptl.dispatch),
        per_token_latency_from_scheduled_s: summarize(&mut ptl.scheduled),
        per_token_latency_from_sent_s: summarize(&mut ptl.sent),
        lateness_s: summarize(&mut lateness),
        send_delay_s: summarize(&mut send_delay),
        new_connections,
        sent_missing,
        itl_s: summarize(&mut itl),
        goodput,
        tokens: tokens.clone(),
        sessions,
        ttft_by_turn,
    };
    let samples = Samples {
        e2e_s: sample_e2e,
        per_token_s: sample_ptl,
        ttft_s: sample_ttft,
        itl_s: itl,
        tpot_s: tpot,
        duration_s,
        tokens_used: tokens.prompt + tokens.output_used,
        tokens_requested: tokens.prompt + tokens.output_requested,
    };
    (metrics, samples)
}
