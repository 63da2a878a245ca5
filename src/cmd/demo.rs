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
    /// Simulator profile for all backends.
    #[arg(long, default_value = "a800-llama2-13b")]
    profile: String,
    /// Real seconds one run should last: each trace's speed-up K, per backend, is its
    /// span in the profile's time (engine model, that backend's policy) / this, rounded up.
    #[arg(long, value_name = "S", default_value_t = 7.0)]
    run_seconds: f64,
    /// Largest speed-up K (keeps engine steps well above the engine thread's wake-up
    /// latency).
    #[arg(long, value_name = "K", default_value_t = 100.0)]
    max_speedup: f64,
    /// Most token events per real second a run may reach at its busiest (caps K for
    /// dense traces: every token is an HTTP event on the same cores).
    #[arg(long, value_name = "N", default_value_t = 60_000.0)]
    max_events: f64,
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
        args.run_seconds.is_finite() && args.run_seconds > 0.0,
        "--run-seconds must be > 0"
    );
    anyhow::ensure!(
        args.max_speedup.is_finite() && args.max_speedup >= 1.0,
        "--max-speedup must be >= 1"
    );
    anyhow::ensure!(
        args.max_events.is_finite() && args.max_events > 0.0,
        "--max-events must be > 0"
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
        run_s: args.run_seconds,
        max_speedup: args.max_speedup,
        max_events_s: args.max_events,
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
    let rows = demo::compare::rows(&run.analysis.report);
    let exact = exact_rows(&settings, &run.speedups)?;
    println!("{}", demo::compare::markdown(&rows, &exact));
    println!("{}", speedup_table(&run.speedups));
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
        let extra = [
            ("demo-vs-published", demo::compare::markdown(&rows, &exact)),
            ("demo-speedups", speedup_table(&run.speedups)),
        ];
        update_blocks("README.md".as_ref(), &extra).context("updating README.md")?;
        eprintln!("demo: README.md tables and figures/ updated");
    }
    let failed: Vec<_> = run
        .suites
        .iter()
        .flat_map(pipeline::runs_without_success)
        .collect();
    Ok(super::exit_for_failed_runs(&failed))
}

/// Markdown: the speed-up K of every trace and backend, and what set it.
fn speedup_table(speedups: &demo::Speedups) -> String {
    let mut s = String::from(
        "| trace | backend | span in the profile's time, s | peak token rate, tok/s | speed-up K |\n|:--|:--|--:|--:|--:|\n",
    );
    for ((backend, trace), (load, k)) in speedups {
        let name = trace
            .file_stem()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        s.push_str(&format!(
            "| {name} | {backend} | {:.0} | {:.0} | {k} |\n",
            load.span_s, load.peak_tok_s
        ));
    }
    s
}

/// Rewrites the demo's own marker blocks of the README (present ones only).
fn update_blocks(readme: &std::path::Path, blocks: &[(&str, String)]) -> anyhow::Result<()> {
    let mut text = formats::read_input_utf8(readme, formats::InputKind::README)?;
    for (name, content) in blocks {
        analyzer::readme::replace_block(&mut text, name, content)?;
    }
    formats::write_atomic(readme, text.as_bytes())?;
    Ok(())
}

/// The demo's cells in virtual time (the engine model alone) on the same traces.
fn exact_rows(
    settings: &DemoSettings,
    speedups: &demo::Speedups,
) -> anyhow::Result<Vec<simulator::calibration::Row>> {
    let profile = simulator::Profile::load(&settings.profile)?;
    let paths: std::collections::BTreeSet<&PathBuf> = speedups.keys().map(|(_, t)| t).collect();
    let traces = paths
        .into_iter()
        .map(|t| demo::virtual_trace(t))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(demo::compare::virtual_rows(&profile, &traces))
}
