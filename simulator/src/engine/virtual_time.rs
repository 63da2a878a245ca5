//! The engine model in virtual time: [`simulate`] runs the same [`Core`] as the real-time
//! driver as a discrete-event loop (no sleeping), so a 1000-request trace runs in
//! milliseconds, exactly and deterministically. It calibrates profiles and tests the
//! model against analytic values.

use std::collections::VecDeque;

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
    /// When the client sent it: its arrival, or later when a concurrency cap
    /// ([`VirtualOptions::concurrency`]) held it until a request in flight ended.
    pub dispatched_ns: u64,
    pub admitted_ns: u64,
    pub first_token_ns: u64,
    pub finished_ns: u64,
    pub output_tokens: u32,
    pub preemptions: u32,
    /// Prompt tokens found in the prefix cache at its first admission.
    pub cached_tokens: u32,
    /// Never scheduled because it cannot fit the engine at all.
    pub rejected: bool,
    /// The end of the step that produced each output token, in order (filled only with
    /// [`VirtualOptions::token_times`]).
    pub token_ns: Vec<u64>,
}

/// What [`simulate_with`] models beyond the engine itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct VirtualOptions<'a> {
    /// A client that keeps at most this many requests in flight (`replay
    /// --concurrency`): a request that arrives while all are busy is sent when one ends
    /// (first come, first sent). `None`: open loop.
    pub concurrency: Option<u32>,
    /// Per request, the hashes of its prompt's full blocks at the engine's block size
    /// ([`crate::engine::prefix`]), for the prefix cache; `None`: no two prompts share
    /// a block.
    pub hashes: Option<&'a [Vec<u64>]>,
    /// Per request, the prompt tokens a real server reported cached for it (a measured
    /// run's `server_cached_tokens`): its hit, whatever `hashes` say (V1 policy).
    pub known_hits: Option<&'a [u32]>,
    /// Record every output token's time ([`VirtualResult::token_ns`]).
    pub token_times: bool,
}

/// Run the engine model in virtual time (no sleeping): same core, same step costs as the
/// real-time task, arrivals admitted at the first step boundary at or after their time.
pub fn simulate(
    params: &EngineParams,
    policy: Policy,
    requests: &[VirtualRequest],
) -> (Vec<VirtualResult>, CoreStats) {
    simulate_with(params, policy, requests, &VirtualOptions::default())
}

/// The client side of [`simulate_with`]: the concurrency cap's slots and the requests
/// waiting for one.
struct Client {
    cap: usize,
    in_flight: usize,
    waiting: VecDeque<usize>,
}

/// [`simulate`] with a client's concurrency cap, prompts that share prefix blocks, and
/// per-token times.
pub fn simulate_with(
    params: &EngineParams,
    policy: Policy,
    requests: &[VirtualRequest],
    opts: &VirtualOptions,
) -> (Vec<VirtualResult>, CoreStats) {
    let mut core = Core::new(params.clone(), policy);
    let mut order: Vec<usize> = (0..requests.len()).collect();
    order.sort_by_key(|&i| (requests[i].arrival_ns, i));
    let mut results = vec![VirtualResult::default(); requests.len()];
    let mut client = Client {
        cap: opts.concurrency.map_or(usize::MAX, |c| c.max(1) as usize),
        in_flight: 0,
        waiting: VecDeque::new(),
    };
    let send = |core: &mut Core, results: &mut [VirtualResult], i: usize, at: u64| {
        let r = requests[i];
        results[i].dispatched_ns = at;
        if !core.fits(r.prompt_tokens, r.max_tokens) || r.target_tokens == 0 {
            // Answered at once with an error: it holds no slot.
            results[i].rejected = true;
            results[i].finished_ns = at;
            return false;
        }
        let req = EngineRequest {
            key: i as u64,
            prompt_tokens: r.prompt_tokens,
            max_tokens: r.max_tokens,
            target_tokens: r.target_tokens.min(r.max_tokens),
        };
        match opts.known_hits.and_then(|h| h.get(i)) {
            Some(&hit) => core.submit_known_hit(req, hit),
            None => {
                let hashes = opts.hashes.and_then(|h| h.get(i)).cloned();
                core.submit_prefixed(req, hashes.unwrap_or_default());
            }
        }
        true
    };
    let mut next = 0;
    let mut t = 0u64;
    let mut ended_now = 0; // requests that ended at `t`: their slots free at `t`
    let mut emits = Vec::new();
    loop {
        // Arrivals before `t` saw the slots of the requests ending at `t` still held;
        // those at `t`, and the ones waiting, get the freed ones.
        for strictly_before in [true, false] {
            while next < order.len() {
                let i = order[next];
                let a = requests[i].arrival_ns;
                if a > t || (strictly_before && a == t) {
                    break;
                }
                next += 1;
                if client.waiting.is_empty() && client.in_flight < client.cap {
                    client.in_flight += send(&mut core, &mut results, i, a) as usize;
                } else {
                    client.waiting.push_back(i);
                }
            }
            if strictly_before {
                client.in_flight -= std::mem::take(&mut ended_now);
            }
            while client.in_flight < client.cap
                && let Some(i) = client.waiting.pop_front()
            {
                client.in_flight += send(&mut core, &mut results, i, t) as usize;
            }
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
        for &(k, hit) in &step.cached {
            results[k as usize].cached_tokens = hit;
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
            if opts.token_times {
                r.token_ns.push(t);
            }
            if e.last {
                r.finished_ns = t;
                ended_now += 1;
            }
        }
    }
    (results, core.stats)
}
