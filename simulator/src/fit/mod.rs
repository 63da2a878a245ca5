//! Fitting an engine profile to run logs of one real server (`llmib calibrate`): the
//! logs' own requests are replayed through the engine model in virtual time, and the
//! step-cost coefficients are chosen to minimise the error of every request's predicted
//! TTFT, TPOT and E2E against what was measured for it.
//!
//! The loss, per load (one run log), is the mean over its requests of
//! `ln²(predicted / measured)` over the three metrics (TPOT only for answers of two tokens
//! or more), and the fit's loss is the mean over loads. Why: the must-holds a twin is
//! judged by are relative errors of percentiles, at loads from idle to saturated; a log
//! ratio weighs a 10% miss the same on a 20 ms TTFT and on a 20 s one, is symmetric
//! (predicting half is as bad as predicting double), and each load counts the same
//! however many requests it has. Pairing request by request (the same arrival, prompt
//! and output) uses what a comparison of distributions would throw away.
//!
//! The six coefficients of [`crate::profile::EngineParams`]'s step-time model are fitted
//! in log space (they stay positive) by [`nelder_mead`] from a start read off the
//! lightest load (its median TPOT for the decode terms, a line through TTFT against prompt
//! length for the prefill terms), the sixth (prefill attention) only when the data pins
//! it down ([`calibrate`]); the capacity facts (KV blocks, block size, sequence cap,
//! token budget) are given, not fitted: the server reports them. Deterministic: the same
//! loads in the same order give the same bits.
//!
//! Prefix-cache hits are the server's: a log whose records carry `server_cached_tokens`
//! (vLLM with `--enable-prompt-tokens-details`, SGLang) gives every request the hit the
//! server reported ([`crate::engine::Core::submit_known_hit`]), so a shared-prefix run is
//! modelled as the server ran it; without them no request hits.

pub mod nelder_mead;
pub mod observe;
pub mod profile_toml;
pub mod report;

pub use observe::{Load, ObserveError, Times, load_of};
pub use report::{LoadErrors, MetricError};

use crate::engine::virtual_time::{VirtualOptions, simulate_with};
use crate::profile::{EngineParams, Policy};

/// Names of the fitted coefficients, in the order of the fit's vector.
pub const FITTED: [&str; 6] = [
    "prefill_base_us",
    "prefill_per_token_us",
    "decode_base_us",
    "decode_per_seq_us",
    "decode_per_ctx_token_us",
    "prefill_per_ctx_token_us",
];

/// Smallest value a coefficient takes (µs): the fit works on their logarithms.
const FLOOR_US: f64 = 1e-6;

/// Nelder–Mead runs, each from the best point of the one before.
const RESTARTS: u32 = 4;

/// What to fit: the policy and the server's capacity facts (`base`'s cost
/// coefficients are ignored), and the evaluation budget.
#[derive(Debug, Clone)]
pub struct FitOptions {
    pub policy: Policy,
    pub base: EngineParams,
    /// Most simulations of every load (each evaluation simulates them all).
    pub max_evals: u32,
}

/// The fitted profile's engine and how well it fits each load.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub params: EngineParams,
    /// The loss at the optimum (see the module docs).
    pub loss: f64,
    pub evaluations: u32,
    pub errors: Vec<LoadErrors>,
}

/// Fits `opts.base`'s step costs to `loads` (at least one; two or more loads of
/// different rates are what makes the batch terms identifiable).
///
/// In two phases: the first five coefficients (prefill attention left at 0), with half of
/// the evaluations; then all six from that optimum, the attention term starting at a
/// tenth of the per-token cost (per 1,000 positions).
/// The sixth is kept only when it lowers the loss by at least [`MIN_GAIN`]: loads of
/// short prompts and no cached prefix cannot tell it from the per-token cost, and a
/// value they do not pin down extrapolates wildly to long contexts (measured: see
/// `simulator/README.md`).
pub fn calibrate(loads: &[Load], opts: &FitOptions) -> Fit {
    let start = start_point(loads, &opts.base);
    let logs: Vec<f64> = start.iter().map(|v| v.max(FLOOR_US).ln()).collect();
    let budget_five = opts.max_evals / 2;
    let five = minimize(loads, opts, logs[..5].to_vec(), budget_five);
    let mut six_start = five.x.clone();
    six_start.push((0.1 * five.x[1].exp()).max(FLOOR_US).ln());
    let six = minimize(loads, opts, six_start, opts.max_evals - five.evaluations);
    let evaluations = five.evaluations + six.evaluations;
    let best = if six.value < five.value * (1.0 - MIN_GAIN) {
        six
    } else {
        five
    };
    let params = with_costs(&opts.base, &best.x);
    let errors = loads
        .iter()
        .map(|l| report::compare(l, &predict(&params, opts.policy, l)))
        .collect();
    Fit {
        params,
        loss: best.value,
        evaluations,
        errors,
    }
}

/// The least relative loss reduction for which the fit keeps the prefill attention
/// term (the sixth coefficient).
pub const MIN_GAIN: f64 = 0.02;

/// Nelder–Mead over the first `x.len()` coefficients (log space) from `x`, within
/// `max_evals`, restarting from the best point with a fresh, smaller simplex:
/// Nelder–Mead stalls on an objective that is flat at the scale of one step, a restart
/// gets it moving.
fn minimize(
    loads: &[Load],
    opts: &FitOptions,
    mut x: Vec<f64>,
    max_evals: u32,
) -> nelder_mead::Minimum {
    let mut objective = |x: &[f64]| loss(loads, &with_costs(&opts.base, x), opts.policy);
    let (mut value, mut evaluations) = (objective(&x), 1);
    let mut step = 1.0;
    for round in 0..RESTARTS {
        let budget = max_evals.saturating_sub(evaluations) / (RESTARTS - round);
        if budget < 2 * x.len() as u32 {
            break;
        }
        let min = nelder_mead::minimize(&mut objective, &x, &vec![step; x.len()], 1e-10, budget);
        evaluations += min.evaluations;
        if min.value <= value {
            (x, value) = (min.x, min.value);
        }
        step *= 0.5;
    }
    nelder_mead::Minimum {
        x,
        value,
        evaluations,
    }
}

/// `base` with the step costs `exp(x)` (the fit's vector, in [`FITTED`] order; the
/// coefficients past its end are 0), each rounded to 1e-6 µs so that a profile written and read back is the same profile.
fn with_costs(base: &EngineParams, x: &[f64]) -> EngineParams {
    // Absent (the five-coefficient phase): 0.
    let c = |i: usize| {
        x.get(i)
            .map_or(0.0, |x| (x.exp().max(FLOOR_US) * 1e6).round() / 1e6)
    };
    EngineParams {
        prefill_base_us: c(0),
        prefill_per_token_us: c(1),
        decode_base_us: c(2),
        decode_per_seq_us: c(3),
        decode_per_ctx_token_us: c(4),
        prefill_per_ctx_token_us: c(5),
        ..base.clone()
    }
}

/// What the engine model predicts for every request of `load` under `params`.
pub fn predict(params: &EngineParams, policy: Policy, load: &Load) -> Vec<Times> {
    predict_with(params, policy, load, None)
}

/// [`predict`] with a client that keeps at most `concurrency` requests in flight; times
/// run from each request's dispatch (its arrival, or when a slot freed).
pub fn predict_with(
    params: &EngineParams,
    policy: Policy,
    load: &Load,
    concurrency: Option<u32>,
) -> Vec<Times> {
    let opts = options_of(load, concurrency);
    let (results, _) = simulate_with(params, policy, &load.requests, &opts);
    results
        .iter()
        .map(|r| {
            if r.rejected || r.output_tokens == 0 {
                return Times {
                    sent_ns: r.dispatched_ns as f64,
                    ttft_ns: f64::INFINITY,
                    e2e_ns: f64::INFINITY,
                    tpot_ns: None,
                };
            }
            Times::of(
                r.dispatched_ns,
                r.first_token_ns,
                r.finished_ns,
                r.output_tokens,
            )
        })
        .collect()
}

/// The inter-token latencies the engine model predicts for the requests of `load` that
/// were measured answered, pooled (one per gap between consecutive tokens), ns.
pub fn predict_itl(params: &EngineParams, policy: Policy, load: &Load) -> Vec<f64> {
    let opts = VirtualOptions {
        token_times: true,
        ..options_of(load, None)
    };
    let (results, _) = simulate_with(params, policy, &load.requests, &opts);
    (results.iter().zip(&load.measured))
        .filter(|(_, m)| m.is_some())
        .flat_map(|(r, _)| r.token_ns.windows(2).map(|w| (w[1] - w[0]) as f64))
        .collect()
}

/// The model's options for `load`: its prefix-cache hits (known, or from hashes).
fn options_of(load: &Load, concurrency: Option<u32>) -> VirtualOptions<'_> {
    VirtualOptions {
        concurrency,
        hashes: (!load.hashes.is_empty()).then_some(&load.hashes[..]),
        known_hits: (!load.cached_tokens.is_empty()).then_some(&load.cached_tokens[..]),
        token_times: false,
    }
}

/// The fit's loss (see the module docs) of `params` over `loads`.
pub fn loss(loads: &[Load], params: &EngineParams, policy: Policy) -> f64 {
    let total: f64 = loads
        .iter()
        .map(|l| load_loss(&l.measured, &predict(params, policy, l)))
        .sum();
    total / loads.len().max(1) as f64
}

fn load_loss(measured: &[Option<Times>], predicted: &[Times]) -> f64 {
    let sq = |p: f64, m: f64| (p.max(1e3) / m.max(1e3)).ln().powi(2);
    let (mut sum, mut count) = (0.0, 0);
    for (m, p) in measured.iter().zip(predicted) {
        let Some(m) = m else { continue };
        count += 1;
        let mut terms = sq(p.ttft_ns, m.ttft_ns) + sq(p.e2e_ns, m.e2e_ns);
        let mut n = 2.0;
        if let (Some(pt), Some(mt)) = (p.tpot_ns, m.tpot_ns) {
            terms += sq(pt, mt);
            n += 1.0;
        }
        sum += terms / n;
    }
    sum / count.max(1) as f64
}

/// The fit's start, in [`FITTED`] order (µs), read off the lightest load.
fn start_point(loads: &[Load], base: &EngineParams) -> [f64; FITTED.len()] {
    let Some(light) = loads.iter().min_by(|a, b| rate(a).total_cmp(&rate(b))) else {
        return [
            base.prefill_base_us,
            base.prefill_per_token_us,
            base.decode_base_us,
            base.decode_per_seq_us,
            base.decode_per_ctx_token_us,
            base.prefill_per_ctx_token_us,
        ];
    };
    let mut tpots: Vec<f64> = light
        .measured
        .iter()
        .flatten()
        .filter_map(|t| t.tpot_ns)
        .collect();
    tpots.sort_by(f64::total_cmp);
    let tpot_us = tpots.get(tpots.len() / 2).map_or(1000.0, |t| t / 1e3);
    let busy = concurrency(light).max(1.0);
    // A request's mean context while it decodes: its prompt and half its output.
    let context = light
        .requests
        .iter()
        .map(|q| q.prompt_tokens as f64 + q.target_tokens as f64 / 2.0)
        .sum::<f64>()
        / light.requests.len().max(1) as f64;
    let (a, b) = line(
        light
            .requests
            .iter()
            .zip(&light.measured)
            .filter_map(|(q, t)| Some((q.prompt_tokens as f64, t.as_ref()?.ttft_ns / 1e3))),
    );
    // The decode step split 70/20/10 between its base, its sequences and their context;
    // a prefill token's attention at 1,000 positions a tenth of its own cost.
    [
        a.max(0.1 * tpot_us),
        b.max(1e-3),
        0.7 * tpot_us,
        0.2 * tpot_us / busy,
        0.1 * tpot_us / (busy * context.max(1.0)),
        0.1 * b.max(1e-3),
    ]
}

/// Requests per second of a load's arrivals.
fn rate(l: &Load) -> f64 {
    let span = l.requests.last().map_or(0, |r| r.arrival_ns) as f64 / 1e9;
    l.requests.len() as f64 / span.max(1e-9)
}

/// Mean requests in flight over a load (Little's law: the sum of E2E over the span).
fn concurrency(l: &Load) -> f64 {
    let end = l
        .requests
        .iter()
        .zip(&l.measured)
        .filter_map(|(q, t)| Some(q.arrival_ns as f64 + t.as_ref()?.e2e_ns))
        .fold(0.0, f64::max);
    l.measured.iter().flatten().map(|t| t.e2e_ns).sum::<f64>() / end.max(1.0)
}

/// Least-squares line `y = a + b x` through the points; (mean y, 0) when x never varies.
fn line(points: impl Iterator<Item = (f64, f64)>) -> (f64, f64) {
    let pts: Vec<(f64, f64)> = points.collect();
    let n = pts.len().max(1) as f64;
    let (mx, my) = (
        pts.iter().map(|p| p.0).sum::<f64>() / n,
        pts.iter().map(|p| p.1).sum::<f64>() / n,
    );
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    if sxx <= 0.0 {
        return (my, 0.0);
    }
    let b = sxy / sxx;
    (my - b * mx, b)
}

#[cfg(test)]
mod tests;
