//! The original benchmark's two tables (throughput by output cap, latency by QPS),
//! built from the run reports under the grouping rules of the [`crate::report`] docs.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::metrics::options::LatencyFrom;
use crate::report::labels::{
    THROUGHPUT_CORNER, backend_rank, fmt_qps, latency_corner, simulated_label,
};
use crate::report::run::{Placement, RunReport};
use crate::stats::{Stat, summarize};

/// A column of one of the two tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableColumn {
    pub label: String,
    /// Output cap (throughput) or arrival rate (latency).
    pub key: f64,
    pub trace_name: String,
    pub trace_sha256: String,
}

/// A row: one backend (real or simulated).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TableRow<C> {
    pub label: String,
    pub backend: String,
    pub simulated: bool,
    /// One entry per column; `None` = no run.
    pub cells: Vec<Option<C>>,
}

/// A throughput table cell, tokens per second.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ThroughputCell {
    pub tok_s: f64,
    /// With requested output tokens (the original's count).
    pub requested_tok_s: f64,
    pub runs: Vec<String>,
    pub early_stops: u64,
}

/// A latency table cell, seconds, under the table's statistic.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyCell {
    pub per_token_s: f64,
    pub request_s: f64,
    pub runs: Vec<String>,
}

/// One table in the original's shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Table<C> {
    /// Model shown above the table when several models were analysed.
    pub model: Option<String>,
    /// Header's first cell (names the quantity and, for latency, the statistic).
    pub corner: String,
    pub columns: Vec<TableColumn>,
    pub rows: Vec<TableRow<C>>,
    /// Footnotes: pooled runs, split columns, token-count differences, simulated rows.
    pub notes: Vec<String>,
}

/// The two tables of `runs` (one of each per model when they name several), built
/// under the latency table's statistic and origin; warnings about split columns are
/// added to `warnings`.
pub(crate) fn build_tables(
    runs: &[RunReport],
    (stat, from): (Stat, LatencyFrom),
    warnings: &mut Vec<String>,
) -> (Vec<Table<ThroughputCell>>, Vec<Table<LatencyCell>>) {
    let models: BTreeSet<Option<String>> = runs.iter().map(|r| r.model.clone()).collect();
    let split = models.len() > 1;
    let mut tt = Vec::new();
    let mut lt = Vec::new();
    for model in &models {
        let of_model: Vec<&RunReport> = runs.iter().filter(|r| &r.model == model).collect();
        let thr: Vec<(&RunReport, f64)> = of_model
            .iter()
            .filter_map(|r| match r.placement {
                Placement::Throughput { cap } => Some((*r, cap as f64)),
                _ => None,
            })
            .collect();
        let lat: Vec<(&RunReport, f64)> = of_model
            .iter()
            .filter_map(|r| match r.placement {
                Placement::Latency { qps } => Some((*r, qps)),
                _ => None,
            })
            .collect();
        let label_model = if split { model.clone() } else { None };
        if !thr.is_empty() {
            tt.push(build_table(
                &thr,
                label_model.clone(),
                THROUGHPUT_CORNER.to_string(),
                |k| format!("max {} tokens", k as u64),
                throughput_cell,
                warnings,
            ));
        }
        if !lat.is_empty() {
            lt.push(build_table(
                &lat,
                label_model,
                latency_corner(stat, from),
                |k| format!("QPS={}", fmt_qps(k)),
                |cell_runs| latency_cell(cell_runs, stat),
                warnings,
            ));
        }
    }
    for t in &mut tt {
        throughput_notes(t);
    }
    (tt, lt)
}

/// Pooled throughput of the runs of one cell: total tokens over total duration.
fn throughput_cell(cell_runs: &[&RunReport]) -> Option<ThroughputCell> {
    let dur: f64 = cell_runs.iter().filter_map(|r| r.samples.duration_s).sum();
    if dur <= 0.0 {
        return None;
    }
    let used: u64 = cell_runs.iter().map(|r| r.samples.tokens_used).sum();
    let reqd: u64 = cell_runs.iter().map(|r| r.samples.tokens_requested).sum();
    Some(ThroughputCell {
        tok_s: used as f64 / dur,
        requested_tok_s: reqd as f64 / dur,
        runs: cell_runs.iter().map(|r| r.run.clone()).collect(),
        early_stops: cell_runs.iter().map(|r| r.metrics.early_stops).sum(),
    })
}

/// Pooled latencies of the runs of one cell: `stat` over all their requests.
fn latency_cell(cell_runs: &[&RunReport], stat: Stat) -> Option<LatencyCell> {
    let mut e2e: Vec<f64> = Vec::new();
    let mut ptl: Vec<f64> = Vec::new();
    for r in cell_runs {
        e2e.extend_from_slice(&r.samples.e2e_s);
        ptl.extend_from_slice(&r.samples.per_token_s);
    }
    let (e, p) = (summarize(&mut e2e), summarize(&mut ptl));
    Some(LatencyCell {
        per_token_s: stat.of(&p)?,
        request_s: stat.of(&e)?,
        runs: cell_runs.iter().map(|r| r.run.clone()).collect(),
    })
}

/// A column's key: (the cap or rate's bits, for ordering; the trace's sha256).
type ColKey = (u64, String);

/// A row's key: (backend rank, backend, simulator profile, label).
type RowKey = (usize, String, Option<String>, String);

/// One table of `placed` runs (each with its column's cap or rate): columns labelled
/// by `label`, cells pooled by `cell`.
fn build_table<C>(
    placed: &[(&RunReport, f64)],
    model: Option<String>,
    corner: String,
    label: impl Fn(f64) -> String,
    cell: impl Fn(&[&RunReport]) -> Option<C>,
    warnings: &mut Vec<String>,
) -> Table<C> {
    let col_keys = column_keys(placed);
    let mut notes = Vec::new();
    let columns = columns(&col_keys, label, warnings, &mut notes);
    let mut rows = Vec::new();
    for key in &row_keys(placed) {
        rows.push(row(placed, key, &col_keys, &columns, &cell, &mut notes));
    }
    if rows.iter().any(|r| r.simulated) {
        notes.push(
            "rows marked (simulated, profile) were measured against llm-infer-bench's simulator, not a real server"
                .into(),
        );
    }
    if placed
        .iter()
        .any(|(r, _)| r.simulated.as_ref().is_some_and(|s| s.virtual_time))
    {
        notes.push(
            "rows marked virtual time were made by the profile's engine model in virtual time (`--profile` without a \
             server): predicted, no server and no client took part"
                .into(),
        );
    }
    if placed.iter().any(|(r, _)| r.dilation != 1.0) {
        notes.push(
            "x K: the simulator ran the profile K times faster and the trace was replayed K times denser; \
             times were multiplied by K and rates divided by K (the profile's units)"
                .into(),
        );
    }
    Table {
        model,
        corner,
        columns,
        rows,
        notes,
    }
}

/// Columns: one per (key, trace); ordered by key, then trace name, then sha256.
fn column_keys(placed: &[(&RunReport, f64)]) -> Vec<(ColKey, f64, String)> {
    let mut cols: BTreeMap<ColKey, (f64, String)> = BTreeMap::new();
    for (r, k) in placed {
        cols.entry((k.to_bits(), r.trace_sha256.clone()))
            .or_insert((*k, r.trace_name.clone()));
    }
    let mut col_keys: Vec<(ColKey, f64, String)> =
        cols.into_iter().map(|(ck, (k, n))| (ck, k, n)).collect();
    col_keys.sort_by(|a, b| {
        a.1.total_cmp(&b.1)
            .then(a.2.cmp(&b.2))
            .then(a.0.1.cmp(&b.0.1))
    });
    col_keys
}

/// The columns' labels: the key's label, with the trace name (and its sha256's head
/// when names clash) when several traces share a key; a note and a warning per key so
/// split.
fn columns(
    col_keys: &[(ColKey, f64, String)],
    label: impl Fn(f64) -> String,
    warnings: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Vec<TableColumn> {
    let mut columns = Vec::new();
    for (ck, k, name) in col_keys {
        let same_key = col_keys.iter().filter(|c| c.1 == *k).count();
        let base = label(*k);
        let lbl = if same_key > 1 {
            let same_name = col_keys
                .iter()
                .filter(|c| c.1 == *k && c.2 == *name)
                .count();
            if same_name > 1 {
                format!("{base} ({name} {})", &ck.1[..ck.1.len().min(8)])
            } else {
                format!("{base} ({name})")
            }
        } else {
            base.clone()
        };
        if same_key > 1
            && !notes
                .iter()
                .any(|n: &String| n.starts_with(&format!("`{base}`")))
        {
            let msg = format!(
                "`{base}`: runs replayed {same_key} different traces; each trace has its own column, never mixed"
            );
            warnings.push(msg.clone());
            notes.push(msg);
        }
        columns.push(TableColumn {
            label: lbl,
            key: *k,
            trace_name: name.clone(),
            trace_sha256: ck.1.clone(),
        });
    }
    columns
}

/// What puts simulated runs in one row: their profile, and whether the simulator served
/// it (real time) or its engine model predicted it (virtual time).
fn sim_key(s: &formats::SimulatedInfo) -> String {
    if s.virtual_time {
        format!("{} (virtual time)", s.profile)
    } else {
        s.profile.clone()
    }
}

/// Rows: one per (backend, simulated profile), in backend order; the label names the
/// speed-ups of the row's runs.
fn row_keys(placed: &[(&RunReport, f64)]) -> Vec<RowKey> {
    let mut row_keys: Vec<RowKey> = Vec::new();
    for (r, _) in placed {
        let profile = r.simulated.as_ref().map(sim_key);
        let same = |o: &&(&RunReport, f64)| {
            o.0.backend == r.backend && o.0.simulated.as_ref().map(sim_key) == profile
        };
        let ks: Vec<f64> = placed
            .iter()
            .filter(same)
            .map(|(o, _)| o.dilation)
            .collect();
        let key = (
            backend_rank(&r.backend),
            r.backend.clone(),
            profile,
            simulated_label(&r.backend_name, r.simulated.as_ref(), &ks),
        );
        if !row_keys.contains(&key) {
            row_keys.push(key);
        }
    }
    row_keys.sort();
    row_keys
}

/// One row's cells, each pooling the row's runs of its column (a note names the runs
/// pooled).
fn row<C>(
    placed: &[(&RunReport, f64)],
    (_, backend, profile, lbl): &RowKey,
    col_keys: &[(ColKey, f64, String)],
    columns: &[TableColumn],
    cell: impl Fn(&[&RunReport]) -> Option<C>,
    notes: &mut Vec<String>,
) -> TableRow<C> {
    let mut cells = Vec::new();
    for (ck, _, _) in col_keys {
        let in_cell: Vec<&RunReport> = placed
            .iter()
            .filter(|(r, k)| {
                &r.backend == backend
                    && r.simulated.as_ref().map(sim_key).as_ref() == profile.as_ref()
                    && k.to_bits() == ck.0
                    && r.trace_sha256 == ck.1
            })
            .map(|(r, _)| *r)
            .collect();
        if in_cell.len() > 1 {
            let names: Vec<&str> = in_cell.iter().map(|r| r.run.as_str()).collect();
            notes.push(format!(
                "{lbl}, {}: {} runs of the same trace pooled ({})",
                columns[cells.len()].label,
                in_cell.len(),
                names.join(", ")
            ));
        }
        cells.push(if in_cell.is_empty() {
            None
        } else {
            cell(&in_cell)
        });
    }
    TableRow {
        label: lbl.clone(),
        backend: backend.clone(),
        simulated: profile.is_some(),
        cells,
    }
}

fn throughput_notes(t: &mut Table<ThroughputCell>) {
    for row in &t.rows {
        for (c, cell) in row.cells.iter().enumerate() {
            let Some(cell) = cell else { continue };
            if cell.early_stops > 0 || (cell.tok_s - cell.requested_tok_s).abs() > 0.005 {
                t.notes.push(format!(
                    "{}, {}: {:.2} token/s with requested output tokens (the original's count); {} early stops",
                    row.label, t.columns[c].label, cell.requested_tok_s, cell.early_stops
                ));
            }
        }
    }
}
