//! CSV: the two tables in the original's shape (`throughput.csv`, `latency.csv`) and one
//! wide row per run with every metric (`runs.csv`, columns named like the JSON fields,
//! nested statistics flattened as `ttft_s_p50`).

use serde_json::Value;

use crate::report::Report;
use crate::report::table::Table;
use crate::tables::{fmt_latency, fmt_throughput};

/// Quotes a CSV field when needed (RFC 4180).
pub fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn line(cells: &[String]) -> String {
    let v: Vec<String> = cells.iter().map(|c| field(c)).collect();
    v.join(",") + "\n"
}

fn tables<C>(ts: &[Table<C>], cell: impl Fn(&Option<C>) -> String) -> String {
    let with_model = ts.iter().any(|t| t.model.is_some());
    let mut s = String::new();
    // Tables of several models share one header when their columns agree; otherwise
    // each table gets its own header line.
    let mut last_header: Option<Vec<String>> = None;
    for t in ts {
        let mut head = Vec::new();
        if with_model {
            head.push("model".to_string());
        }
        head.push(t.corner.clone());
        head.extend(t.columns.iter().map(|c| c.label.clone()));
        if last_header.as_ref() != Some(&head) {
            s.push_str(&line(&head));
            last_header = Some(head);
        }
        for r in &t.rows {
            let mut row = Vec::new();
            if with_model {
                row.push(t.model.clone().unwrap_or_default());
            }
            row.push(r.label.clone());
            row.extend(r.cells.iter().map(&cell));
            s.push_str(&line(&row));
        }
    }
    s
}

pub fn throughput(report: &Report) -> String {
    tables(&report.throughput_tables, |c| {
        c.as_ref().map_or(String::new(), |_| fmt_throughput(c))
    })
}

pub fn latency(report: &Report) -> String {
    tables(&report.latency_tables, |c| {
        c.as_ref().map_or(String::new(), |_| fmt_latency(c))
    })
}

fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}_{k}")
                };
                flatten(&key, v, out);
            }
        }
        Value::Array(a) => {
            let parts: Vec<String> = a
                .iter()
                .map(|x| match x {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.push((prefix.to_string(), parts.join("; ")));
        }
        Value::Null => out.push((prefix.to_string(), String::new())),
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// One row per run, every metric; the columns are the union over runs. The by-turn rows
/// (`ttft_by_turn`) are a table of their own (`ttft_by_turn.csv`), not columns.
pub fn runs(report: &Report) -> String {
    let rows: Vec<Vec<(String, String)>> = report
        .runs
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            flatten(
                "",
                &serde_json::to_value(r).expect("report serializes"),
                &mut out,
            );
            out.retain(|(k, _)| k != "ttft_by_turn");
            out
        })
        .collect();
    let mut cols: Vec<String> = vec!["run".into()];
    for row in &rows {
        for (k, _) in row {
            if !cols.contains(k) {
                cols.push(k.clone());
            }
        }
    }
    let mut s = line(&cols);
    for row in &rows {
        let cells: Vec<String> = cols
            .iter()
            .map(|c| {
                row.iter()
                    .find(|(k, _)| k == c)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            })
            .collect();
        s.push_str(&line(&cells));
    }
    s
}
