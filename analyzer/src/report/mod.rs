//! The analysis of a set of runs: every run's metrics, plus the original benchmark's two
//! tables built from them.
//!
//! Grouping rules (why: a table cell must compare like with like):
//! * A run's **column** comes from its log header alone: a trace without an arrival
//!   rate (a burst) goes to the throughput table under its output cap
//!   (`max 32 tokens`); a trace with a rate goes to the latency table under `QPS=rate`.
//!   Runs whose header has no trace spec appear only in the per-run table.
//! * A column is one **trace** (name + sha256): two traces with the same cap or rate get
//!   two columns, labelled with the trace name, and a note says so. Runs of different
//!   traces are never mixed in one cell.
//! * A **row** is one backend kind, real or simulated (simulated rows are labelled
//!   `(simulated, <profile>)`, plus `, x K` when the simulator ran `K` times faster,
//!   and `, virtual time` when its engine model made the run without a server; they
//!   never share a cell with real runs, nor virtual runs with served ones). Runs at different speed-ups of one
//!   profile share a row: loading put them all in the profile's units.
//! * Tables are split by **model** when the runs name more than one.
//! * Several runs in one cell (same backend, same trace: repeats) are pooled: throughput
//!   = total tokens / total duration, latency statistics over all their requests; a note
//!   names the pooled runs.

pub mod labels;
pub mod run;
pub mod table;
mod warnings;

use serde::Serialize;

use crate::error::Result;
use crate::load::runs::Runs;
use crate::metrics::compute_all;
use crate::metrics::options::MetricOptions;
use crate::metrics::rates::rates;
use crate::slo::SloTargets;
use crate::stats::Stat;
use table::build_tables;
use warnings::run_warnings;

pub use labels::{THROUGHPUT_CORNER, backend_display, fmt_qps, latency_corner, simulated_label};
pub use run::{Placement, RunReport};
pub use table::{LatencyCell, Table, TableColumn, TableRow, ThroughputCell};

/// Options of an analysis (`llmib analyze` flags).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnalyzeOptions {
    #[serde(flatten)]
    pub metrics: MetricOptions,
    /// Statistic of the latency table's cells (`--stat`, median by default).
    pub stat: Stat,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        AnalyzeOptions {
            metrics: MetricOptions::default(),
            stat: Stat::Median,
        }
    }
}

/// The whole analysis.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub tool: String,
    pub options: AnalyzeOptions,
    pub runs: Vec<RunReport>,
    pub throughput_tables: Vec<Table<ThroughputCell>>,
    pub latency_tables: Vec<Table<LatencyCell>>,
    /// Everything the user should know, one line each (also printed on stderr).
    pub warnings: Vec<String>,
    /// Capacity SLO targets drawn on the curve figures and written in
    /// `capacity.json` (a capacity manifest's, or the caller's); `None` by default.
    #[serde(skip)]
    pub capacity_slo: Option<SloTargets>,
}

/// Computes every run's metrics and the two tables.
pub fn report(runs: &Runs, opts: &AnalyzeOptions) -> Result<Report> {
    let computed = compute_all(runs, &opts.metrics)?;
    let rates = rates(runs)?;
    let mut warnings = runs.warnings.clone();
    let mut reports = Vec::with_capacity(runs.runs.len());
    for ((info, computed), rates) in runs.runs.iter().zip(computed).zip(rates) {
        let w = run_warnings(info, &computed.0, &opts.metrics);
        warnings.extend(w.iter().cloned());
        reports.push(RunReport::new(info, computed, rates, w));
    }
    let unplaced: Vec<&str> = reports
        .iter()
        .filter(|r| r.placement == Placement::None)
        .map(|r| r.run.as_str())
        .collect();
    if !unplaced.is_empty() {
        warnings.push(format!(
            "runs {} are not synthetic burst or fixed-rate traces (or their header has no spec): per-run table only",
            unplaced.join(", ")
        ));
    }
    let (throughput_tables, latency_tables) = build_tables(
        &reports,
        (opts.stat, opts.metrics.latency_from),
        &mut warnings,
    );
    Ok(Report {
        tool: format!("llm-infer-bench analyzer {}", env!("CARGO_PKG_VERSION")),
        options: *opts,
        runs: reports,
        throughput_tables,
        latency_tables,
        warnings,
        capacity_slo: None,
    })
}
