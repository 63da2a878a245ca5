//! What a run log says about its server, as the fit needs it: every answered request as
//! the engine model takes it (arrival, prompt and output tokens) and the times measured
//! for it (TTFT, E2E, TPOT), on the server's side of the wire.
//!
//! Times run from `sent_ns` (when the request's bytes were handed to the connection),
//! not from the schedule: what the server took, without the client's own queueing or
//! connection setup. The load is every request the server had: `ok` ones with their
//! times, and those still in flight when the run ended (`cancelled`) or that timed out,
//! without times (they loaded the server; a saturated run that left them out would
//! look lighter than it was), as producing their whole output. Warm-up requests, and
//! requests refused or never sent, are not part of it.

use formats::{LogRecord, Outcome, RunLog};

use crate::engine::virtual_time::VirtualRequest;

/// One server load: the requests of one run log and what was measured for each.
#[derive(Debug, Clone)]
pub struct Load {
    /// Names the load in reports (the log's file name).
    pub name: String,
    /// The requests, arrivals from the first one sent (ns).
    pub requests: Vec<VirtualRequest>,
    /// Measured for each request, same order (`None`: it never finished).
    pub measured: Vec<Option<Times>>,
    /// The prompt tokens the server reported cached for each request, same order
    /// (`server_cached_tokens`; 0 where one record had none); empty when no record of
    /// the log had them. The model takes them as the requests' prefix-cache hits.
    pub cached_tokens: Vec<u32>,
    /// Per request, its prompt's block hashes, for the model's prefix cache (a trace's
    /// requests, `simulator::prefix::trace_prompt_hashes`); empty: none.
    pub hashes: Vec<Vec<u64>>,
    /// The inter-token latencies measured, pooled over the answered requests: the gaps
    /// between consecutive token-carrying events (the analyzer's `itl_s`), ns. Reported,
    /// not fitted.
    pub measured_itl_ns: Vec<f64>,
}

/// One request's times, ns.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Times {
    /// Sent to its first token.
    pub ttft_ns: f64,
    /// Sent to its last token.
    pub e2e_ns: f64,
    /// Per token after the first: (E2E - TTFT) / (tokens - 1); `None` for one token.
    pub tpot_ns: Option<f64>,
    /// When it was sent (the origin of the other times), ns of the load's clock.
    pub sent_ns: f64,
}

impl Times {
    /// From a request's arrival, first and last token times and output tokens.
    pub fn of(arrival_ns: u64, first_ns: u64, last_ns: u64, tokens: u32) -> Times {
        let ttft = first_ns.saturating_sub(arrival_ns) as f64;
        let e2e = last_ns.saturating_sub(arrival_ns) as f64;
        Times {
            sent_ns: arrival_ns as f64,
            ttft_ns: ttft,
            e2e_ns: e2e,
            tpot_ns: (tokens > 1).then(|| (e2e - ttft) / (tokens - 1) as f64),
        }
    }
}

/// Why a log cannot be fitted.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    #[error("{0}: no answered request with a streamed token to fit")]
    Empty(String),
    #[error(
        "{name}: the client fell behind (dispatch lateness p99 {p99_ms:.1} ms > {limit_ms} ms): its times are the client's, not the server's"
    )]
    ClientBehind {
        name: String,
        p99_ms: f64,
        limit_ms: f64,
    },
}

/// Dispatch lateness (dispatched − scheduled) above which a log is refused, ms.
pub const LATENESS_LIMIT_MS: f64 = 10.0;

/// The load of `log` (named `name`).
pub fn load_of(name: &str, log: &RunLog) -> Result<Load, ObserveError> {
    load_of_records(name, &log.records)
}

fn load_of_records(name: &str, records: &[LogRecord]) -> Result<Load, ObserveError> {
    check_client(name, records)?;
    let mut rows: Vec<(u64, VirtualRequest, Option<Times>, Option<u32>)> =
        records.iter().filter_map(observed).collect();
    if rows.iter().all(|r| r.2.is_none()) {
        return Err(ObserveError::Empty(name.to_string()));
    }
    rows.sort_by_key(|r| r.0);
    let t0 = rows[0].0;
    let any_cached = rows.iter().any(|r| r.3.is_some());
    let mut load = Load {
        name: name.to_string(),
        requests: Vec::with_capacity(rows.len()),
        measured: Vec::with_capacity(rows.len()),
        cached_tokens: Vec::new(),
        hashes: Vec::new(),
        measured_itl_ns: records
            .iter()
            .filter(|r| r.outcome == Outcome::Ok && !r.warmup)
            .flat_map(|r| event_gaps(&r.events))
            .collect(),
    };
    for (sent, mut req, times, cached) in rows {
        req.arrival_ns = sent - t0;
        load.requests.push(req);
        // On the load's clock, as the predictions' are.
        load.measured.push(times.map(|t| Times {
            sent_ns: req.arrival_ns as f64,
            ..t
        }));
        if any_cached {
            load.cached_tokens.push(cached.unwrap_or(0));
        }
    }
    Ok(load)
}

/// (sent, the request as the engine takes it, its times when it finished, the prompt
/// tokens the server reported cached) of a request the server had (see the module docs).
fn observed(r: &LogRecord) -> Option<(u64, VirtualRequest, Option<Times>, Option<u32>)> {
    let on_server = matches!(
        r.outcome,
        Outcome::Ok | Outcome::Cancelled | Outcome::Timeout
    );
    if !on_server || r.warmup {
        return None;
    }
    let sent = r.sent_ns.or(r.dispatched_ns)?;
    let prompt = r.server_prompt_tokens.unwrap_or(r.prompt_tokens).max(1);
    let answered = (r.outcome == Outcome::Ok)
        .then(|| {
            let out = r.output_tokens.filter(|&n| n > 0)?;
            let first = *r.events.t_ns.first()?;
            let last = r.end_ns.unwrap_or(*r.events.t_ns.last()?);
            Some((out, Times::of(sent, first, last, out)))
        })
        .flatten();
    let out = answered.map_or(r.max_tokens, |a| a.0).max(1);
    let req = VirtualRequest {
        arrival_ns: 0,
        prompt_tokens: prompt,
        max_tokens: out,
        target_tokens: out,
    };
    Some((sent, req, answered.map(|a| a.1), r.server_cached_tokens))
}

/// Gaps between consecutive events that carried tokens, ns.
fn event_gaps(e: &formats::Events) -> Vec<f64> {
    let t: Vec<u64> = (e.t_ns.iter().zip(&e.tokens))
        .filter(|(_, k)| **k > 0)
        .map(|(t, _)| *t)
        .collect();
    t.windows(2)
        .map(|w| w[1].saturating_sub(w[0]) as f64)
        .collect()
}

/// Refuses a log whose client dispatched late: its latencies include the client's delay.
fn check_client(name: &str, records: &[LogRecord]) -> Result<(), ObserveError> {
    let mut late: Vec<u64> = records
        .iter()
        .filter_map(|r| Some(r.dispatched_ns?.saturating_sub(r.scheduled_ns)))
        .collect();
    if late.is_empty() {
        return Ok(());
    }
    late.sort_unstable();
    let p99 = late[(late.len() - 1) * 99 / 100] as f64 / 1e6;
    if p99 > LATENESS_LIMIT_MS {
        return Err(ObserveError::ClientBehind {
            name: name.to_string(),
            p99_ms: p99,
            limit_ms: LATENESS_LIMIT_MS,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as the replayer writes it: sent at `sent`, first and last token times.
    fn record(id: u64, outcome: Outcome, sent: u64, tokens: &[u64]) -> LogRecord {
        let mut r = LogRecord::not_sent(id, sent, 100, 8, false);
        r.outcome = outcome;
        (r.dispatched_ns, r.sent_ns) = (Some(sent), Some(sent));
        if outcome == Outcome::Ok {
            r.events.t_ns = tokens.to_vec();
            r.events.tokens = vec![1; tokens.len()];
            r.output_tokens = Some(tokens.len() as u32);
            r.end_ns = tokens.last().copied();
        }
        r
    }

    #[test]
    fn requests_still_on_the_server_load_it_without_being_measured() {
        let mut records = vec![
            record(0, Outcome::Ok, 1_000, &[5_000, 7_000]),
            record(1, Outcome::Cancelled, 2_000, &[]),
            record(2, Outcome::HttpError, 3_000, &[]),
            LogRecord::not_sent(3, 4_000, 100, 8, false),
        ];
        let load = load_of_records("l", &records).unwrap();
        // The answered and the cancelled one; not the refused one, not the unsent one.
        assert_eq!(load.requests.len(), 2);
        assert_eq!(load.requests[1].arrival_ns, 1_000);
        assert_eq!(load.requests[1].target_tokens, 8, "its whole output");
        // Times on the load's clock: sent at 0, the first request sent.
        let times = Times {
            sent_ns: 0.0,
            ..Times::of(1_000, 5_000, 7_000, 2)
        };
        assert_eq!(load.measured[0], Some(times));
        assert_eq!(load.measured[1], None);
        records.truncate(1);
        records[0].outcome = Outcome::Cancelled;
        assert!(matches!(
            load_of_records("l", &records),
            Err(ObserveError::Empty(_))
        ));
    }

    #[test]
    fn times_run_from_the_arrival_and_share_the_rest_over_the_later_tokens() {
        let t = Times::of(1_000, 11_000, 41_000, 4);
        assert_eq!(
            (t.ttft_ns, t.e2e_ns, t.tpot_ns),
            (10_000.0, 40_000.0, Some(10_000.0))
        );
        assert_eq!(Times::of(0, 5, 5, 1).tpot_ns, None);
    }
}
