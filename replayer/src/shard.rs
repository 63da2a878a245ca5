//! Sharded replay (`--shard I/N`): which trace requests one of N client processes sends.
//!
//! Several clients replay one byte-identical trace, each a disjoint part of it, and
//! their logs are merged into one run. Every request is still sent at its own trace
//! time by whichever shard holds it, so the assignment cannot change the arrival process
//! the server sees (the union is the trace); what it decides is how the load is spread
//! over the clients, and a client given a burst of arrivals could fall behind the trace.
//! So requests are dealt out in arrival order, not by id (ids need not follow arrival
//! order, and a session's turns are interleaved with other sessions' in the file).
//!
//! The unit dealt is a request, or a whole session (its turns release each other, so a
//! session must stay in one process). Rule `arrival-least-loaded-v1`: units in the order
//! of their first arrival (`arrival_ns` of the request or the session's first turn, ties
//! by the smallest id), each to the shard holding the fewest requests so far (ties to
//! the lowest shard index). Without sessions every unit is one request and this is plain
//! round-robin in arrival order: in any window of `m` consecutive arrivals each shard
//! gets `floor(m/N)` or `ceil(m/N)` of them, so each client sends 1/N of the trace's rate
//! at every time scale longer than N inter-arrival times. With sessions, in any prefix
//! of sessions the shards' request counts differ by at most the longest session's turn
//! count (round-robin of sessions would let them drift apart like a random walk).
//!
//! The rule depends only on the requests (after `--max-requests`) and N, so every host
//! computes the same assignment without talking to the others.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use formats::{MAX_SHARDS, TraceRequest};

/// The assignment rule's name and version, recorded in shard logs' headers.
pub const SHARD_RULE: &str = "arrival-least-loaded-v1";

/// One shard of a sharded replay: `index` of `count`, from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: u32,
    pub count: u32,
}

impl Shard {
    /// Shard `index` of `count`; `None` unless `index < count <= MAX_SHARDS`.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (index < count && count <= MAX_SHARDS).then_some(Shard { index, count })
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `I/N` (I from 0 to N - 1).
    fn from_str(s: &str) -> Result<Shard, String> {
        let bad =
            || format!("shard `{s}`: expected I/N with 0 <= I < N <= {MAX_SHARDS} (e.g. 0/4)");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let i: u32 = i.trim().parse().map_err(|_| bad())?;
        let n: u32 = n.trim().parse().map_err(|_| bad())?;
        Shard::new(i, n).ok_or_else(bad)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The shard of each of `requests` (same order) when split `count` ways by the rule in
/// the module docs. `count` must be at least 1.
pub fn assign_shards(requests: &[TraceRequest], count: u32) -> Vec<u32> {
    assert!(count >= 1, "at least one shard");
    let (unit_of, units) = units(requests);
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_unstable_by_key(|&u| (units[u].first_arrival_ns, units[u].first_id));
    let mut loads: BinaryHeap<Reverse<(u64, u32)>> = (0..count).map(|s| Reverse((0, s))).collect();
    let mut shard_of_unit = vec![0u32; units.len()];
    for u in order {
        let Reverse((load, s)) = loads.pop().expect("count >= 1");
        shard_of_unit[u] = s;
        loads.push(Reverse((load + units[u].requests, s)));
    }
    unit_of.iter().map(|&u| shard_of_unit[u]).collect()
}

/// A unit of assignment: one request, or one session's turns.
struct Unit {
    first_arrival_ns: u64,
    first_id: u64,
    requests: u64,
}

/// The unit of each request (same order), and the units.
fn units(requests: &[TraceRequest]) -> (Vec<usize>, Vec<Unit>) {
    let mut units: Vec<Unit> = Vec::new();
    let mut by_session: HashMap<u64, usize> = HashMap::new();
    let mut unit_of = Vec::with_capacity(requests.len());
    for r in requests {
        let existing = r.session_id.and_then(|s| by_session.get(&s).copied());
        let u = match existing {
            Some(u) => {
                let unit = &mut units[u];
                unit.requests += 1;
                if (r.arrival_ns, r.id) < (unit.first_arrival_ns, unit.first_id) {
                    unit.first_arrival_ns = r.arrival_ns;
                    unit.first_id = r.id;
                }
                u
            }
            None => {
                units.push(Unit {
                    first_arrival_ns: r.arrival_ns,
                    first_id: r.id,
                    requests: 1,
                });
                if let Some(s) = r.session_id {
                    by_session.insert(s, units.len() - 1);
                }
                units.len() - 1
            }
        };
        unit_of.push(u);
    }
    (unit_of, units)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u64, arrival_ns: u64, session: Option<(u64, u32)>) -> TraceRequest {
        TraceRequest {
            id,
            arrival_ns,
            prompt: String::new(),
            prompt_tokens: 1,
            max_tokens: 1,
            ignore_eos: false,
            prompt_token_ids: None,
            messages: None,
            session_id: session.map(|s| s.0),
            turn: session.map(|s| s.1),
            think_ns: None,
        }
    }

    #[test]
    fn parses_i_of_n() {
        assert_eq!("2/4".parse::<Shard>(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "0/0", "1", "a/2", "-1/2", "1/2/3"] {
            let e = bad.parse::<Shard>().unwrap_err();
            assert!(e.contains("expected I/N"), "{bad}: {e}");
        }
    }

    #[test]
    fn without_sessions_it_is_round_robin_in_arrival_order() {
        // Ids in reverse arrival order: id modulo would not be arrival order.
        let reqs: Vec<_> = (0..10u64).map(|i| req(9 - i, i * 10, None)).collect();
        let s = assign_shards(&reqs, 3);
        assert_eq!(s, vec![0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        // Equal arrivals: ties broken by id, whatever the file order.
        let tied = vec![req(5, 0, None), req(3, 0, None), req(4, 0, None)];
        assert_eq!(assign_shards(&tied, 3), vec![2, 0, 1]);
    }

    #[test]
    fn sessions_stay_whole_and_balance_requests() {
        // Session 0 has 5 turns, sessions 1..=4 one turn each, then singles.
        let mut reqs = Vec::new();
        let mut id = 0;
        for t in 0..5 {
            reqs.push(req(id, t * 1000, Some((0, t as u32))));
            id += 1;
        }
        for s in 1..=4u64 {
            reqs.push(req(id, s, Some((s, 0))));
            id += 1;
        }
        reqs.push(req(id, 10, None));
        let shards = assign_shards(&reqs, 2);
        // Session 0 (first at 0) goes to shard 0 with 5 requests; the next units go
        // to shard 1 until it catches up.
        assert!(shards[..5].iter().all(|&s| s == 0));
        assert_eq!(&shards[5..], &[1, 1, 1, 1, 1]);
    }

    #[test]
    fn the_shards_partition_the_trace() {
        let mut reqs = Vec::new();
        for i in 0..200u64 {
            let session = (i % 3 != 0).then_some((i % 17, (i / 17) as u32));
            reqs.push(req(i, (i * 7919) % 1000, session));
        }
        for n in [1u32, 2, 4, 7] {
            let shards = assign_shards(&reqs, n);
            let mut counts = vec![0u64; n as usize];
            for (r, &s) in reqs.iter().zip(&shards) {
                assert!(s < n);
                counts[s as usize] += 1;
                if let Some(sid) = r.session_id {
                    let first = reqs.iter().position(|x| x.session_id == Some(sid)).unwrap();
                    assert_eq!(s, shards[first], "session {sid} split");
                }
            }
            assert_eq!(counts.iter().sum::<u64>(), 200);
        }
    }
}
