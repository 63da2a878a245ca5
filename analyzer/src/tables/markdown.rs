//! Markdown tables, in the original benchmark's exact shape:
//!
//! ```text
//! | Throughput (token/s) vs. variance in length | max 32 tokens | max 128 tokens |
//! |:--|:--|:--|
//! | TGI | 4937.88 | 3837.65 |
//! ```
//!
//! Notes (pooled runs, split columns, token-count differences, simulated rows) follow a
//! table as a bullet list, so the cells keep the original's shape.

use crate::metrics::options::LatencyFrom;
use crate::metrics::reasoning::ReasoningTotals;
use crate::report::Report;
use crate::report::labels::fmt_qps;
use crate::report::run::{Placement, RunReport};
use crate::report::table::Table;
use crate::tables::{fmt_latency, fmt_opt, fmt_throughput, servers, sessions};

fn table<C>(t: &Table<C>, cell: impl Fn(&Option<C>) -> String) -> String {
    let mut s = String::new();
    if let Some(m) = &t.model {
        s.push_str(&format!("Model: {m}\n\n"));
    }
    s.push_str(&format!("| {} |", t.corner));
    for c in &t.columns {
        s.push_str(&format!(" {} |", c.label));
    }
    s.push_str("\n|:--|");
    for _ in &t.columns {
        s.push_str(":--|");
    }
    s.push('\n');
    for r in &t.rows {
        s.push_str(&format!("| {} |", r.label));
        for c in &r.cells {
            s.push_str(&format!(" {} |", cell(c)));
        }
        s.push('\n');
    }
    if !t.notes.is_empty() {
        s.push('\n');
        for n in &t.notes {
            s.push_str(&format!("- {n}\n"));
        }
    }
    s
}

fn join(parts: Vec<String>) -> String {
    parts.join("\n")
}

/// The throughput table(s) (one per model).
pub fn throughput(report: &Report) -> String {
    join(
        report
            .throughput_tables
            .iter()
            .map(|t| table(t, fmt_throughput))
            .collect(),
    )
}

/// The latency table(s) (one per model).
pub fn latency(report: &Report) -> String {
    join(
        report
            .latency_tables
            .iter()
            .map(|t| table(t, fmt_latency))
            .collect(),
    )
}

/// One row of key metrics per run (the full set is in the JSON and CSV outputs).
pub fn runs(report: &Report) -> String {
    let cols = RunColumns {
        from: report.options.metrics.latency_from,
        // Time to first answer token differs from TTFT only for reasoning models: its
        // columns (and the reasoning tokens) appear when a run streamed reasoning.
        reasoning: report.runs.iter().any(|r| r.metrics.reasoning.requests > 0),
        // Tool-call columns appear when some run's answers made tool calls.
        tools: report
            .runs
            .iter()
            .any(|r| r.metrics.tool_calls.requests > 0),
        // The server's prefix cache hit rate, when a run's server reported cached tokens.
        cached: report.runs.iter().any(|r| r.metrics.prefix_cache.is_some()),
    };
    let head = cols.header();
    let mut s = format!("| {} |\n|", head.join(" | "));
    for _ in &head {
        s.push_str(":--|");
    }
    s.push('\n');
    for r in &report.runs {
        s.push_str(&format!("| {} |\n", cols.cells(r).join(" | ")));
    }
    s
}

/// Which columns the per-run table has: latencies from `from`, the reasoning and the
/// prefix cache columns when some run has them.
struct RunColumns {
    from: LatencyFrom,
    reasoning: bool,
    tools: bool,
    cached: bool,
}

impl RunColumns {
    fn header(&self) -> Vec<String> {
        // Latency columns follow `--from`; their headers say so unless it is dispatch.
        let origin = match self.from {
            LatencyFrom::Dispatch => String::new(),
            other => format!(" (from {})", other.name()),
        };
        let mut head: Vec<String> = [
            "run",
            "backend",
            "trace",
            "load",
            "requests",
            "ok",
            "early stops",
            "duration s",
            "token/s",
            "output token/s",
            "req/s",
        ]
        .map(String::from)
        .to_vec();
        head.extend([format!("TTFT p50 s{origin}"), format!("TTFT p99 s{origin}")]);
        if self.reasoning {
            head.extend([
                format!("TTFAT p50 s{origin}"),
                format!("TTFAT p99 s{origin}"),
                "reasoning tokens".into(),
            ]);
        }
        head.extend(["TPOT p50 s", "TPOT p99 s", "ITL p50 s", "ITL p99 s"].map(String::from));
        head.extend([
            format!("E2E p50 s{origin}"),
            format!("E2E p99 s{origin}"),
            format!("per-token p50 s{origin}"),
        ]);
        head.extend(["lateness p99 s", "goodput req/s"].map(String::from));
        if self.tools {
            head.extend(
                [
                    "tool-call requests",
                    "tool calls valid / all",
                    "first tool token p50 s",
                ]
                .map(String::from),
            );
        }
        if self.cached {
            head.push("prefix cache hit %".into());
        }
        head
    }

    fn cells(&self, r: &RunReport) -> Vec<String> {
        let (m, from) = (&r.metrics, self.from);
        let mut run = r.run.clone();
        if r.log_end == "truncated" {
            run.push_str(" (interrupted)");
        }
        let mut cells = vec![
            run,
            r.row_label(),
            r.trace_name.clone(),
            load_label(&r.placement),
            m.requests.to_string(),
            m.ok.to_string(),
            m.early_stops.to_string(),
            fmt_opt(m.duration_s, 3),
            fmt_opt(m.throughput_tok_s, 2),
            fmt_opt(m.output_tok_s, 2),
            fmt_opt(m.request_s, 3),
            fmt_opt(m.ttft_from(from).p50, 4),
            fmt_opt(m.ttft_from(from).p99, 4),
        ];
        if self.reasoning {
            let ttfat = m.ttfat_from(from);
            let tokens = reasoning_tokens(&m.reasoning);
            cells.extend([fmt_opt(ttfat.p50, 4), fmt_opt(ttfat.p99, 4), tokens]);
        }
        cells.extend([
            fmt_opt(m.tpot_s.p50, 4),
            fmt_opt(m.tpot_s.p99, 4),
            fmt_opt(m.itl_s.p50, 4),
            fmt_opt(m.itl_s.p99, 4),
            fmt_opt(m.e2e_from(from).p50, 4),
            fmt_opt(m.e2e_from(from).p99, 4),
            fmt_opt(m.per_token_latency_from(from).p50, 4),
            fmt_opt(m.lateness_s.p99, 4),
            fmt_opt(m.goodput.as_ref().and_then(|g| g.request_s), 3),
        ]);
        if self.tools {
            let t = &m.tool_calls;
            cells.extend([
                t.requests.to_string(),
                format!("{} / {}", t.valid, t.calls),
                fmt_opt(m.first_tool_s.p50, 4),
            ]);
        }
        if self.cached {
            let rate = m.prefix_cache.as_ref().and_then(|p| p.hit_rate);
            cells.push(fmt_opt(rate.map(|r| 100.0 * r), 1));
        }
        cells
    }
}

/// The run's load column: `burst, max CAP` or `QPS=RATE`.
fn load_label(p: &Placement) -> String {
    match p {
        Placement::Throughput { cap } => format!("burst, max {cap}"),
        Placement::Latency { qps } => format!("QPS={}", fmt_qps(*qps)),
        Placement::None => "-".into(),
    }
}

/// A run's reasoning tokens: the client's count, and the server's when it reported one.
fn reasoning_tokens(r: &ReasoningTotals) -> String {
    if r.requests == 0 && r.server_reported == 0 {
        return "-".into();
    }
    match r.server_reported {
        0 => r.tokens_client.to_string(),
        _ => format!("{} (server {})", r.tokens_client, r.tokens_server),
    }
}

/// Everything: both tables, the per-run table and the warnings.
pub fn full(report: &Report) -> String {
    let mut s = String::new();
    let o = &report.options;
    s.push_str(&format!(
        "Output tokens counted by: {}. Latencies from: {} time. Percentiles: linear interpolation.\n\n",
        o.metrics.output_tokens.name(),
        o.metrics.latency_from.name()
    ));
    if !report.throughput_tables.is_empty() {
        s.push_str("## Throughput\n\n");
        s.push_str(&throughput(report));
        s.push('\n');
    }
    if !report.latency_tables.is_empty() {
        s.push_str("## Latency\n\n");
        s.push_str(&latency(report));
        s.push('\n');
    }
    s.push_str("## Runs\n\n");
    s.push_str(&runs(report));
    // Sessions and TTFT by turn: only when some run has sessions.
    let sessions = sessions::markdown(report);
    if !sessions.is_empty() {
        s.push('\n');
        s.push_str(&sessions);
    }
    // Which server and cache state each run measured: when the logs say.
    let servers = servers::markdown(report);
    if !servers.is_empty() {
        s.push('\n');
        s.push_str(&servers);
    }
    if !report.warnings.is_empty() {
        s.push_str("\n## Warnings\n\n");
        for w in &report.warnings {
            s.push_str(&format!("- {w}\n"));
        }
    }
    s
}
