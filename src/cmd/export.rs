//! `llmib export`: the requests and events tables of run logs, as parquet or CSV.

use std::path::PathBuf;

use analyzer::ExportFormat;
use anyhow::anyhow;
use formats::OutputGuard;

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// Run logs, or directories holding them.
    #[arg(required = true, value_name = "LOG_OR_DIR")]
    pub logs: Vec<PathBuf>,
    /// parquet or csv.
    #[arg(long, default_value = "parquet")]
    pub format: String,
    /// Output directory (runs, requests and events files are written there).
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Replace existing export files.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let format = ExportFormat::parse(&args.format)
        .ok_or_else(|| anyhow!("unknown --format `{}` (parquet or csv)", args.format))?;
    let runs = match analyzer::load_runs(&args.logs) {
        Err(analyzer::Error::NothingToAnalyse(what)) => {
            eprintln!("nothing to export: {what}");
            return Ok(Exit::NothingSucceeded);
        }
        r => r?,
    };
    let guard = runs
        .log_paths()
        .fold(OutputGuard::new(args.force), |g, log| {
            g.input(log, "a run log being exported")
        });
    guard.check_dir(&args.output)?;
    let files = analyzer::export_files(&args.output, format);
    guard.check_files(files.iter().map(|p| p.as_path()))?;
    for w in &runs.warnings {
        eprintln!("warning: {w}");
    }
    for p in analyzer::export(&runs, &args.output, format)? {
        eprintln!("wrote {}", p.display());
    }
    Ok(Exit::Success)
}
