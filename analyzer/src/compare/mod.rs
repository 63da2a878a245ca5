//! `llmib compare`: is B really faster than A? Runs of one trace are paired by
//! construction (request `id` k of both had the same prompt, output length and arrival
//! offset), so a per-request paired comparison is far more sensitive than comparing two
//! distributions, and exact about what differs.
//!
//! Layout: [`comparison`] (the settings and the result, read by `gate` and `render`),
//! [`requests`] (each side's per-request numbers), [`rows`] (one metric's
//! statistic compared: interval, p-value, verdict), [`ranks`] (Wilcoxon
//! signed-rank, Mann–Whitney U), [`intervals`] (the seeded percentile bootstrap, Welch's
//! t-interval for run-level numbers), [`context`] (what makes the comparison fair,
//! checked), [`gate`] (`--fail-if` rules), [`render`] (table, JSON, CSV).

pub mod comparison;
pub mod context;
pub mod gate;
pub mod intervals;
pub mod ranks;
pub mod render;
pub mod requests;
pub mod rows;

use formats::{Outcome, RunLog};

use crate::metrics::options::LatencyFrom;
use crate::slo::Slo;

pub use comparison::{CompareSpec, Comparison, DEFAULT_SEED, RunLevel, Sample, fmt_p, stat_name};
use intervals::{Welch, welch};
use requests::{Metric, Side, good_requests, side};
use rows::{RowSettings, row};

/// Why two sides cannot be compared.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(
        "{side}: its runs replayed different traces ({a} and {b}); a side is runs of one trace"
    )]
    MixedSide {
        side: &'static str,
        a: String,
        b: String,
    },
    #[error(
        "--paired: A replayed trace {a} and B trace {b}; pairing needs the same trace (drop --paired to compare the distributions)"
    )]
    DifferentTraces { a: String, b: String },
    #[error("{0}: no ok request to compare")]
    NoOk(String),
}

fn trace_of(run: &RunLog) -> String {
    run.header.trace.sha256.clone()
}

/// One side's trace, refusing a side of several traces.
fn side_trace(side_name: &'static str, runs: &[&RunLog]) -> Result<String, CompareError> {
    let t = trace_of(runs[0]);
    if let Some(other) = runs.iter().map(|r| trace_of(r)).find(|s| *s != t) {
        return Err(CompareError::MixedSide {
            side: side_name,
            a: t,
            b: other,
        });
    }
    Ok(t)
}

/// The span a run-level rate is taken over: from a run's first dispatch to its last ok
/// end, seconds.
fn span_s(run: &RunLog) -> Option<f64> {
    let start = run.records.iter().filter_map(|r| r.dispatched_ns).min()?;
    let end = ok_records(run).filter_map(|r| r.end_ns).max()?;
    (end > start).then(|| (end - start) as f64 / 1e9)
}

fn ok_records(run: &RunLog) -> impl Iterator<Item = &formats::LogRecord> {
    run.records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok && !r.warmup)
}

/// Output tokens per second of a run's ok requests, from its first dispatch to its
/// last end.
pub fn output_tokens_per_s(run: &RunLog) -> Option<f64> {
    let tokens: u64 = ok_records(run)
        .map(|r| r.output_tokens.unwrap_or(0) as u64)
        .sum();
    Some(tokens as f64 / span_s(run)?)
}

/// Good requests (meeting `slo`) per second, over the same span as the throughput.
pub fn good_requests_per_s(run: &RunLog, slo: &Slo, from: LatencyFrom) -> Option<f64> {
    Some(good_requests(run, slo, from) as f64 / span_s(run)?)
}

/// The requests a run had in flight on average: its ok requests' time from dispatch to
/// end, summed, over its span.
pub fn mean_in_flight(run: &RunLog) -> Option<f64> {
    let busy: u64 = ok_records(run)
        .filter_map(|r| Some(r.end_ns?.saturating_sub(r.dispatched_ns?)))
        .sum();
    Some(busy as f64 / 1e9 / span_s(run)?)
}

/// The bootstrap's block length when `--block` does not give one: the requests A had in
/// flight on average (its runs' mean, rounded up), the requests that shared the engine's
/// batches with any one of them; at most the square root of the requests compared, so
/// that a burst (every request in flight at once) still leaves the bootstrap at least
/// `sqrt(n)` blocks to draw.
pub fn auto_block(runs_a: &[&RunLog], n: usize) -> usize {
    let in_flight: Vec<f64> = runs_a.iter().filter_map(|r| mean_in_flight(r)).collect();
    let mean = in_flight.iter().sum::<f64>() / in_flight.len().max(1) as f64;
    let cap = (n as f64).sqrt().floor().max(1.0) as usize;
    (mean.ceil().max(1.0) as usize).min(cap)
}

/// Each run's number and, with two runs a side or more, Welch's interval of the
/// difference of the means, relative to A's mean.
fn run_level(a: Vec<f64>, b: Vec<f64>, alpha: f64) -> RunLevel {
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let m = mean(&a);
    RunLevel {
        relative: mean(&b) / m - 1.0,
        welch: welch(&a, &b, alpha).map(|w| Welch {
            diff: w.diff / m,
            lo: w.lo / m,
            hi: w.hi / m,
            ..w
        }),
        a,
        b,
    }
}

/// Refuses a side with no ok request; finds whether the sides are paired.
fn check_sides(
    a: &[(&str, &RunLog)],
    b: &[(&str, &RunLog)],
    runs: [&[&RunLog]; 2],
    spec: &CompareSpec,
) -> Result<bool, CompareError> {
    for (name, run) in a.iter().chain(b) {
        if ok_records(run).next().is_none() {
            return Err(CompareError::NoOk(name.to_string()));
        }
    }
    let (ta, tb) = (side_trace("A", runs[0])?, side_trace("B", runs[1])?);
    match spec.paired {
        Some(true) if ta != tb => Err(CompareError::DifferentTraces { a: ta, b: tb }),
        Some(p) => Ok(p),
        None => Ok(ta == tb),
    }
}

/// The request ids ok on both sides, in A's arrival order.
fn ids_on_both(sa: &Side, sb: &Side) -> Vec<u64> {
    sa.in_arrival_order(
        sa.by_id
            .keys()
            .filter(|id| sb.by_id.contains_key(id))
            .copied()
            .collect(),
    )
}

/// Per metric, the values compared, in arrival order: paired (`both`: the ids ok on both
/// sides, in A's order), else each side's own.
fn samples(sa: &Side, sb: &Side, both: Option<&[u64]>) -> Vec<Sample> {
    let own = |s: &Side| s.in_arrival_order(s.by_id.keys().copied().collect());
    let (own_a, own_b) = match both {
        Some(_) => (Vec::new(), Vec::new()),
        None => (own(sa), own(sb)),
    };
    Metric::ALL
        .into_iter()
        .enumerate()
        .map(|(mi, metric)| {
            let (a, b) = match both {
                Some(both) => both
                    .iter()
                    .filter_map(|id| Some((sa.by_id[id][mi]?, sb.by_id[id][mi]?)))
                    .unzip(),
                None => {
                    let col = |s: &Side, ids: &[u64]| -> Vec<f64> {
                        ids.iter().filter_map(|id| s.by_id[id][mi]).collect()
                    };
                    (col(sa, &own_a), col(sb, &own_b))
                }
            };
            Sample { metric, a, b }
        })
        .collect()
}

/// Compares B against A (each one or more runs, named for messages).
pub fn compare(
    a: &[(&str, &RunLog)],
    b: &[(&str, &RunLog)],
    spec: &CompareSpec,
) -> Result<Comparison, CompareError> {
    let runs_a: Vec<&RunLog> = a.iter().map(|x| x.1).collect();
    let runs_b: Vec<&RunLog> = b.iter().map(|x| x.1).collect();
    let paired = check_sides(a, b, [&runs_a, &runs_b], spec)?;
    let (sa, sb) = (side(&runs_a, spec.from), side(&runs_b, spec.from));
    let both = paired.then(|| ids_on_both(&sa, &sb));
    let (n, left_out) = match &both {
        Some(both) => {
            let k = both.len();
            (
                [k, k],
                [
                    sa.left_out + sa.by_id.len() - k,
                    sb.left_out + sb.by_id.len() - k,
                ],
            )
        }
        None => ([sa.by_id.len(), sb.by_id.len()], [sa.left_out, sb.left_out]),
    };
    let block = spec
        .block
        .unwrap_or_else(|| auto_block(&runs_a, n[0].min(n[1])));
    let settings = RowSettings {
        alpha: spec.alpha,
        resamples: spec.resamples,
        seed: spec.seed,
        paired,
        block,
    };
    let samples = samples(&sa, &sb, both.as_deref());
    let rows = samples
        .iter()
        .flat_map(|s| {
            spec.stats
                .iter()
                .filter_map(move |&stat| row(s.metric, stat, &s.a, &s.b, settings))
        })
        .collect();
    let per_run = |runs: &[&RunLog], f: &dyn Fn(&RunLog) -> Option<f64>| -> Vec<f64> {
        runs.iter().filter_map(|r| f(r)).collect()
    };
    let throughput = run_level(
        per_run(&runs_a, &output_tokens_per_s),
        per_run(&runs_b, &output_tokens_per_s),
        spec.alpha,
    );
    let goodput = spec.slo.map(|slo| {
        let f = |r: &RunLog| good_requests_per_s(r, &slo, spec.from);
        run_level(per_run(&runs_a, &f), per_run(&runs_b, &f), spec.alpha)
    });
    Ok(Comparison {
        paired,
        n,
        left_out,
        rows,
        block,
        throughput,
        goodput,
        context: context::check(&runs_a, &runs_b),
        spec: spec.clone(),
        samples,
    })
}
