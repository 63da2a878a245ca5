//! `llmib export`: the requests and events tables of run logs, as parquet or CSV.

use std::path::PathBuf;

use analyzer::ExportFormat;
use anyhow::anyhow;

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
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let format = ExportFormat::parse(&args.format)
        .ok_or_else(|| anyhow!("unknown --format `{}` (parquet or csv)", args.format))?;
    let runs = analyzer::load_runs(&args.logs)?;
    for w in &runs.warnings {
        eprintln!("warning: {w}");
    }
    for p in analyzer::export(&runs, &args.output, format)? {
        eprintln!("wrote {}", p.display());
    }
    Ok(())
}
