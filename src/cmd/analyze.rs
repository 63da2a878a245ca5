//! `llmib analyze`: metrics, tables and figures from run logs (see `analyzer/README.md`).

use std::path::PathBuf;

use analyzer::{AnalyzeOptions, Format, LatencyFrom, Slo, Stat, TokenSource};
use anyhow::{Context, anyhow};
use formats::OutputGuard;

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// Run logs, or directories holding them.
    #[arg(required = true, value_name = "LOG_OR_DIR")]
    pub logs: Vec<PathBuf>,
    /// Write outputs (and figures, in DIR/figures) here instead of printing tables.
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,
    /// Output formats: md, csv, json (comma-separated). Default: md on stdout; all three
    /// with -o.
    #[arg(long, value_delimiter = ',', value_name = "FORMAT")]
    pub format: Vec<String>,
    /// Statistic of the latency table's cells: median, mean, p90, p95, p99.
    #[arg(long, default_value = "median")]
    pub stat: String,
    /// Latencies in tables and SLOs measured from: dispatch (what a user waits,
    /// connection setup included), sent (when the request's bytes went to its
    /// connection: what the server took) or scheduled (includes client lateness:
    /// coordinated-omission corrected).
    #[arg(long, default_value = "dispatch", value_name = "ORIGIN")]
    pub from: String,
    /// Output-token count: client (counted in the stream), server (reported usage) or
    /// requested (max_tokens, the original benchmark's count).
    #[arg(long, default_value = "client", value_name = "SOURCE")]
    pub output_tokens: String,
    /// Goodput SLOs in seconds, e.g. ttft=0.5,tpot=0.05,e2e=10.
    #[arg(long)]
    pub slo: Option<String>,
    /// Count warmup requests too.
    #[arg(long)]
    pub include_warmup: bool,
    /// Rewrite the marked table blocks of this README (default ./README.md) and write
    /// the figures (see --figures).
    #[arg(long, value_name = "README", num_args = 0..=1, default_missing_value = "README.md")]
    pub readme: Option<PathBuf>,
    /// Figure directory (default: figures/ next to the README, or DIR/figures with -o).
    #[arg(long, value_name = "DIR")]
    pub figures: Option<PathBuf>,
    /// Write no figures.
    #[arg(long)]
    pub no_figures: bool,
    /// Run shown by the timeline figure (a log's file stem).
    #[arg(long, value_name = "RUN")]
    pub timeline: Option<String>,
    /// Replace existing output files (tables, figures). `--readme` always rewrites its
    /// README blocks and figures in place: that is what it is for.
    #[arg(long)]
    pub force: bool,
}

fn options(a: &Args) -> anyhow::Result<AnalyzeOptions> {
    let stat = Stat::parse(&a.stat)
        .ok_or_else(|| anyhow!("unknown --stat `{}` (median, mean, p90, p95, p99)", a.stat))?;
    let mut o = AnalyzeOptions {
        stat,
        ..AnalyzeOptions::default()
    };
    o.metrics.latency_from = LatencyFrom::parse(&a.from)
        .ok_or_else(|| anyhow!("unknown --from `{}` (dispatch, sent or scheduled)", a.from))?;
    o.metrics.output_tokens = TokenSource::parse(&a.output_tokens).ok_or_else(|| {
        anyhow!(
            "unknown --output-tokens `{}` (client, server or requested)",
            a.output_tokens
        )
    })?;
    o.metrics.slo = a
        .slo
        .as_deref()
        .map(Slo::parse)
        .transpose()
        .map_err(|e| anyhow!("--slo: {e}"))?;
    o.metrics.include_warmup = a.include_warmup;
    Ok(o)
}

/// The SLO lines of the capacity figure: a sweep or search directory's manifest's
/// targets, else the per-request limits of `--slo` (drawn as p99 lines).
fn capacity_slo(
    logs: &[PathBuf],
    opts: &AnalyzeOptions,
) -> anyhow::Result<Option<analyzer::capacity::SloTargets>> {
    use analyzer::capacity::{SloMetric, SloTarget, SloTargets};
    if let Some((_, m)) = analyzer::capacity::Manifest::find(logs)?
        && m.slo.is_some()
    {
        return Ok(m.slo);
    }
    let Some(slo) = opts.metrics.slo else {
        return Ok(None);
    };
    let targets: Vec<SloTarget> = [
        (SloMetric::Ttft, slo.ttft_s),
        (SloMetric::Tpot, slo.tpot_s),
        (SloMetric::E2e, slo.e2e_s),
    ]
    .into_iter()
    .filter_map(|(metric, limit)| {
        limit.map(|limit_s| SloTarget {
            metric,
            stat: Stat::P99,
            limit_s,
        })
    })
    .collect();
    Ok((!targets.is_empty()).then_some(SloTargets(targets)))
}

fn formats_of(args: &Args) -> anyhow::Result<Vec<Format>> {
    let mut formats = Vec::new();
    for f in &args.format {
        formats.push(
            Format::parse(f).ok_or_else(|| anyhow!("unknown --format `{f}` (md, csv, json)"))?,
        );
    }
    if args.output.is_some() && formats.is_empty() {
        formats = vec![Format::Markdown, Format::Csv, Format::Json];
    }
    Ok(formats)
}

/// Where figures go: `--figures`, else next to the README, else `DIR/figures`.
fn figure_dir(args: &Args) -> Option<PathBuf> {
    if args.no_figures {
        return None;
    }
    match (&args.figures, &args.readme, &args.output) {
        (Some(d), _, _) => Some(d.clone()),
        (None, Some(readme), _) => Some(
            readme
                .parent()
                .map(|p| p.join("figures"))
                .unwrap_or_else(|| PathBuf::from("figures")),
        ),
        (None, None, Some(out)) => Some(out.join("figures")),
        (None, None, None) => None,
    }
}

/// Every check that can fail, run before anything is written: the README and its
/// markers, the timeline run, and every output file (exists without --force, is an
/// input log, is not a regular file).
fn validate_outputs(
    args: &Args,
    report: &analyzer::Report,
    runs: &analyzer::Runs,
    formats: &[Format],
) -> anyhow::Result<()> {
    if let Some(readme) = &args.readme {
        analyzer::check_readme(readme).with_context(|| format!("--readme {}", readme.display()))?;
    }
    let guard = runs
        .log_paths()
        .fold(OutputGuard::new(args.force), |g, log| {
            g.input(log, "a run log being analysed")
        });
    if let Some(dir) = &args.output {
        guard.check_dir(dir)?;
        let files = analyzer::output_files(report, dir, formats);
        guard.check_files(files.iter().map(|p| p.as_path()))?;
    }
    if let Some(dir) = figure_dir(args) {
        let files = analyzer::figure_files(report, &dir, args.timeline.as_deref())?;
        guard.check_dir(&dir)?;
        // --readme regenerates its figures in place; other figure outputs obey --force.
        let figure_guard = if args.readme.is_some() {
            guard.forced()
        } else {
            guard
        };
        figure_guard.check_files(files.iter().map(|p| p.as_path()))?;
    }
    Ok(())
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let opts = options(&args)?;
    let formats = formats_of(&args)?;
    let runs = match analyzer::load_runs(&args.logs) {
        Err(analyzer::Error::NothingToAnalyse(what)) => {
            eprintln!("nothing to analyse: {what}");
            return Ok(Exit::NothingSucceeded);
        }
        r => r?,
    };
    let mut report = analyzer::report(&runs, &opts)?;
    report.capacity_slo = capacity_slo(&args.logs, &opts)?;
    validate_outputs(&args, &report, &runs, &formats)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(dir) = &args.output {
        for p in analyzer::write_outputs(&report, dir, &formats)? {
            eprintln!("wrote {}", p.display());
        }
    } else if args.readme.is_none() {
        let f = formats.first().copied().unwrap_or(Format::Markdown);
        print!("{}", analyzer::render(&report, f));
    }
    let mut figure_files = Vec::new();
    if let Some(dir) = figure_dir(&args) {
        figure_files = analyzer::write_figures(&report, &runs, &dir, args.timeline.as_deref())?;
        eprintln!("wrote {} figures to {}", figure_files.len(), dir.display());
    }
    if let Some(readme) = &args.readme {
        update_readme(readme, &report, &figure_files)?;
    }
    if report.runs.iter().all(|r| r.metrics.ok == 0) {
        eprintln!("nothing to analyse: no request succeeded in any run");
        return Ok(Exit::NothingSucceeded);
    }
    Ok(Exit::Success)
}

fn update_readme(
    readme: &std::path::Path,
    report: &analyzer::Report,
    figure_files: &[PathBuf],
) -> anyhow::Result<()> {
    let base = readme
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map(|p| p.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    let rel: Vec<String> = figure_files
        .iter()
        .map(|f| {
            f.strip_prefix(&base)
                .unwrap_or(f)
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    let blocks = analyzer::update_readme(readme, report, &rel)
        .with_context(|| format!("updating {}", readme.display()))?;
    eprintln!("updated {} ({})", readme.display(), blocks.join(", "));
    Ok(())
}
