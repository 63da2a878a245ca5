//! Injected faults against what the client recorded.
//!
//! Why: a fault the client swallowed (an error recorded as success, a cut stream counted
//! as complete) or an error the client invented (no server-side cause) would make every
//! failure-rate number of a real benchmark wrong. Each truth record with a fault must
//! pair with a client record showing exactly that fault; each client error must pair
//! with a server-side error; every other request must be complete with the server's
//! token count.

use formats::Outcome;
use simulator::Faults;
use simulator::truth::{Outcome as Truth, TruthRecord};

use crate::tail::Seen;
use crate::verify::{Check, request_id};

/// The fault kinds `llmib sim` offers, in its own names.
pub const FAULT_KINDS: [&str; 6] = [
    "http_429",
    "http_500",
    "http_503",
    "disconnect",
    "stall",
    "slow_first_byte",
];

/// What the soak injected, to recompute the draws and judge stall/slow faults.
pub struct Injected {
    pub faults: Faults,
    pub seed: u64,
}

/// Injected vs accounted, per fault kind.
pub struct FaultTally {
    pub kind: &'static str,
    pub injected: u64,
    pub accounted: u64,
}

/// Whether the client's record shows the fault the server injected.
fn accounted(fault: &str, t: &TruthRecord, r: &Seen, inj: &Injected) -> bool {
    let http = |want: Truth| {
        t.outcome == Some(want)
            && r.outcome == Outcome::HttpError
            && r.http_status == Some(t.http_status)
    };
    let half_ms = |ms: u64| ms * 500_000;
    match fault {
        "http_429" => http(Truth::Http429),
        "http_500" => http(Truth::Http500),
        "http_503" => http(Truth::Http503),
        "generation_error" => http(Truth::Http424),
        "disconnect" => t.outcome == Some(Truth::Disconnect) && r.outcome == Outcome::StreamError,
        // Answered in full, and the client saw the pause (at least half of it: the
        // client may have read the event before the pause late).
        "stall" => {
            t.outcome == Some(Truth::Ok)
                && r.outcome == Outcome::Ok
                && r.max_silence_ns >= half_ms(inj.faults.stall_ms)
        }
        "slow_first_byte" => {
            t.outcome == Some(Truth::Ok)
                && r.outcome == Outcome::Ok
                && r.first_byte_wait_ns.unwrap_or(0) >= half_ms(inj.faults.slow_first_byte_ms)
        }
        _ => false,
    }
}

/// Per fault kind: injected (truth log) and accounted (client record matches).
pub fn fault_tally(
    truth: &[TruthRecord],
    ids: &[Option<&Seen>],
    inj: &Injected,
) -> Vec<FaultTally> {
    let mut tally: Vec<FaultTally> = FAULT_KINDS
        .iter()
        .map(|&kind| FaultTally {
            kind,
            injected: 0,
            accounted: 0,
        })
        .collect();
    for t in truth {
        let Some(fault) = t.fault.as_deref() else {
            continue;
        };
        let Some(row) = tally.iter_mut().find(|x| x.kind == fault) else {
            continue; // an unknown kind is never accounted: see `faults_accounted`
        };
        row.injected += 1;
        let rec = request_id(t).and_then(|id| *ids.get(id as usize)?);
        if rec.is_some_and(|r| accounted(fault, t, r, inj)) {
            row.accounted += 1;
        }
    }
    tally
}

/// Every injected fault was accounted for, and (when faults were asked for) every kind
/// was exercised.
pub fn faults_accounted(truth: &[TruthRecord], tally: &[FaultTally], asked: bool) -> Check {
    let injected_total = truth.iter().filter(|t| t.fault.is_some()).count() as u64;
    let injected: u64 = tally.iter().map(|t| t.injected).sum();
    let accounted: u64 = tally.iter().map(|t| t.accounted).sum();
    let every_kind = !asked || tally.iter().all(|t| t.injected > 0);
    Check::new(
        "every fault accounted for",
        accounted == injected_total && injected == injected_total && every_kind,
        format!(
            "{accounted} of {injected_total} injected faults ({:.2}% of {} requests){}",
            100.0 * injected_total as f64 / truth.len().max(1) as f64,
            truth.len(),
            if every_kind {
                ""
            } else {
                "; some kind was never injected"
            }
        ),
    )
}

/// Every client error has a server-side cause: an injected error or cut.
pub fn no_unexplained_errors(records: &[Seen], truth_by_id: &[Option<&TruthRecord>]) -> Check {
    let errors: Vec<&Seen> = records
        .iter()
        .filter(|r| r.outcome != Outcome::Ok)
        .collect();
    let unexplained: Vec<String> = errors
        .iter()
        .filter(|r| {
            let fault = truth_by_id
                .get(r.id as usize)
                .copied()
                .flatten()
                .and_then(|t| t.fault.as_deref());
            !matches!(
                fault,
                Some("http_429" | "http_500" | "http_503" | "disconnect")
            )
        })
        .map(|r| format!("id {} {}", r.id, r.outcome))
        .collect();
    Check::new(
        "no client error without a server cause",
        unexplained.is_empty(),
        format!(
            "{} client errors, {} unexplained{}",
            errors.len(),
            unexplained.len(),
            if unexplained.is_empty() {
                String::new()
            } else {
                format!(
                    " (first: {})",
                    unexplained[..unexplained.len().min(3)].join(", ")
                )
            }
        ),
    )
}

/// Requests without a fault: ok on both sides, client token count = server's.
pub fn clean_requests(truth: &[TruthRecord], ids: &[Option<&Seen>]) -> Check {
    let clean: Vec<&TruthRecord> = truth.iter().filter(|t| t.fault.is_none()).collect();
    let bad = clean
        .iter()
        .filter(|t| {
            let rec = request_id(t).and_then(|id| *ids.get(id as usize)?);
            !(t.outcome == Some(Truth::Ok)
                && rec.is_some_and(|r| {
                    r.outcome == Outcome::Ok && r.output_tokens == Some(t.output_tokens)
                }))
        })
        .count();
    Check::new(
        "unfaulted requests complete",
        bad == 0,
        format!(
            "{} of {} ok on both sides with equal token counts",
            clean.len() - bad,
            clean.len()
        ),
    )
}

/// Truth records indexed by request id.
pub fn truth_by_id(truth: &[TruthRecord], n: u64) -> Vec<Option<&TruthRecord>> {
    let mut v = vec![None; n as usize];
    for t in truth {
        if let Some(slot) = request_id(t).and_then(|id| v.get_mut(id as usize)) {
            slot.get_or_insert(t);
        }
    }
    v
}
