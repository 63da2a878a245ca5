//! `llmib predict TRACE --profile P`: what a server would do with a trace, from the
//! engine model in virtual time (no server, no waiting): the latency percentiles and
//! throughput the replay's analysis would report, in about a second for 10,000
//! requests. With a calibrated twin (`llmib calibrate`) this answers "what happens at
//! twice today's traffic" without GPU hours.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use simulator::fit::report::{interval, percentiles, residual_range};
use simulator::fit::{Load, Times};
use simulator::{Policy, Profile, VirtualRequest};

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// Trace to predict (MessagePack, from `llmib generate` or `llmib import`).
    trace: PathBuf,
    /// Engine profile: a built-in name or a TOML file (a twin from `llmib calibrate`).
    #[arg(long)]
    profile: String,
    /// Scheduling policy (default: the profile's `scheduler`, else vllm-v1).
    #[arg(long)]
    policy: Option<String>,
    /// Offer this many requests per second (the trace's arrivals rescaled).
    #[arg(long, value_name = "R", conflicts_with = "time_scale")]
    rate: Option<f64>,
    /// Replay the trace's arrivals this many times faster (as `replay --time-scale`).
    #[arg(long, value_name = "K")]
    time_scale: Option<f64>,
    /// Only the first N requests.
    #[arg(long, value_name = "N")]
    max_requests: Option<usize>,
    /// A client that keeps at most N requests in flight (as `replay --concurrency`);
    /// times then run from each request's dispatch.
    #[arg(long, value_name = "N")]
    concurrency: Option<u32>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let (_, requests) = formats::read_trace(&args.trace)
        .with_context(|| format!("reading {}", args.trace.display()))?;
    let n = args
        .max_requests
        .unwrap_or(requests.len())
        .min(requests.len());
    let mut reqs: Vec<VirtualRequest> = requests[..n].iter().map(VirtualRequest::from).collect();
    let profile = Profile::load(&args.profile).map_err(|e| anyhow!("--profile: {e}"))?;
    let policy = match &args.policy {
        Some(p) => p.parse().map_err(|e| anyhow!("--policy: {e}"))?,
        None => profile.scheduler.unwrap_or(Policy::VllmV1),
    };
    let params = profile
        .engine(policy)
        .ok_or_else(|| anyhow!("--profile {}: no engine for policy {policy}", args.profile))?;
    let scale = time_scale(&reqs, args.rate, args.time_scale)?;
    for r in &mut reqs {
        r.arrival_ns = (r.arrival_ns as f64 / scale).round() as u64;
    }
    if let Some(c) = args.concurrency {
        anyhow::ensure!(c >= 1, "--concurrency must be at least 1");
    }
    let started = std::time::Instant::now();
    let hashes = if params.prefix_cache {
        let bpt = simulator::prefix::bytes_per_token(&requests[..n]);
        requests[..n]
            .iter()
            .map(|r| simulator::prefix::trace_prompt_hashes(r, params.block_size, bpt))
            .collect()
    } else {
        Vec::new()
    };
    let load = Load {
        name: file_name(&args.trace),
        requests: reqs,
        measured: Vec::new(),
        cached_tokens: Vec::new(),
        hashes,
        measured_itl_ns: Vec::new(),
    };
    let predicted = simulator::fit::predict_with(params, policy, &load, args.concurrency);
    let took = started.elapsed();
    print_prediction(
        &load,
        &predicted,
        scale,
        policy,
        profile.calibration.as_ref(),
    );
    eprintln!(
        "predicted {} requests in {:.3} s (engine model, virtual time)",
        load.requests.len(),
        took.as_secs_f64()
    );
    Ok(Exit::Success)
}

/// The time scale asked: `--rate` over the trace's own rate, `--time-scale`, or 1.
fn time_scale(
    reqs: &[VirtualRequest],
    rate: Option<f64>,
    scale: Option<f64>,
) -> anyhow::Result<f64> {
    if let Some(k) = scale {
        anyhow::ensure!(
            k.is_finite() && k > 0.0,
            "--time-scale must be a positive number"
        );
        return Ok(k);
    }
    let Some(r) = rate else { return Ok(1.0) };
    anyhow::ensure!(r.is_finite() && r > 0.0, "--rate must be a positive number");
    let span = match (reqs.first(), reqs.last()) {
        (Some(a), Some(b)) if b.arrival_ns > a.arrival_ns => (b.arrival_ns - a.arrival_ns) as f64,
        _ => anyhow::bail!("--rate: the trace's requests arrive at once: no rate to scale"),
    };
    Ok(r / (reqs.len() as f64 / (span / 1e9)))
}

fn file_name(p: &std::path::Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// The prediction as the analysis would print it: percentiles and throughput; with a
/// fitted profile, the p50 and p90 intervals its fit's errors give.
fn print_prediction(
    load: &Load,
    predicted: &[Times],
    scale: f64,
    policy: Policy,
    fit: Option<&toml::Table>,
) {
    let done: Vec<(&VirtualRequest, &Times)> = load
        .requests
        .iter()
        .zip(predicted)
        .filter(|(_, t)| t.e2e_ns.is_finite())
        .collect();
    let rejected = load.requests.len() - done.len();
    let end = done
        .iter()
        .map(|(_, t)| t.sent_ns + t.e2e_ns)
        .fold(0.0, f64::max);
    let tokens: u64 = done.iter().map(|(q, _)| q.target_tokens as u64).sum();
    println!(
        "{}: {} requests at time scale {scale:.4} on policy {policy}: {} completed, {} too long \
         for the engine; {:.1} output tokens/s, {:.2} requests/s over {:.1} s",
        load.name,
        load.requests.len(),
        done.len(),
        rejected,
        tokens as f64 / (end / 1e9).max(1e-9),
        done.len() as f64 / (end / 1e9).max(1e-9),
        end / 1e9
    );
    println!("\n| metric | p50 s | p90 s | p99 s | mean s | p50 interval s | p90 interval s |");
    println!("|:--|--:|--:|--:|--:|--:|--:|");
    let row = |name: &str, v: Vec<f64>| {
        // Seconds; NaN for none.
        let q = percentiles(v.clone());
        let mean = (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64 / 1e9);
        let f = |x: f64| {
            if x.is_nan() {
                "-".into()
            } else {
                format!("{x:.4}")
            }
        };
        let range = |x: f64, at: usize| match fit.and_then(|t| residual_range(t, name, at)) {
            Some(r) if !x.is_nan() => {
                let (lo, hi) = interval(x, r);
                format!("{lo:.4} - {hi:.4}")
            }
            _ => "-".into(),
        };
        println!(
            "| {name} | {} | {} | {} | {} | {} | {} |",
            f(q[0]),
            f(q[1]),
            f(q[2]),
            f(mean.unwrap_or(f64::NAN)),
            range(q[0], 0),
            range(q[1], 1)
        );
    };
    row("ttft", done.iter().map(|(_, t)| t.ttft_ns).collect());
    row("tpot", done.iter().filter_map(|(_, t)| t.tpot_ns).collect());
    row("e2e", done.iter().map(|(_, t)| t.e2e_ns).collect());
}
