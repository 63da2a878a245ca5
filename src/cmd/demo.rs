//! `llmib demo`: the original benchmark on the embedded simulator, tables and figures.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use llm_infer_bench::demo::{self, DemoSettings};
use llm_infer_bench::pipeline::{self, TraceRun};

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// Directory holding the suite files.
    #[arg(long, default_value = "benchmark_configs")]
    configs: PathBuf,
    /// Simulator profile for all backends (a fast one keeps the demo short).
    #[arg(long, default_value = "tiny")]
    profile: String,
    /// Time scale of the latency traces.
    #[arg(long, value_name = "K", default_value_t = 50.0)]
    latency_time_scale: f64,
    /// Directory of the run logs.
    #[arg(long, default_value = "runs/demo")]
    runs_dir: PathBuf,
    /// Directory of the tables and figures.
    #[arg(long, default_value = "results/demo")]
    results_dir: PathBuf,
    /// Replay even runs whose logs are complete.
    #[arg(long)]
    force: bool,
    /// Also rewrite the tables in README.md (between its llmib markers) and the
    /// figures in figures/.
    #[arg(long)]
    readme: bool,
    /// No progress bars.
    #[arg(long, short)]
    quiet: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    anyhow::ensure!(
        args.latency_time_scale.is_finite() && args.latency_time_scale > 0.0,
        "--latency-time-scale must be > 0"
    );
    let configs = if args.configs.is_dir() {
        args.configs
    } else {
        // Running the binary from elsewhere than the checkout: use the checkout's files.
        let fallback = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("benchmark_configs");
        anyhow::ensure!(
            fallback.is_dir(),
            "suite directory {} not found (run from the llm-infer-bench checkout or pass --configs)",
            args.configs.display()
        );
        fallback
    };
    let settings = DemoSettings {
        configs_dir: configs,
        profile: args.profile,
        latency_time_scale: args.latency_time_scale,
        runs_dir: args.runs_dir,
        results_dir: args.results_dir,
        force: args.force,
        progress: !args.quiet,
    };
    if args.readme {
        // Before the runs: a README without its markers must not cost a whole demo.
        analyzer::check_readme("README.md".as_ref()).context("README.md")?;
    }
    eprintln!("{}", demo::disclaimer(&settings));
    let started = Instant::now();
    let rt = super::runtime()?;
    let signals = super::on_signals(&rt)?;
    let run = rt.block_on(demo::run_demo(&settings, &signals.stop))?;
    println!("{}", run.analysis.tables);
    println!("{}", demo::disclaimer(&settings));
    let reused = run
        .suites
        .iter()
        .flat_map(|s| &s.runs)
        .filter(|(_, r)| matches!(r, TraceRun::Skipped(_)))
        .count();
    eprintln!(
        "demo: {} runs ({} replayed, {} already complete and reused; --force replays all) in {:.0} s; tables and figures in {}",
        run.logs.len(),
        run.logs.len() - reused,
        reused,
        started.elapsed().as_secs_f64(),
        settings.results_dir.display()
    );
    if run.interrupted || signals.interrupted() {
        if args.readme {
            eprintln!("demo: README.md left unchanged (the demo did not finish)");
        }
        eprintln!("demo interrupted: run it again to resume (complete runs are kept)");
        return Ok(Exit::Interrupted);
    }
    if args.readme {
        let a = &run.analysis;
        let figures = analyzer::write_figures(&a.report, &a.runs, "figures".as_ref(), None)?;
        let rel: Vec<String> = figures.iter().map(|p| p.display().to_string()).collect();
        analyzer::update_readme("README.md".as_ref(), &a.report, &rel)
            .context("updating README.md")?;
        eprintln!("demo: README.md tables and figures/ updated");
    }
    let failed: Vec<_> = run
        .suites
        .iter()
        .flat_map(pipeline::runs_without_success)
        .collect();
    Ok(super::exit_for_failed_runs(&failed))
}
