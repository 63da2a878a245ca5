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
//!   and never share a cell with real runs). Runs at different speed-ups of one
//!   profile share a row: loading put them all in the profile's units.
//! * Tables are split by **model** when the runs name more than one.
//! * Several runs in one cell (same backend, same trace: repeats) are pooled: throughput
//!   = total tokens / total duration, latency statistics over all their requests; a note
//!   names the pooled runs.

use std::collections::{BTreeMap, BTreeSet};

use formats::{LogEnd, PrefixCacheReset, ServerIdentity, SimulatedInfo, TraceSpec};
use serde::Serialize;

use crate::error::Result;
use crate::load::runs::{RunInfo, Runs};
use crate::metrics::options::{LatencyFrom, MetricOptions};
use crate::metrics::rates::{Rates, rates};
use crate::metrics::compute_all;
use crate::metrics::run_metrics::{RunMetrics, Samples};
use crate::slo::SloTargets;
use crate::stats::{Stat, summarize};

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

/// Where a run sits in the original benchmark's tables.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "table", rename_all = "snake_case")]
pub enum Placement {
    /// Burst trace with an output cap: throughput table column `max {cap} tokens`.
    Throughput { cap: u32 },
    /// Trace with an arrival rate: latency table column `QPS={qps}`.
    Latency { qps: f64 },
    /// Not enough in the header to place it (no spec, or a burst without a cap).
    None,
}

/// One run: identity, placement and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: String,
    pub log: String,
    /// `tgi`, `vllm`, `lightllm`, `openai`, `openai-chat`.
    pub backend: String,
    /// Display name used in tables (`TGI`, `vLLM`...).
    pub backend_name: String,
    pub model: Option<String>,
    /// Set when the numbers come from llm-infer-bench's simulator, not a real server.
    pub simulated: Option<SimulatedInfo>,
    pub trace_name: String,
    pub trace_sha256: String,
    pub placement: Placement,
    /// The log ended with a verified trailer and the run was not stopped early.
    pub complete: bool,
    /// `trailer` or `truncated` (interrupted run, no trailer).
    pub log_end: &'static str,
    pub started_unix_ns: u64,
    /// Replay speed-up (`--time-scale`): arrival offsets were divided by it.
    pub time_scale: f64,
    /// The simulator's speed-up `K` the run's times were multiplied by when loaded
    /// ([`RunInfo::dilation`]; 1 when none).
    pub dilation: f64,
    pub warnings: Vec<String>,
    /// What the server said about itself before the run (log header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_identity: Option<ServerIdentity>,
    /// The prefix-cache reset before the run, when one was asked for (log header).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix_cache_reset: Option<PrefixCacheReset>,
    #[serde(flatten)]
    pub metrics: RunMetrics,
    #[serde(skip)]
    pub samples: Samples,
    /// Offered and achieved request rates (profile time when dilated), for the capacity curves.
    #[serde(skip)]
    pub rates: Rates,
}

impl RunReport {
    /// Row label of the run's backend in tables.
    pub fn row_label(&self) -> String {
        simulated_label(
            &self.backend_name,
            self.simulated.as_ref(),
            &[self.dilation],
        )
    }
}

/// `vLLM (simulated, PROFILE, x K)`: a backend's label, with its simulator profile and
/// the speed-ups its runs were dilated back from (`x 10` or `x 10-40`; none when 1).
pub fn simulated_label(backend_name: &str, sim: Option<&SimulatedInfo>, ks: &[f64]) -> String {
    let Some(s) = sim else {
        return backend_name.to_string();
    };
    let lo = ks.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ks.iter().copied().fold(1.0, f64::max);
    let k = if hi <= 1.0 {
        String::new()
    } else if lo == hi {
        format!(", x {}", fmt_qps(hi))
    } else {
        format!(", x {}-{}", fmt_qps(lo), fmt_qps(hi))
    };
    format!("{backend_name} (simulated, {}{k})", s.profile)
}

/// Display name of a backend kind, as in the original tables.
pub fn backend_display(kind: &str) -> String {
    match kind {
        "tgi" => "TGI".into(),
        "vllm" => "vLLM".into(),
        "lightllm" => "LightLLM".into(),
        "openai" => "OpenAI".into(),
        "openai-chat" => "OpenAI (chat)".into(),
        "sglang" => "SGLang".into(),
        "llamacpp" | "llama.cpp" => "llama.cpp".into(),
        other => other.to_string(),
    }
}

fn backend_rank(kind: &str) -> usize {
    ["tgi", "vllm", "lightllm", "openai", "openai-chat"]
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(usize::MAX)
}

/// Formats a rate as the original's column label number (`2`, `0.5`).
pub fn fmt_qps(q: f64) -> String {
    if q.fract() == 0.0 && q.abs() < 1e15 {
        format!("{}", q as i64)
    } else {
        let s = format!("{q:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

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

/// Corner label of the throughput table (verbatim from the original).
pub const THROUGHPUT_CORNER: &str = "Throughput (token/s) vs. variance in length";

/// Corner label of the latency table for a statistic and origin.
pub fn latency_corner(stat: Stat, from: LatencyFrom) -> String {
    let from = match from {
        LatencyFrom::Dispatch => "",
        LatencyFrom::Sent => ", from send time",
        LatencyFrom::Scheduled => ", from scheduled time",
    };
    format!(
        "generation request latency vs. QPS: {} per-token (request), s{from}",
        stat.name()
    )
}

/// A synthetic burst trace goes to the throughput table (column: its output cap), a
/// synthetic trace with an arrival rate to the latency table (column: the rate). An
/// imported production trace (Azure) has neither shape: per-run table only. A run of a
/// sweep or search (any trace) goes to the latency table under the rate it was asked
/// to offer (`options.offered_rate`): the spec's rate times the time scale is not it,
/// as the scale was chosen from the rate of the requests replayed, not the spec's.
fn placement(info: &RunInfo) -> Placement {
    let asked = info
        .header
        .options
        .offered_rate
        .filter(|r| r.is_finite() && *r > 0.0);
    if let Some(qps) = asked {
        return Placement::Latency { qps };
    }
    match &info.header.trace.spec {
        Some(spec @ TraceSpec::Synthetic(s)) => match (s.arrival.rate(), spec.output_cap()) {
            // The replayer's --time-scale divides arrival offsets: the offered rate
            // is the trace's rate times the scale, in the profile's time divided by
            // the simulator's speed-up.
            (Some(q), _) => Placement::Latency {
                qps: q * info.header.options.time_scale / info.dilation,
            },
            (None, Some(cap)) => Placement::Throughput { cap },
            (None, None) => Placement::None,
        },
        _ => Placement::None,
    }
}

fn run_warnings(info: &RunInfo, m: &RunMetrics, opts: &AnalyzeOptions) -> Vec<String> {
    let id = &info.id;
    let mut w = Vec::new();
    if let LogEnd::Truncated { records, .. } = &info.end {
        w.push(format!(
            "run {id}: interrupted log without trailer, {records} records analysed"
        ));
    }
    // Replayed at time scale K against a simulator K times faster, a run offers the
    // trace's own rate in the profile's time: nothing to say.
    let scale = info.header.options.time_scale / info.dilation;
    if let Some(r) = info.header.options.offered_rate {
        w.push(format!(
            "run {id}: replayed at time scale {} to offer {} req/s (its table column)",
            formats::readable(info.header.options.time_scale),
            fmt_qps(r)
        ));
    } else if (scale - 1.0).abs() > 1e-9 {
        w.push(format!(
            "run {id}: replayed at time scale {}{}: its offered rate (table column) is the trace's rate times {}",
            info.header.options.time_scale,
            if info.dilation != 1.0 {
                format!(" against a simulator {} times faster", info.dilation)
            } else {
                String::new()
            },
            fmt_qps(scale)
        ));
    }
    if m.requests > m.ok {
        let failed: Vec<String> = m
            .outcomes
            .iter()
            .filter(|(k, _)| k.as_str() != "ok")
            .map(|(k, v)| format!("{v} {k}"))
            .collect();
        w.push(format!(
            "run {id}: {} of {} requests did not succeed ({})",
            m.requests - m.ok,
            m.requests,
            failed.join(", ")
        ));
    }
    if m.early_stops > 0 {
        w.push(format!(
            "run {id}: {} requests stopped early (output < max_tokens): requested-token throughput {} vs {} with {} counts",
            m.early_stops,
            m.throughput_requested_tok_s
                .map_or("-".into(), |v| format!("{v:.2}")),
            m.throughput_tok_s.map_or("-".into(), |v| format!("{v:.2}")),
            m.output_tokens_source.name()
        ));
    }
    if m.over_length > 0 {
        w.push(format!(
            "run {id}: {} requests produced more tokens than max_tokens",
            m.over_length
        ));
    }
    for (flag, n) in &m.count_flags {
        w.push(format!("run {id}: {n} {}", count_flag_note(flag)));
    }
    if opts.metrics.latency_from == LatencyFrom::Sent && m.sent_missing > 0 {
        w.push(format!(
            "run {id}: {} of {} ok requests have no sent_ns (a log from before it was \
             recorded): their latencies are measured from dispatch",
            m.sent_missing, m.ok
        ));
    }
    if m.reasoning.without_answer > 0 {
        w.push(format!(
            "run {id}: {} of {} reasoning requests ended before any answer text (the length \
             limit hit while reasoning?): they have no time to first answer token",
            m.reasoning.without_answer, m.reasoning.requests
        ));
    }
    if m.tokens.server_fallbacks > 0 {
        w.push(format!(
            "run {id}: {} requests had no server token count; their client count was used",
            m.tokens.server_fallbacks
        ));
    }
    if !m.streamed {
        w.push(format!(
            "run {id}: not streamed: TTFT, TPOT and ITL are not measured"
        ));
        if opts
            .metrics
            .slo
            .is_some_and(|s| s.ttft_s.is_some() || s.tpot_s.is_some())
        {
            w.push(format!(
                "run {id}: goodput not computed: its SLO checks TTFT/TPOT, which need a stream"
            ));
        }
    }
    if m.ok > 0 && m.duration_s.is_none() {
        w.push(format!(
            "run {id}: no measurable duration: throughput is undefined"
        ));
    }
    w
}

/// What `n` records carrying a `count_flags` flag mean (after "run X: n "), in the
/// words of `formats/README.md`.
fn count_flag_note(flag: &str) -> String {
    match flag {
        "events_lost" => "records counted by contract after lost events (events_lost: fewer \
                          stream events than the tokens ignore_eos guarantees, as LightLLM \
                          drops them under load; counted as max_tokens)"
            .into(),
        "capped_at_max_model_len" => "records with an assumed count capped at max_model_len \
                                      - prompt + 1 (capped_at_max_model_len, vLLM legacy)"
            .into(),
        "prompt_only" => "records answered with the prompt alone (prompt_only: 0 tokens, ok; \
                          the prompt was over the server's limits or the first token was EOS)"
            .into(),
        other => format!("records flagged {other} (count_flags)"),
    }
}

/// Computes every run's metrics and the two tables.
pub fn report(runs: &Runs, opts: &AnalyzeOptions) -> Result<Report> {
    let computed = compute_all(runs, &opts.metrics)?;
    let rates = rates(runs)?;
    let mut warnings = runs.warnings.clone();
    let mut reports = Vec::with_capacity(runs.runs.len());
    for ((info, (metrics, samples)), rates) in runs.runs.iter().zip(computed).zip(rates) {
        let w = run_warnings(info, &metrics, opts);
        warnings.extend(w.iter().cloned());
        let h = &info.header;
        reports.push(RunReport {
            run: info.id.clone(),
            log: info.path.display().to_string(),
            backend: h.backend.kind.clone(),
            backend_name: backend_display(&h.backend.kind),
            model: h.backend.model.clone(),
            simulated: h.backend.simulated.clone(),
            trace_name: h.trace.name.clone(),
            trace_sha256: h.trace.sha256.clone(),
            placement: placement(info),
            complete: info.complete(),
            log_end: match info.end {
                LogEnd::Trailer(_) => "trailer",
                LogEnd::Truncated { .. } => "truncated",
            },
            started_unix_ns: h.started_unix_ns,
            time_scale: h.options.time_scale,
            dilation: info.dilation,
            warnings: w,
            server_identity: h.server_identity.clone(),
            prefix_cache_reset: h.prefix_cache_reset.clone(),
            metrics,
            samples,
            rates,
        });
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
    let (throughput_tables, latency_tables) = build_tables(&reports, opts, &mut warnings);
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

type ColKey = (u64, String); // (key bits for ordering, sha)

fn build_tables(
    runs: &[RunReport],
    opts: &AnalyzeOptions,
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
                |cell_runs| {
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
                },
                warnings,
            ));
        }
        if !lat.is_empty() {
            lt.push(build_table(
                &lat,
                label_model,
                latency_corner(opts.stat, opts.metrics.latency_from),
                |k| format!("QPS={}", fmt_qps(k)),
                |cell_runs| {
                    let mut e2e: Vec<f64> = Vec::new();
                    let mut ptl: Vec<f64> = Vec::new();
                    for r in cell_runs {
                        e2e.extend_from_slice(&r.samples.e2e_s);
                        ptl.extend_from_slice(&r.samples.per_token_s);
                    }
                    let (e, p) = (summarize(&mut e2e), summarize(&mut ptl));
                    Some(LatencyCell {
                        per_token_s: opts.stat.of(&p)?,
                        request_s: opts.stat.of(&e)?,
                        runs: cell_runs.iter().map(|r| r.run.clone()).collect(),
                    })
                },
                warnings,
            ));
        }
    }
    for t in &mut tt {
        throughput_notes(t);
    }
    (tt, lt)
}

fn build_table<C>(
    placed: &[(&RunReport, f64)],
    model: Option<String>,
    corner: String,
    label: impl Fn(f64) -> String,
    cell: impl Fn(&[&RunReport]) -> Option<C>,
    warnings: &mut Vec<String>,
) -> Table<C> {
    // Columns: one per (key, trace); ordered by key then trace name.
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
    let mut notes = Vec::new();
    let mut columns = Vec::new();
    for (ck, k, name) in &col_keys {
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
    // Rows: one per (backend, simulated profile); the label names the speed-ups.
    let mut row_keys: Vec<(usize, String, Option<String>, String)> = Vec::new();
    for (r, _) in placed {
        let profile = r.simulated.as_ref().map(|s| s.profile.clone());
        let same = |o: &&(&RunReport, f64)| {
            o.0.backend == r.backend
                && o.0.simulated.as_ref().map(|s| &s.profile) == profile.as_ref()
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
    let mut rows = Vec::new();
    for (_, backend, profile, lbl) in &row_keys {
        let mut cells = Vec::new();
        for (ck, _, _) in &col_keys {
            let in_cell: Vec<&RunReport> = placed
                .iter()
                .filter(|(r, k)| {
                    &r.backend == backend
                        && r.simulated.as_ref().map(|s| &s.profile) == profile.as_ref()
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
        rows.push(TableRow {
            label: lbl.clone(),
            backend: backend.clone(),
            simulated: profile.is_some(),
            cells,
        });
    }
    if rows.iter().any(|r| r.simulated) {
        notes.push(
            "rows marked (simulated, profile) were measured against llm-infer-bench's simulator, not a real server"
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
