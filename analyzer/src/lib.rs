//! The analyzer of llm-infer-bench: metrics, tables, figures and exports computed from
//! raw run logs, long after the runs.
//!
//! Why from raw logs: peers disagree on metric definitions (TPOT with or without the
//! first token, ITL per chunk or per token, latency from the scheduled or the actual
//! send time). Every number here is derived from the per-request times and token
//! events a run log records, under a definition written in `analyzer/README.md` and
//! selectable where peers differ ([`TokenSource`], [`LatencyFrom`]).
//!
//! Data flow:
//!
//! ```text
//! logs --load_runs--> Runs (requests + events polars DataFrames)
//!      --report-----> Report (per-run metrics, the original's two tables)
//!      --write_outputs / write_figures / update_readme / export
//! ```
//!
//! Library use (the suite runner calls the same functions as `llmib analyze`):
//!
//! ```no_run
//! use analyzer::{AnalyzeOptions, Format};
//! let runs = analyzer::load_runs(&["results/"])?;
//! let report = analyzer::report(&runs, &AnalyzeOptions::default())?;
//! analyzer::write_outputs(&report, "out".as_ref(), &[Format::Markdown, Format::Json])?;
//! let figs = analyzer::write_figures(&report, &runs, "figures".as_ref(), None)?;
//! let rel: Vec<String> = figs.iter().map(|p| p.display().to_string()).collect();
//! analyzer::update_readme("README.md".as_ref(), &report, &rel)?;
//! # Ok::<(), analyzer::Error>(())
//! ```
//!
//! Modules: [`load`] (logs to tables), [`metrics`] (definitions), [`stats`]
//! (percentiles), [`report`] (grouping into tables), [`tables`] (Markdown, CSV, JSON),
//! [`figures`] (PNG and SVG), [`readme`] (marker blocks), [`export`] (parquet / CSV).

pub mod error;
pub mod export;
pub mod figures;
pub mod load;
pub mod metrics;
pub mod readme;
pub mod report;
pub mod stats;
pub mod tables;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use export::{ExportFormat, export};
pub use figures::write_figures;
pub use load::{RunInfo, Runs, load_runs};
pub use metrics::{LatencyFrom, MetricOptions, RunMetrics, Slo, TokenSource};
pub use readme::update_readme;
pub use report::{AnalyzeOptions, Report, RunReport, report};
pub use stats::{Stat, Stats};
pub use tables::Format;

/// Renders the report in one format (Markdown: both tables, the per-run table and the
/// warnings; CSV: the per-run metrics; JSON: everything).
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Markdown => tables::markdown::full(report),
        Format::Csv => tables::csv::runs(report),
        Format::Json => tables::json::report(report),
    }
}

/// Writes the report into `dir` (created if needed), per format:
/// Markdown `tables.md`; CSV `throughput.csv`, `latency.csv`, `runs.csv`; JSON
/// `report.json`. Returns the files written.
pub fn write_outputs(report: &Report, dir: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut files: Vec<(&str, String)> = Vec::new();
    for f in formats {
        match f {
            Format::Markdown => files.push(("tables.md", tables::markdown::full(report))),
            Format::Csv => {
                files.push(("throughput.csv", tables::csv::throughput(report)));
                files.push(("latency.csv", tables::csv::latency(report)));
                files.push(("runs.csv", tables::csv::runs(report)));
            }
            Format::Json => files.push(("report.json", tables::json::report(report))),
        }
    }
    let mut written = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        formats::write_atomic(&path, text.as_bytes()).map_err(|e| Error::Log {
            path: path.clone(),
            source: e,
        })?;
        written.push(path);
    }
    Ok(written)
}
