//! The session tables, for runs whose records carry sessions: one row per run of
//! session totals (Markdown "Sessions"), and one row per run and turn index of
//! latencies (Markdown "TTFT by turn", `ttft_by_turn.csv`). A report without sessions
//! renders nothing here, so its outputs stay what they were before sessions existed.

use crate::metrics::options::LatencyFrom;
use crate::metrics::sessions::{SessionMetrics, TAIL_TURN, TurnRow};
use crate::report::Report;
use crate::report::run::RunReport;
use crate::stats::Stats;
use crate::tables::csv::field;
use crate::tables::fmt_opt;

/// True when some run has sessions: the session tables, CSV and figure exist.
pub fn any(report: &Report) -> bool {
    report.runs.iter().any(|r| r.metrics.sessions.is_some())
}

fn with_sessions(report: &Report) -> impl Iterator<Item = (&RunReport, &SessionMetrics)> {
    report
        .runs
        .iter()
        .filter_map(|r| r.metrics.sessions.as_ref().map(|s| (r, s)))
}

fn with_turns(report: &Report) -> impl Iterator<Item = (&RunReport, &TurnRow)> {
    report
        .runs
        .iter()
        .flat_map(|r| r.metrics.ttft_by_turn.iter().flatten().map(move |t| (r, t)))
}

fn md_table(head: &[String], rows: &[Vec<String>]) -> String {
    let mut s = format!("| {} |\n|", head.join(" | "));
    for _ in head {
        s.push_str(":--|");
    }
    s.push('\n');
    for r in rows {
        s.push_str(&format!("| {} |\n", r.join(" | ")));
    }
    s
}

/// ` (from sent)` after latency headers unless they are from dispatch, as in the runs
/// table.
fn origin(from: LatencyFrom) -> String {
    match from {
        LatencyFrom::Dispatch => String::new(),
        other => format!(" (from {})", other.name()),
    }
}

/// Markdown: session totals per run, then a note on the definitions.
pub fn markdown_sessions(report: &Report) -> String {
    let head: Vec<String> = [
        "run",
        "backend",
        "sessions",
        "complete",
        "turns",
        "turns/session mean",
        "turns/session max",
        "duration mean s",
        "duration p50 s",
        "duration p90 s",
        "duration p99 s",
    ]
    .map(String::from)
    .to_vec();
    let rows: Vec<Vec<String>> = with_sessions(report)
        .map(|(r, s)| {
            let d = &s.duration_s;
            vec![
                r.run.clone(),
                r.row_label(),
                s.count.to_string(),
                s.complete.to_string(),
                s.requests.to_string(),
                fmt_opt(s.turns_per_session.mean, 2),
                s.turns_per_session.max.to_string(),
                fmt_opt(d.mean, 3),
                fmt_opt(d.p50, 3),
                fmt_opt(d.p90, 3),
                fmt_opt(d.p99, 3),
            ]
        })
        .collect();
    let mut s = md_table(&head, &rows);
    s.push_str(
        "\n- complete: every recorded turn `ok`, turns 0..n-1 without a gap; duration: first \
         turn scheduled to last turn's end, complete sessions only\n",
    );
    s
}

/// Markdown: TTFT and E2E by turn index per run (from `--from`), and the cached share
/// when some turn's server reported cached tokens.
pub fn markdown_by_turn(report: &Report) -> String {
    let o = origin(report.options.metrics.latency_from);
    let cached = with_turns(report).any(|(_, t)| t.cached_share.is_some());
    let mut head: Vec<String> = vec!["run".into(), "backend".into(), "turn".into()];
    head.extend(["requests", "ok"].map(String::from));
    for (what, stat) in [
        ("TTFT", "mean"),
        ("TTFT", "p50"),
        ("TTFT", "p90"),
        ("TTFT", "p99"),
    ]
    .into_iter()
    .chain([
        ("E2E", "mean"),
        ("E2E", "p50"),
        ("E2E", "p90"),
        ("E2E", "p99"),
    ]) {
        head.push(format!("{what} {stat} s{o}"));
    }
    if cached {
        head.push("cached %".into());
    }
    let rows: Vec<Vec<String>> = with_turns(report)
        .map(|(r, t)| {
            let mut row = vec![
                r.run.clone(),
                r.row_label(),
                t.label(),
                t.requests.to_string(),
                t.ok.to_string(),
            ];
            row.extend(four(&t.ttft_s).into_iter().chain(four(&t.e2e_s)));
            if cached {
                row.push(fmt_opt(t.cached_share.map(|c| 100.0 * c), 1));
            }
            row
        })
        .collect();
    let mut s = md_table(&head, &rows);
    s.push_str("\n- latencies of `ok` requests");
    if with_turns(report).any(|(_, t)| t.tail) {
        s.push_str(&format!(
            "; turn `{TAIL_TURN}+` pools every turn from {TAIL_TURN} on"
        ));
    }
    s.push('\n');
    s
}

fn four(s: &Stats) -> [String; 4] {
    [s.mean, s.p50, s.p90, s.p99].map(|v| fmt_opt(v, 4))
}

/// Both Markdown blocks with their headings, or nothing without sessions.
pub fn markdown(report: &Report) -> String {
    if !any(report) {
        return String::new();
    }
    format!(
        "## Sessions\n\n{}\n## TTFT by turn\n\n{}",
        markdown_sessions(report),
        markdown_by_turn(report)
    )
}

/// The README's `sessions-table` block: both tables without headings (empty without
/// sessions).
pub fn readme_block(report: &Report) -> String {
    if !any(report) {
        return String::new();
    }
    format!(
        "{}\n{}",
        markdown_sessions(report),
        markdown_by_turn(report)
    )
}

/// `ttft_by_turn.csv`: one row per run and turn row, statistics in seconds from
/// `from` (also a column), full precision; `turn` is `8+` on the tail row.
pub fn csv_by_turn(report: &Report) -> String {
    let from = report.options.metrics.latency_from.name();
    let mut head = vec!["run", "backend", "from", "turn", "requests", "ok"];
    let stats = ["count", "mean", "p50", "p90", "p99"];
    let names: Vec<String> = ["ttft_s", "e2e_s"]
        .iter()
        .flat_map(|m| stats.iter().map(move |s| format!("{m}_{s}")))
        .collect();
    head.extend(names.iter().map(String::as_str));
    head.push("cached_share");
    let mut s = head.join(",") + "\n";
    for (r, t) in with_turns(report) {
        let mut row = vec![
            field(&r.run),
            field(&r.row_label()),
            from.to_string(),
            t.label(),
            t.requests.to_string(),
            t.ok.to_string(),
        ];
        for st in [&t.ttft_s, &t.e2e_s] {
            row.push(st.count.to_string());
            row.extend([st.mean, st.p50, st.p90, st.p99].map(opt));
        }
        row.push(opt(t.cached_share));
        s.push_str(&(row.join(",") + "\n"));
    }
    s
}

fn opt(v: Option<f64>) -> String {
    v.map_or(String::new(), |v| v.to_string())
}
