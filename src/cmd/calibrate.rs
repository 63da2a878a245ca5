//! `llmib calibrate LOGS... -o server.toml`: an engine profile fitted to run logs of one
//! server (see `llm_infer_bench::calibrate` and `simulator::fit`), with the fit's error on
//! each log and, with `--holdout`, on logs it was not fitted to.

use std::path::PathBuf;

use anyhow::anyhow;
use formats::OutputGuard;
use llm_infer_bench::calibrate::{CalibrateSpec, FactFlags, calibrate};
use simulator::fit::LoadErrors;

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// Run logs of one server at two or more loads (rates) to fit.
    #[arg(required = true, value_name = "RUN_LOG")]
    logs: Vec<PathBuf>,
    /// Profile to write (TOML; must not exist, unless --force).
    #[arg(short, long)]
    output: PathBuf,
    /// Run logs of the same server to predict and compare, not fitted to.
    #[arg(long, value_name = "RUN_LOG", num_args = 1..)]
    holdout: Vec<PathBuf>,
    /// The engine policy to fit (vllm-v1: vLLM 0.8 and later).
    #[arg(long, default_value = "vllm-v1")]
    policy: String,
    /// The server's --max-num-seqs (no endpoint reports it; default: vLLM's, 256).
    #[arg(long, value_name = "N")]
    max_num_seqs: Option<u32>,
    /// The server's --max-num-batched-tokens (default: vLLM V1's online default, 2048).
    #[arg(long, value_name = "N")]
    max_num_batched_tokens: Option<u64>,
    /// KV block size in tokens (default: the logs' `cache_config_info`).
    #[arg(long, value_name = "N")]
    block_size: Option<u32>,
    /// KV blocks of the server (default: the logs' `cache_config_info`).
    #[arg(long, value_name = "N")]
    num_gpu_blocks: Option<u64>,
    /// Context limit in tokens (default: the logs' `/v1/models` entry).
    #[arg(long, value_name = "N")]
    max_model_len: Option<u32>,
    /// The profile's name (default: the model's, with `-twin`).
    #[arg(long)]
    name: Option<String>,
    /// Most simulations of all the logs during the fit.
    #[arg(long, default_value_t = 2000, value_name = "N")]
    max_evals: u32,
    /// Replace an existing profile at --output.
    #[arg(long)]
    force: bool,
    /// Where the held-out logs' CDF figures go (predicted against measured TTFT and
    /// E2E; default: beside the profile, in `<profile name>-holdout/`).
    #[arg(long, value_name = "DIR")]
    figures: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut guard = OutputGuard::new(args.force);
    for p in args.logs.iter().chain(&args.holdout) {
        guard = guard.input(p, "a run log being fitted");
    }
    guard.check_file(&args.output)?;
    let policy: simulator::Policy = args.policy.parse().map_err(|e| anyhow!("--policy: {e}"))?;
    if args.max_evals == 0 {
        anyhow::bail!("--max-evals must be at least 1");
    }
    let spec = CalibrateSpec {
        logs: args.logs,
        holdout: args.holdout,
        policy,
        facts: FactFlags {
            max_num_seqs: args.max_num_seqs,
            max_num_batched_tokens: args.max_num_batched_tokens,
            block_size: args.block_size,
            num_gpu_blocks: args.num_gpu_blocks,
            max_model_len: args.max_model_len,
        },
        max_evals: args.max_evals,
        name: args.name,
    };
    let c = calibrate(&spec)?;
    formats::write_atomic(&args.output, c.profile.as_bytes())?;
    for d in &c.defaults_used {
        eprintln!("note: assumed {d} (vLLM's default; give your server's own)");
    }
    let e = &c.fit.params;
    println!(
        "fitted {} ({} logs, loss {:.5}, {} evaluations): prefill {:.1} us + {:.3} us/token, \
         decode {:.1} us + {:.2} us/seq + {:.5} us/context token, prefill attention {:.5} us/token \
         per 1000 positions",
        args.output.display(),
        c.fit.errors.len(),
        c.fit.loss,
        c.fit.evaluations,
        e.prefill_base_us,
        e.prefill_per_token_us,
        e.decode_base_us,
        e.decode_per_seq_us,
        e.decode_per_ctx_token_us,
        e.prefill_per_ctx_token_us
    );
    print_errors("fitted", &c.fit.errors);
    print_errors("held out", &c.holdout);
    for group in &c.repeats {
        print_repeats(&c, group);
    }
    if !c.holdout_samples.is_empty() {
        let dir = args.figures.unwrap_or_else(|| holdout_dir(&args.output));
        for (i, h) in c.holdout_samples.iter().enumerate() {
            for (metric, [measured, predicted]) in [("ttft", &h.ttft), ("e2e", &h.e2e)] {
                let series = [
                    ("measured".to_string(), measured.clone()),
                    ("predicted (twin)".to_string(), predicted.clone()),
                ];
                let title = format!("{} CDF, {}", metric.to_uppercase(), h.name);
                let x = format!("{metric}, from sent (s)");
                let name = format!("holdout-{}-{metric}", i + 1);
                analyzer::figures::write_cdf(&dir, &name, &title, &x, &series)?;
            }
        }
        println!(
            "\nfigures (predicted against measured CDFs) in {}",
            dir.display()
        );
    }
    Ok(Exit::Success)
}

/// The repeats of one held-out run: per metric and statistic the measured mean, the
/// server's own spread, the predicted mean, the error and its bound.
fn print_repeats(c: &llm_infer_bench::calibrate::Calibrated, group: &[usize]) {
    use llm_infer_bench::calibrate::repeat_checks;
    let errors: Vec<&LoadErrors> = group.iter().map(|&i| &c.holdout[i]).collect();
    let names: Vec<&str> = errors.iter().map(|e| e.name.as_str()).collect();
    println!(
        "\nheld out, {} repeats of one run ({}): prediction against the mean of the runs, \
         bound max(15% at p50 or 25% at p90/p99, 1.5 x the runs' spread)",
        group.len(),
        names.join(", ")
    );
    println!(
        "\n| metric | stat | measured mean | spread (max-min)/min | predicted | error | bound | within |"
    );
    println!("|:--|:--|--:|--:|--:|--:|--:|:--|");
    for r in repeat_checks(&errors) {
        println!(
            "| {} | p{} | {:.4} | {:.1}% | {:.4} | {:+.1}% | {:.1}% | {} |",
            r.metric,
            [50, 90, 99][r.at],
            r.measured_mean,
            100.0 * r.spread,
            r.predicted_mean,
            100.0 * r.error,
            100.0 * r.bound,
            if r.within() { "yes" } else { "no" }
        );
    }
}

/// `twin.toml` -> `twin-holdout/` beside it.
fn holdout_dir(output: &std::path::Path) -> PathBuf {
    let stem = output
        .file_stem()
        .map_or_else(|| "profile".into(), |s| s.to_string_lossy().into_owned());
    output.with_file_name(format!("{stem}-holdout"))
}

/// One table: per log and metric, p50/p90/p99 predicted vs measured (seconds).
fn print_errors(kind: &str, errors: &[LoadErrors]) {
    if errors.is_empty() {
        return;
    }
    println!(
        "\n| {kind} log | metric | p50 measured | p50 predicted | p90 measured | p90 predicted | p99 measured | p99 predicted |"
    );
    println!("|:--|:--|--:|--:|--:|--:|--:|--:|");
    for l in errors {
        let t = l.throughput;
        println!(
            "| {} | output tok/s | {:.1} | {:.1} ({:+.1}%) | | | | |",
            l.name,
            t[0],
            t[1],
            100.0 * l.throughput_error()
        );
        for m in &l.metrics {
            let r = m.relative();
            println!(
                "| {} | {} | {:.4} | {:.4} ({:+.1}%) | {:.4} | {:.4} ({:+.1}%) | {:.4} | {:.4} ({:+.1}%) |",
                l.name,
                m.metric,
                m.measured[0],
                m.predicted[0],
                100.0 * r[0],
                m.measured[1],
                m.predicted[1],
                100.0 * r[1],
                m.measured[2],
                m.predicted[2],
                100.0 * r[2]
            );
        }
    }
}
