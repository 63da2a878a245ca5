//! Multi-turn sessions: latencies by turn index and totals per session.
//!
//! Why separate from the per-run metrics: a session's later turn is released only when
//! its predecessor has finished (closed loop inside a session), and its prompt carries
//! the whole history, so a server's prefix cache and queueing treat turn 5 very
//! differently from turn 0. One TTFT over every turn hides that; TTFT by turn index
//! shows whether later turns (longer prompts, mostly cached) get faster or slower.
//!
//! Definitions (`analyzer/README.md`, *Sessions*), over the measured requests (warmup
//! excluded unless `--include-warmup`) whose record carries `session_id` / `turn`:
//! * **by turn**: one row per turn index `0..TAIL_TURN-1`, and one row pooling every
//!   turn `>= TAIL_TURN` (long sessions are rare, so their later turns would be rows of
//!   one or two requests); TTFT and E2E are the run metrics' definitions (`ok`
//!   requests, TTFT only for streamed runs) measured from `--from`; the cached share is
//!   the prefix cache hit rate of the turn's requests that reported cached tokens;
//! * **per session**: a session is complete when its recorded turns are `0..n-1`
//!   without a gap and all `ok`; its duration runs from its first turn's `scheduled_ns`
//!   to its last turn's `end_ns`, over complete sessions only (a failure would cut a
//!   session short and look fast).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::load::runs::RunInfo;
use crate::metrics::columns::ReqCols;
use crate::metrics::options::{LatencyFrom, MetricOptions};
use crate::metrics::origins::Origins;
use crate::metrics::prefix_cache::PrefixCache;
use crate::metrics::time::secs;
use crate::stats::{Stats, summarize};

/// Turns at or above this index share one row (`8+`).
pub const TAIL_TURN: u32 = 8;

/// One row of the by-turn table: a turn index, or every turn from [`TAIL_TURN`] on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnRow {
    /// The turn index (the first pooled index, [`TAIL_TURN`], on the tail row).
    pub turn: u32,
    /// True on the row pooling every turn `>= TAIL_TURN`.
    pub tail: bool,
    /// Measured requests of these turns, any outcome.
    pub requests: u64,
    /// Of those, the `ok` ones (the TTFT and E2E samples).
    pub ok: u64,
    /// Time to first token from `--from`, `ok` requests of streamed runs.
    pub ttft_s: Stats,
    /// Request latency (end minus `--from`), `ok` requests.
    pub e2e_s: Stats,
    /// Cached prompt tokens / prompt tokens over the requests that reported
    /// `server_cached_tokens`; `None` when none did.
    pub cached_share: Option<f64>,
}

impl TurnRow {
    /// The row's label in tables: `3`, or `8+` for the tail.
    pub fn label(&self) -> String {
        if self.tail {
            format!("{}+", self.turn)
        } else {
            self.turn.to_string()
        }
    }
}

/// Turns per session.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TurnsPerSession {
    pub mean: Option<f64>,
    pub max: u32,
}

/// Totals over a run's sessions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionMetrics {
    /// Distinct sessions among the measured requests.
    pub count: u64,
    /// Sessions whose recorded turns are `0..n-1` without a gap and all `ok`.
    pub complete: u64,
    /// Measured requests that belong to a session (all turns, any outcome).
    pub requests: u64,
    /// Recorded turns per session.
    pub turns_per_session: TurnsPerSession,
    /// First turn's `scheduled_ns` to last turn's `end_ns`, complete sessions only.
    pub duration_s: Stats,
}

/// What one session's measured turns said.
#[derive(Debug, Default)]
struct SessionAcc {
    turns: u32,
    min_turn: u32,
    max_turn: u32,
    all_ok: bool,
    /// `scheduled_ns` of the lowest turn seen.
    start: u64,
    /// `end_ns` of the highest turn seen.
    end: Option<u64>,
}

impl SessionAcc {
    fn add(&mut self, turn: u32, ok: bool, scheduled: u64, end: Option<u64>) {
        if self.turns == 0 || turn < self.min_turn {
            self.min_turn = turn;
            self.start = scheduled;
        }
        if self.turns == 0 || turn >= self.max_turn {
            self.max_turn = turn;
            self.end = end;
        }
        self.all_ok = (self.turns == 0 || self.all_ok) && ok;
        self.turns += 1;
    }

    /// Turns `0..n-1`, each once (a valid log has no duplicate turn), all `ok`.
    fn complete(&self) -> bool {
        self.all_ok && self.min_turn == 0 && self.turns == self.max_turn + 1
    }
}

/// Samples of one by-turn row.
#[derive(Debug, Default)]
struct TurnAcc {
    requests: u64,
    ok: u64,
    ttft: Vec<f64>,
    e2e: Vec<f64>,
    cache: Option<PrefixCache>,
}

/// A run's session totals and by-turn rows; both `None` when no measured record
/// carries a session. `streamed`: whether TTFT is measured at all.
pub(crate) fn compute(
    run: &RunInfo,
    rc: &ReqCols,
    opts: &MetricOptions,
    streamed: bool,
) -> (Option<SessionMetrics>, Option<Vec<TurnRow>>) {
    let mut sessions: BTreeMap<u64, SessionAcc> = BTreeMap::new();
    let mut turns: Vec<TurnAcc> = (0..=TAIL_TURN).map(|_| TurnAcc::default()).collect();
    let mut requests = 0u64;
    for i in run.requests.clone() {
        if rc.warmup[i] && !opts.include_warmup {
            continue;
        }
        let (Some(session), Some(turn)) = (rc.session_id[i], rc.turn[i]) else {
            continue;
        };
        requests += 1;
        let ok = rc.outcome[i] == "ok";
        sessions
            .entry(session)
            .or_default()
            .add(turn, ok, rc.scheduled[i], rc.end[i]);
        let acc = &mut turns[turn.min(TAIL_TURN) as usize];
        add_turn(acc, rc, i, ok, opts.latency_from, streamed);
    }
    if sessions.is_empty() {
        return (None, None);
    }
    let rows = turns
        .into_iter()
        .enumerate()
        .filter(|(_, t)| t.requests > 0)
        .map(|(g, t)| turn_row(g as u32, t))
        .collect();
    (Some(session_metrics(&sessions, requests)), Some(rows))
}

/// Adds request `i` (a turn, `ok` or not) to its row.
fn add_turn(
    acc: &mut TurnAcc,
    rc: &ReqCols,
    i: usize,
    ok: bool,
    from: LatencyFrom,
    streamed: bool,
) {
    acc.requests += 1;
    let prompt = rc.server_prompt[i].unwrap_or(rc.prompt[i]);
    PrefixCache::add(&mut acc.cache, rc.server_cached[i], prompt);
    if !ok {
        return;
    }
    acc.ok += 1;
    let (Some(o), Some(end)) = (Origins::of_request(rc, i), rc.end[i]) else {
        return;
    };
    let origin = o.of(from);
    acc.e2e.push(secs(end, origin));
    if let (true, Some(ft)) = (streamed, rc.first_token[i]) {
        acc.ttft.push(secs(ft, origin));
    }
}

fn turn_row(group: u32, mut t: TurnAcc) -> TurnRow {
    TurnRow {
        turn: group,
        tail: group == TAIL_TURN,
        requests: t.requests,
        ok: t.ok,
        ttft_s: summarize(&mut t.ttft),
        e2e_s: summarize(&mut t.e2e),
        cached_share: t.cache.and_then(|c| c.hit_rate),
    }
}

fn session_metrics(sessions: &BTreeMap<u64, SessionAcc>, requests: u64) -> SessionMetrics {
    let count = sessions.len() as u64;
    let mut durations: Vec<f64> = sessions
        .values()
        .filter(|s| s.complete())
        .filter_map(|s| s.end.map(|e| secs(e, s.start)))
        .collect();
    let turns: u64 = sessions.values().map(|s| s.turns as u64).sum();
    SessionMetrics {
        count,
        complete: sessions.values().filter(|s| s.complete()).count() as u64,
        requests,
        turns_per_session: TurnsPerSession {
            mean: (count > 0).then(|| turns as f64 / count as f64),
            max: sessions.values().map(|s| s.turns).max().unwrap_or(0),
        },
        duration_s: summarize(&mut durations),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(turns: &[(u32, bool)]) -> SessionAcc {
        let mut s = SessionAcc::default();
        for (k, &(t, ok)) in turns.iter().enumerate() {
            s.add(t, ok, 10 * t as u64, Some(10 * t as u64 + 5 + k as u64));
        }
        s
    }

    #[test]
    fn complete_means_every_turn_from_0_ok_without_a_gap() {
        assert!(session(&[(0, true), (1, true), (2, true)]).complete());
        assert!(session(&[(0, true)]).complete());
        assert!(!session(&[(0, true), (1, false), (2, true)]).complete());
        assert!(!session(&[(0, true), (2, true)]).complete(), "gap");
        assert!(!session(&[(1, true), (2, true)]).complete(), "no turn 0");
    }

    #[test]
    fn duration_runs_from_the_first_turn_scheduled_to_the_last_turn_end() {
        // Records out of turn order: the extremes are still turn 0 and turn 2.
        let s = session(&[(1, true), (2, true), (0, true)]);
        assert_eq!((s.start, s.end), (0, Some(26)));
        assert_eq!((s.min_turn, s.max_turn, s.turns), (0, 2, 3));
    }

    #[test]
    fn tail_row_label() {
        let row = |turn, tail| TurnRow {
            turn,
            tail,
            requests: 1,
            ok: 1,
            ttft_s: Stats::default(),
            e2e_s: Stats::default(),
            cached_share: None,
        };
        assert_eq!(row(3, false).label(), "3");
        assert_eq!(row(TAIL_TURN, true).label(), "8+");
    }
}
