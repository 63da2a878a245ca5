//! The soak's correctness checks, run on the finished log and the simulator's truth log.
//!
//! Why these: a long run at a realistic rate is where a lost, duplicated or misattributed
//! record would show, and where a fault could be silently swallowed. Records pair with
//! truth records by request id (the replayer sends `X-Request-Id: <trace id>`, the
//! simulator logs it), as in `replayer/tests/sim.rs`. The truth log itself is checked
//! against the simulator's seeded fault draw (`Faults::pick(seed, seq, tokens)`), so a
//! fault the simulator injected but did not log would also be caught.

use formats::LogEnd;
use simulator::truth::TruthRecord;

use crate::faults::Injected;
use crate::tail::Seen;

/// One pass/fail line of the results.
pub struct Check {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
}

impl Check {
    pub fn new(name: &'static str, ok: bool, detail: String) -> Check {
        Check { name, ok, detail }
    }
}

/// Ids 0..n-1, each exactly once.
pub fn one_record_per_request(records: &[Seen], n: u64) -> Check {
    let mut seen = vec![0u32; n as usize];
    let mut out_of_range = 0u64;
    for r in records {
        match seen.get_mut(r.id as usize) {
            Some(c) => *c += 1,
            None => out_of_range += 1,
        }
    }
    let missing = seen.iter().filter(|&&c| c == 0).count();
    let dup = seen.iter().filter(|&&c| c > 1).count();
    Check::new(
        "one record per request",
        records.len() as u64 == n && missing == 0 && dup == 0 && out_of_range == 0,
        format!(
            "{} records for {n} requests; missing {missing}, duplicated {dup}, unknown ids {out_of_range}",
            records.len()
        ),
    )
}

/// A verified trailer (the reader checked count and checksum) saying the run completed.
pub fn trailer(end: &Result<LogEnd, String>, n: u64) -> Check {
    let (ok, detail) = match end {
        Ok(LogEnd::Trailer(t)) => (
            t.complete && t.record_count == n,
            format!(
                "complete {}, record_count {}, crc32 {:08x} verified",
                t.complete, t.record_count, t.crc32
            ),
        ),
        Ok(LogEnd::Truncated {
            records,
            partial_tail,
        }) => (
            false,
            format!("no trailer after {records} records (partial tail: {partial_tail})"),
        ),
        Err(e) => (false, e.clone()),
    };
    Check::new("trailer complete and verified", ok, detail)
}

/// Every trace request reached the server exactly once, and nothing else did.
pub fn truth_covers_trace(truth: &[TruthRecord], n: u64) -> Check {
    let mut seen = vec![0u32; n as usize];
    let mut foreign = 0u64;
    for t in truth {
        match request_id(t).and_then(|id| seen.get_mut(id as usize)) {
            Some(c) => *c += 1,
            None => foreign += 1,
        }
    }
    let missing = seen.iter().filter(|&&c| c == 0).count();
    let dup = seen.iter().filter(|&&c| c > 1).count();
    Check::new(
        "server saw each request once",
        missing == 0 && dup == 0 && foreign == 0,
        format!(
            "{} truth records; missing {missing}, seen twice {dup}, unknown {foreign}",
            truth.len()
        ),
    )
}

/// The truth log's faults are exactly the simulator's seeded draws.
pub fn truth_faults_are_the_draws(truth: &[TruthRecord], inj: &Injected) -> Check {
    let differ = truth
        .iter()
        .filter(|t| {
            let drawn = inj.faults.pick(inj.seed, t.seq, t.max_tokens);
            drawn.map(|f| f.name()) != t.fault.as_deref()
        })
        .count();
    Check::new(
        "truth faults = seeded draws",
        differ == 0,
        format!("{differ} truth records differ from Faults::pick(seed, seq, max_tokens)"),
    )
}

pub fn request_id(t: &TruthRecord) -> Option<u64> {
    t.request_id.as_deref()?.parse().ok()
}

/// Records indexed by id (the first one, if an id were duplicated).
pub fn by_id(records: &[Seen], n: u64) -> Vec<Option<&Seen>> {
    let mut v = vec![None; n as usize];
    for r in records {
        if let Some(slot) = v.get_mut(r.id as usize) {
            slot.get_or_insert(r);
        }
    }
    v
}
