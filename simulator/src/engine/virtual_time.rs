//! The engine model in virtual time: [`simulate`] runs the same [`Core`] as the real-time
//! driver as a discrete-event loop (no sleeping), so a 1000-request trace runs in
//! milliseconds, exactly and deterministically. It calibrates profiles and tests the
//! model against analytic values.

use crate::engine::scheduler::{Core, CoreStats, EngineRequest};
use crate::profile::{EngineParams, Policy};

/// A request for [`simulate`].
#[derive(Debug, Clone, Copy)]
pub struct VirtualRequest {
    pub arrival_ns: u64,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// Output tokens really produced (= max_tokens with ignore_eos).
    pub target_tokens: u32,
}

/// A trace's request as the engine model takes it: the trace's replays send
/// `ignore_eos`, so it produces exactly `max_tokens`.
impl From<&formats::TraceRequest> for VirtualRequest {
    fn from(r: &formats::TraceRequest) -> Self {
        VirtualRequest {
            arrival_ns: r.arrival_ns,
            prompt_tokens: r.prompt_tokens,
            max_tokens: r.max_tokens,
            target_tokens: r.max_tokens,
        }
    }
}

/// The fate of one request in [`simulate`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VirtualResult {
    pub admitted_ns: u64,
    pub first_token_ns: u64,
    pub finished_ns: u64,
    pub output_tokens: u32,
    pub preemptions: u32,
    /// Never scheduled because it cannot fit the engine at all.
    pub rejected: bool,
}

/// Run the engine model in virtual time (no sleeping): same core, same step costs as the
/// real-time task, arrivals admitted at the first step boundary at or after their time.
pub fn simulate(
    params: &EngineParams,
    policy: Policy,
    requests: &[VirtualRequest],
) -> (Vec<VirtualResult>, CoreStats) {
    let mut core = Core::new(params.clone(), policy);
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| (requests[i].arrival_ns, i));
    let mut results = vec![VirtualResult::default(); requests.len()];
    let mut next = 0;
    let mut t = 0u64;
    let mut emits = Vec::new();
    loop {
        while next < order.len() && requests[order[next]].arrival_ns <= t {
            let i = order[next];
            let r = requests[i];
            next += 1;
            if !core.fits(r.prompt_tokens, r.max_tokens) || r.target_tokens == 0 {
                results[i].rejected = true;
                continue;
            }
            core.submit(EngineRequest {
                key: i as u64,
                prompt_tokens: r.prompt_tokens,
                max_tokens: r.max_tokens,
                target_tokens: r.target_tokens.min(r.max_tokens),
            });
        }
        let Some(step) = core.plan() else {
            if next >= order.len() {
                break;
            }
            t = t.max(requests[order[next]].arrival_ns);
            continue;
        };
        for &k in &step.first_admit {
            results[k as usize].admitted_ns = t;
        }
        for &k in &step.preempted {
            results[k as usize].preemptions += 1;
        }
        t += step.duration_ns;
        emits.clear();
        core.finish_step(&mut emits);
        for e in &emits {
            let r = &mut results[e.key as usize];
            if e.index == 0 {
                r.first_token_ns = t;
            }
            r.output_tokens = e.index + 1;
            if e.last {
                r.finished_ns = t;
            }
        }
    }
    (results, core.stats)
}
