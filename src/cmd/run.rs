//! `llmib run SUITE...`: replay a suite's traces, then analyse its runs.

use std::path::PathBuf;

use anyhow::Context;
use llm_infer_bench::pipeline::{self, RunSettings, Target, TraceRun};
use llm_infer_bench::suite::Suite;

use super::Exit;
use super::endpoint::EndpointArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Suite files (TOML), e.g. benchmark_configs/vllm_latency.toml.
    #[arg(required = true)]
    suites: Vec<PathBuf>,
    /// Send to this base URL instead of the suite's endpoint.
    #[arg(long)]
    endpoint: Option<String>,
    /// Model name for OpenAI-compatible servers (replaces the suite's).
    #[arg(long)]
    model: Option<String>,
    /// Run on the embedded simulator even when the suite names an endpoint.
    #[arg(long)]
    simulate: bool,
    /// Simulator profile (name or TOML file) replacing the suite's.
    #[arg(long)]
    profile: Option<String>,
    /// Replay arrival times K times faster (replaces the suite's time_scale).
    #[arg(long, value_name = "K")]
    time_scale: Option<f64>,
    /// Replay only the first N requests of each trace (such runs are never reused).
    #[arg(long, value_name = "N")]
    max_requests: Option<u64>,
    /// Replay even the traces whose run logs are already complete.
    #[arg(long)]
    force: bool,
    /// Root directory of run logs.
    #[arg(long, default_value = "runs")]
    runs_dir: PathBuf,
    /// Root directory of tables and figures.
    #[arg(long, default_value = "results")]
    results_dir: PathBuf,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    connection: EndpointArgs,
    /// Drop the server's prefix cache before each trace's run (vLLM POST
    /// /reset_prefix_cache, SGLang POST /flush_cache); recorded in each run log. A
    /// server without the endpoint is a warning.
    #[arg(long)]
    reset_prefix_cache: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(k) = args.time_scale {
        anyhow::ensure!(
            k.is_finite() && k > 0.0,
            "--time-scale must be > 0, got {}",
            formats::readable(k)
        );
    }
    let suites = args
        .suites
        .iter()
        .map(|p| Suite::load(p))
        .collect::<Result<Vec<_>, _>>()?;
    // The suites' backends decide on OPENAI_API_KEY (`openai_api_key` below).
    let api_key = args.connection.api_key(None)?;
    let pool_idle_timeout = args.connection.pool_idle_timeout()?;
    let tls = args.connection.tls(" (recorded in the run logs)");
    let settings = RunSettings {
        force: args.force,
        simulate: args.simulate,
        endpoint: args.endpoint,
        model: args.model,
        profile: args.profile,
        time_scale: args.time_scale,
        max_requests: args.max_requests,
        runs_dir: args.runs_dir,
        results_dir: args.results_dir,
        progress: !args.quiet,
        tls,
        api_key,
        openai_api_key: std::env::var("OPENAI_API_KEY")
            .ok()
            .filter(|k| !k.is_empty()),
        pool_idle_timeout,
        speedups: Default::default(),
        reset_prefix_cache: args.reset_prefix_cache,
    };
    let rt = super::runtime()?;
    let signals = super::on_signals(&rt)?;
    let mut failed_runs = Vec::new();
    for suite in &suites {
        let run = rt.block_on(pipeline::run_suite(suite, &settings, &signals.stop))?;
        failed_runs.extend(pipeline::runs_without_success(&run));
        for (trace, r) in &run.runs {
            if let TraceRun::Skipped(log) = r {
                eprintln!(
                    "{}: {} already complete in {} (use --force to replay)",
                    suite.name,
                    trace.display(),
                    log.display()
                );
            }
        }
        let logs = pipeline::suite_logs(suite, &settings.runs_dir);
        let results = settings.results_dir.join(&suite.name);
        if !logs.is_empty() {
            let analysis = pipeline::analyze_into(&logs, &results)
                .with_context(|| format!("analysing suite {}", suite.name))?;
            println!("{}", analysis.tables);
            if let Target::Simulated { .. } = run.target {
                println!("Numbers above come from {}.", run.target.describe());
            }
            eprintln!(
                "{}: tables and figures in {}",
                suite.name,
                results.display()
            );
        }
        if run.interrupted || signals.interrupted() {
            eprintln!(
                "suite {} interrupted: run it again to resume (complete runs are kept)",
                suite.name
            );
            return Ok(Exit::Interrupted);
        }
    }
    Ok(super::exit_for_failed_runs(&failed_runs))
}
