//! Per-request numbers of one side of a comparison, by request id: TTFT, TPOT, mean
//! ITL, E2E (seconds, from `--from`'s origin, dispatch by default) and output tokens of
//! every `ok`, non-warm-up request, as the analyzer defines them (`analyzer/README.md`).
//! A side of several runs holds, per request, the mean over the runs in which it was ok.

use std::collections::BTreeMap;

use formats::{LogRecord, Outcome, RunLog};

use crate::metrics::options::LatencyFrom;
use crate::slo::Slo;

/// The metrics compared, in report order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Ttft,
    Tpot,
    Itl,
    E2e,
    OutputTokens,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Ttft,
        Metric::Tpot,
        Metric::Itl,
        Metric::E2e,
        Metric::OutputTokens,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Ttft => "ttft",
            Metric::Tpot => "tpot",
            Metric::Itl => "itl",
            Metric::E2e => "e2e",
            Metric::OutputTokens => "output_tokens",
        }
    }

    pub fn parse(s: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == s)
    }

    /// Seconds (latencies) or tokens.
    pub fn unit(self) -> &'static str {
        match self {
            Metric::OutputTokens => "tokens",
            _ => "s",
        }
    }
}

/// One request's numbers; `None` where undefined (TPOT and ITL of a one-token answer).
pub type Values = [Option<f64>; 5];

/// One side: per request id, its numbers (means over the side's runs where it was ok),
/// and how many of the side's requests were not ok in every run.
#[derive(Debug, Clone, Default)]
pub struct Side {
    pub by_id: BTreeMap<u64, Values>,
    /// Per request id, its scheduled time in the side's first run (ns): the arrival order
    /// the block bootstrap keeps.
    pub scheduled_ns: BTreeMap<u64, u64>,
    /// Requests of the side's runs left out: not ok (or warm-up) in at least one run.
    pub left_out: usize,
}

/// The numbers of one record, or `None` when it is not an ok, non-warm-up request with
/// a token.
pub fn values(r: &LogRecord, from: LatencyFrom) -> Option<Values> {
    if r.outcome != Outcome::Ok || r.warmup {
        return None;
    }
    let origin = match from {
        LatencyFrom::Dispatch => r.dispatched_ns?,
        LatencyFrom::Sent => r.sent_ns.or(r.dispatched_ns)?,
        LatencyFrom::Scheduled => r.scheduled_ns,
    };
    let first = *r.events.t_ns.first()?;
    let end = r.end_ns?;
    let tokens = r.output_tokens.unwrap_or(0);
    let s = |ns: u64| ns as f64 / 1e9;
    let ttft = s(first.saturating_sub(origin));
    let e2e = s(end.saturating_sub(origin));
    let tpot = (tokens > 1).then(|| (e2e - ttft) / (tokens - 1) as f64);
    let times: Vec<u64> = (r.events.t_ns.iter().zip(&r.events.tokens))
        .filter(|(_, k)| **k > 0)
        .map(|(t, _)| *t)
        .collect();
    let itl =
        (times.len() > 1).then(|| s(times[times.len() - 1] - times[0]) / (times.len() - 1) as f64);
    Some([Some(ttft), tpot, itl, Some(e2e), Some(tokens as f64)])
}

/// The side made of `runs` (one or several logs of one trace).
pub fn side(runs: &[&RunLog], from: LatencyFrom) -> Side {
    let mut sums: BTreeMap<u64, ([f64; 5], [u32; 5], u32)> = BTreeMap::new();
    let mut ids = std::collections::BTreeSet::new();
    let mut scheduled_ns = BTreeMap::new();
    for run in runs {
        for r in &run.records {
            ids.insert(r.id);
            scheduled_ns.entry(r.id).or_insert(r.scheduled_ns);
            if let Some(v) = values(r, from) {
                let e = sums.entry(r.id).or_insert(([0.0; 5], [0; 5], 0));
                e.2 += 1;
                for (i, x) in v.iter().enumerate() {
                    if let Some(x) = x {
                        e.0[i] += x;
                        e.1[i] += 1;
                    }
                }
            }
        }
    }
    let n = runs.len() as u32;
    let by_id: BTreeMap<u64, Values> = sums
        .into_iter()
        .filter(|(_, (_, _, ok))| *ok == n)
        .map(|(id, (sum, count, _))| {
            (
                id,
                std::array::from_fn(|i| (count[i] > 0).then(|| sum[i] / count[i] as f64)),
            )
        })
        .collect();
    Side {
        left_out: ids.len() - by_id.len(),
        by_id,
        scheduled_ns,
    }
}

impl Side {
    /// `ids` sorted by arrival: scheduled time, then id.
    pub fn in_arrival_order(&self, mut ids: Vec<u64>) -> Vec<u64> {
        ids.sort_by_key(|id| (self.scheduled_ns.get(id).copied().unwrap_or(u64::MAX), *id));
        ids
    }
}

/// A run's ok requests meeting every limit of `slo` (a request with no TPOT passes that
/// check), latencies from `from`: the analyzer's goodput (`analyzer/README.md`).
pub fn good_requests(run: &RunLog, slo: &Slo, from: LatencyFrom) -> usize {
    let within = |v: Option<f64>, limit: Option<f64>| match (v, limit) {
        (Some(v), Some(l)) => v <= l,
        _ => true,
    };
    run.records
        .iter()
        .filter_map(|r| values(r, from))
        .filter(|v| within(v[0], slo.ttft_s) && within(v[1], slo.tpot_s) && within(v[3], slo.e2e_s))
        .count()
}
