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
//! Modules (the map and the direction of use between them: `analyzer/README.md`, *Map*):
//! [`load`] (logs to tables), [`metrics`] (definitions; [`sessions`]: multi-turn
//! sessions), [`stats`] (percentiles), [`slo`] (SLOs), [`report`] (grouping into
//! tables), [`capacity`] (throughput-latency curves), [`tables`] (Markdown, CSV, JSON),
//! [`figures`] (PNG and SVG), [`readme`] (marker blocks), [`export`] (parquet / CSV),
//! [`merge`] (shard logs).

pub mod capacity;
pub mod compare;
pub mod error;
pub mod export;
pub mod figures;
pub mod load;
pub mod merge;
pub mod metrics;
pub mod readme;
pub mod report;
pub mod slo;
pub mod stats;
pub mod tables;

pub use load::server_metrics;
pub use metrics::sessions;

use std::path::{Path, PathBuf};

pub use error::{Error, Result};
pub use export::{ExportFormat, export, export_files};
pub use figures::{figure_files, write_figures};
pub use load::load_runs;
pub use load::runs::{RunInfo, Runs};
pub use metrics::RunMetrics;
pub use metrics::options::{LatencyFrom, MetricOptions, TokenSource};
pub use metrics::prefix_cache::PrefixCache;
pub use metrics::sessions::{SessionMetrics, TAIL_TURN, TurnRow};
pub use readme::{check_readme, update_readme};
pub use report::{AnalyzeOptions, Report, RunReport, report};
pub use slo::Slo;
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

/// The file names [`write_outputs`] writes for `formats` (`ttft_by_turn.csv` only when
/// some run has sessions).
fn output_names(report: &Report, formats: &[Format]) -> Vec<&'static str> {
    let has_curves = !capacity::curves(report).is_empty();
    let mut names = Vec::new();
    for f in formats {
        match f {
            Format::Markdown => names.push("tables.md"),
            Format::Csv => {
                names.extend(["throughput.csv", "latency.csv", "runs.csv"]);
                if tables::sessions::any(report) {
                    names.push("ttft_by_turn.csv");
                }
                if has_curves {
                    names.push("capacity.csv");
                }
            }
            Format::Json => {
                names.push("report.json");
                if has_curves {
                    names.push("capacity.json");
                }
            }
        }
    }
    names
}

/// The files [`write_outputs`] would write into `dir`, so a caller can check them first.
pub fn output_files(report: &Report, dir: &Path, formats: &[Format]) -> Vec<PathBuf> {
    output_names(report, formats)
        .into_iter()
        .map(|n| dir.join(n))
        .collect()
}

/// Writes the report into `dir` (created if needed), per format:
/// Markdown `tables.md`; CSV `throughput.csv`, `latency.csv`, `runs.csv` (and
/// `ttft_by_turn.csv` when some run has sessions, `capacity.csv` when some trace was
/// run at several offered rates); JSON `report.json` (and `capacity.json`). Returns the files
/// written.
pub fn write_outputs(report: &Report, dir: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let files = output_names(report, formats).into_iter().map(|name| {
        let text = match name {
            "tables.md" => tables::markdown::full(report),
            "throughput.csv" => tables::csv::throughput(report),
            "latency.csv" => tables::csv::latency(report),
            "runs.csv" => tables::csv::runs(report),
            "ttft_by_turn.csv" => tables::sessions::csv_by_turn(report),
            "capacity.csv" => capacity::export::csv(&capacity::curves(report)),
            "capacity.json" => {
                capacity::export::json(&capacity::curves(report), report.capacity_slo.as_ref())
            }
            _ => tables::json::report(report),
        };
        (name, text)
    });
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
