//! Calibration of speed profiles against the original benchmark's published A800 numbers.
//!
//! The original benchmark (Llama-2-13B on one A800) published, per server: throughput of
//! a burst of 1000 requests with 512-token prompts and output lengths drawn from an
//! exponential of mean 128 capped (by rejection) at 32, 128, 512, 1536 tokens, computed as
//! (prompt + output tokens) / wall time; and latency under Poisson arrivals at 2, 4, 8
//! requests/s (prompts uniform 1..512, outputs capped at 512): the median of request
//! latency / output tokens, and the median request latency.
//!
//! The workload functions rebuild those workloads with the same distributions (not the same
//! bytes as the project's trace files: this crate does not depend on the generator) and
//! [`evaluate`] replays them through the engine model in virtual time, so a profile can be
//! tuned in seconds and checked by a test.

use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::engine::virtual_time::{VirtualRequest, simulate};
use crate::profile::{EngineParams, Policy};

/// Published 13B throughput (tokens/s) per policy, for caps 32, 128, 512, 1536.
pub const PUBLISHED_THROUGHPUT: [(Policy, [f64; 4]); 3] = [
    (Policy::Tgi, [4937.88, 3837.65, 3391.885, 3307.23]),
    (Policy::Vllm, [6841.49, 5086.82, 3533.67, 3325.49]),
    (Policy::Lightllm, [6821.80, 6063.72, 4404.93, 4102.28]),
];
/// Caps of the throughput runs.
pub const CAPS: [u32; 4] = [32, 128, 512, 1536];
/// Published 13B latency per policy at QPS 2, 4, 8: (median s/token, median request s).
pub const PUBLISHED_LATENCY: [(Policy, [(f64, f64); 3]); 3] = [
    (
        Policy::Tgi,
        [(0.0256, 2.3892), (0.0322, 2.9769), (0.0542, 4.8202)],
    ),
    (
        Policy::Vllm,
        [(0.0260, 2.4723), (0.0348, 3.2986), (0.0825, 7.4093)],
    ),
    (
        Policy::Lightllm,
        [(0.0337, 2.7406), (0.0453, 3.7370), (0.1257, 9.5245)],
    ),
];
pub const QPS: [f64; 3] = [2.0, 4.0, 8.0];

fn capped_exp(rng: &mut ChaCha8Rng, mean: f64, cap: u32) -> u32 {
    loop {
        let u: f64 = rng.random();
        let x = (-(1.0 - u).ln() * mean).round();
        if x <= cap as f64 {
            return (x as u32).max(1);
        }
    }
}

/// The throughput workload for one cap: 1000 requests at t = 0.
pub fn throughput_workload(cap: u32, seed: u64) -> Vec<VirtualRequest> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ cap as u64);
    (0..1000)
        .map(|_| {
            let out = capped_exp(&mut rng, 128.0, cap);
            VirtualRequest {
                arrival_ns: 0,
                prompt_tokens: 512,
                max_tokens: out,
                target_tokens: out,
            }
        })
        .collect()
}

/// The latency workload at one rate: 1000 Poisson arrivals.
pub fn latency_workload(qps: f64, seed: u64) -> Vec<VirtualRequest> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ (qps * 1000.0) as u64 ^ 0xABCD);
    let mut t = 0.0f64;
    (0..1000)
        .map(|_| {
            let u: f64 = rng.random();
            t += -(1.0 - u).ln() / qps;
            let prompt = rng.random_range(1..=512u32);
            let out = capped_exp(&mut rng, 128.0, 512);
            VirtualRequest {
                arrival_ns: (t * 1e9) as u64,
                prompt_tokens: prompt,
                max_tokens: out,
                target_tokens: out,
            }
        })
        .collect()
}

/// Throughput as the original computed it: all prompt and output tokens over the span.
pub fn throughput(params: &EngineParams, policy: Policy, reqs: &[VirtualRequest]) -> f64 {
    let (res, _) = simulate(params, policy, reqs);
    let end = res.iter().map(|r| r.finished_ns).max().unwrap_or(0);
    let tokens: u64 = reqs
        .iter()
        .map(|r| r.prompt_tokens as u64 + r.max_tokens as u64)
        .sum();
    tokens as f64 / (end as f64 / 1e9)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// (median latency per output token, median request latency), seconds.
pub fn latency(params: &EngineParams, policy: Policy, reqs: &[VirtualRequest]) -> (f64, f64) {
    let (res, _) = simulate(params, policy, reqs);
    let lat: Vec<f64> = res
        .iter()
        .zip(reqs)
        .map(|(r, q)| (r.finished_ns - q.arrival_ns) as f64 / 1e9)
        .collect();
    let per_tok: Vec<f64> = lat
        .iter()
        .zip(reqs)
        .map(|(l, q)| l / q.max_tokens as f64)
        .collect();
    (median(per_tok), median(lat))
}

/// One row of the comparison: what, simulated, published.
#[derive(Debug, Clone)]
pub struct Row {
    pub policy: Policy,
    pub metric: String,
    pub simulated: f64,
    pub published: f64,
}

impl Row {
    /// simulated / published.
    pub fn ratio(&self) -> f64 {
        self.simulated / self.published
    }
}

/// The calibration workloads: one per cap (burst) and one per published QPS.
#[derive(Debug, Clone)]
pub struct Workloads {
    /// (cap, requests) for each of [`CAPS`].
    pub throughput: Vec<(u32, Vec<VirtualRequest>)>,
    /// (rate, requests) for each of [`QPS`].
    pub latency: Vec<(f64, Vec<VirtualRequest>)>,
}

impl Workloads {
    /// Rebuilt from the original's distributions with this seed (no files).
    pub fn seeded(seed: u64) -> Workloads {
        Workloads {
            throughput: CAPS
                .iter()
                .map(|&c| (c, throughput_workload(c, seed)))
                .collect(),
            latency: QPS
                .iter()
                .map(|&q| (q, latency_workload(q, seed)))
                .collect(),
        }
    }

    /// The project's committed traces in `dir` (`throughput-cap{C}.msgpack`,
    /// `latency-qps{Q}.msgpack`): what `llmib demo` replays, so the profile is fitted to
    /// the requests the demo sends (ignore_eos: exactly max_tokens each).
    pub fn from_traces(dir: &std::path::Path) -> Result<Workloads, formats::FormatError> {
        let read = |name: String| -> Result<Vec<VirtualRequest>, formats::FormatError> {
            let (_, reqs) = formats::read_trace(dir.join(name))?;
            Ok(reqs.iter().map(VirtualRequest::from).collect())
        };
        let mut w = Workloads {
            throughput: Vec::new(),
            latency: Vec::new(),
        };
        for c in CAPS {
            w.throughput
                .push((c, read(format!("throughput-cap{c}.msgpack"))?));
        }
        for q in QPS {
            w.latency
                .push((q, read(format!("latency-qps{q}.msgpack"))?));
        }
        Ok(w)
    }

    /// The committed traces of this repository (`traces/` next to the crate).
    pub fn committed() -> Result<Workloads, formats::FormatError> {
        Workloads::from_traces(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces"))
    }
}

/// Every published number of one policy next to the simulated one, on the seeded
/// workloads.
pub fn evaluate(params: &EngineParams, policy: Policy, seed: u64) -> Vec<Row> {
    evaluate_on(params, policy, &Workloads::seeded(seed))
}

/// Every published number of one policy next to the simulated one, on `w`.
pub fn evaluate_on(params: &EngineParams, policy: Policy, w: &Workloads) -> Vec<Row> {
    let mut rows = Vec::new();
    let tp = PUBLISHED_THROUGHPUT
        .iter()
        .find(|(p, _)| *p == policy)
        .expect("listed")
        .1;
    for (i, (cap, reqs)) in w.throughput.iter().enumerate() {
        rows.push(Row {
            policy,
            metric: format!("throughput cap {cap} (tok/s)"),
            simulated: throughput(params, policy, reqs),
            published: tp[i],
        });
    }
    let lat = PUBLISHED_LATENCY
        .iter()
        .find(|(p, _)| *p == policy)
        .expect("listed")
        .1;
    for (i, (qps, reqs)) in w.latency.iter().enumerate() {
        let (per_tok, req) = latency(params, policy, reqs);
        rows.push(Row {
            policy,
            metric: format!("QPS {qps} s/token"),
            simulated: per_tok,
            published: lat[i].0,
        });
        rows.push(Row {
            policy,
            metric: format!("QPS {qps} request s"),
            simulated: req,
            published: lat[i].1,
        });
    }
    rows
}

/// Every published number of the three policies next to the simulated one, on `w`.
pub fn evaluate_all(params: impl Fn(Policy) -> EngineParams, w: &Workloads) -> Vec<Row> {
    POLICIES
        .iter()
        .flat_map(|&p| evaluate_on(&params(p), p, w))
        .collect()
}

/// The three policies, in the original's table order.
pub const POLICIES: [Policy; 3] = [Policy::Tgi, Policy::Vllm, Policy::Lightllm];

/// Two published values of one column closer than this (larger / smaller - 1) do not
/// rank their servers: the original's own run-to-run noise is of that order.
pub const RANK_THRESHOLD: f64 = 0.10;

/// A conclusion of the original: in one column (metric), one server's published value
/// is more than [`RANK_THRESHOLD`] above another's (faster throughput, or slower latency).
#[derive(Debug, Clone)]
pub struct Ranking {
    pub metric: String,
    /// The server with the larger published value.
    pub higher: Policy,
    pub lower: Policy,
    /// published higher / lower (> 1 + RANK_THRESHOLD).
    pub published_ratio: f64,
    /// simulated higher / lower: the conclusion survives when > 1.
    pub simulated_ratio: f64,
}

impl Ranking {
    pub fn holds(&self) -> bool {
        self.simulated_ratio > 1.0
    }
}

/// The pairwise conclusions of the published tables found in `rows` (rows of several
/// policies, as [`evaluate_all`] gives them), each with the simulated ratio.
pub fn rankings(rows: &[Row]) -> Vec<Ranking> {
    let mut out = Vec::new();
    for (i, a) in rows.iter().enumerate() {
        for b in &rows[i + 1..] {
            if a.metric != b.metric || a.policy == b.policy {
                continue;
            }
            let (hi, lo) = if a.published >= b.published {
                (a, b)
            } else {
                (b, a)
            };
            let published_ratio = hi.published / lo.published;
            if published_ratio > 1.0 + RANK_THRESHOLD {
                out.push(Ranking {
                    metric: a.metric.clone(),
                    higher: hi.policy,
                    lower: lo.policy,
                    published_ratio,
                    simulated_ratio: hi.simulated / lo.simulated,
                });
            }
        }
    }
    out
}
