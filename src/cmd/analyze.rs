//! `llmib analyze`: metrics, tables and figures from run logs (see `analyzer/README.md`).

use std::path::PathBuf;

use analyzer::{AnalyzeOptions, Format, LatencyFrom, Slo, Stat, TokenSource};
use anyhow::{Context, anyhow};

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
    /// Latencies in tables and SLOs measured from: dispatch or scheduled (includes
    /// client lateness: coordinated-omission corrected).
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
}

fn options(a: &Args) -> anyhow::Result<AnalyzeOptions> {
    let stat = Stat::parse(&a.stat)
        .ok_or_else(|| anyhow!("unknown --stat `{}` (median, mean, p90, p95, p99)", a.stat))?;
    let mut o = AnalyzeOptions {
        stat,
        ..AnalyzeOptions::default()
    };
    o.metrics.latency_from = LatencyFrom::parse(&a.from)
        .ok_or_else(|| anyhow!("unknown --from `{}` (dispatch or scheduled)", a.from))?;
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

pub fn run(args: Args) -> anyhow::Result<()> {
    let opts = options(&args)?;
    let mut formats = Vec::new();
    for f in &args.format {
        formats.push(
            Format::parse(f).ok_or_else(|| anyhow!("unknown --format `{f}` (md, csv, json)"))?,
        );
    }
    let runs = analyzer::load_runs(&args.logs)?;
    let report = analyzer::report(&runs, &opts)?;
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    if let Some(dir) = &args.output {
        if formats.is_empty() {
            formats = vec![Format::Markdown, Format::Csv, Format::Json];
        }
        for p in analyzer::write_outputs(&report, dir, &formats)? {
            eprintln!("wrote {}", p.display());
        }
    } else if args.readme.is_none() {
        let f = formats.first().copied().unwrap_or(Format::Markdown);
        print!("{}", analyzer::render(&report, f));
    }
    let fig_dir = match (&args.figures, &args.readme, &args.output) {
        (Some(d), _, _) => Some(d.clone()),
        (None, Some(readme), _) => Some(
            readme
                .parent()
                .map(|p| p.join("figures"))
                .unwrap_or_else(|| PathBuf::from("figures")),
        ),
        (None, None, Some(out)) => Some(out.join("figures")),
        (None, None, None) => None,
    };
    let mut figure_files = Vec::new();
    if let (Some(dir), false) = (&fig_dir, args.no_figures) {
        figure_files = analyzer::write_figures(&report, &runs, dir, args.timeline.as_deref())?;
        eprintln!("wrote {} figures to {}", figure_files.len(), dir.display());
    }
    if let Some(readme) = &args.readme {
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
        let blocks = analyzer::update_readme(readme, &report, &rel)
            .with_context(|| format!("updating {}", readme.display()))?;
        eprintln!("updated {} ({})", readme.display(), blocks.join(", "));
    }
    Ok(())
}
