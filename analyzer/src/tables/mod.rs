//! Rendering a [`Report`](crate::Report) as text: Markdown (the README's tables), CSV
//! (the same shapes, plus one wide row of metrics per run) and JSON (everything).

pub mod csv;
pub mod json;
pub mod markdown;
pub mod servers;
pub mod sessions;

use crate::report::table::{LatencyCell, ThroughputCell};

/// Output formats of `llmib analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Csv,
    Json,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "md" | "markdown" => Format::Markdown,
            "csv" => Format::Csv,
            "json" => Format::Json,
            _ => return None,
        })
    }
}

/// A throughput cell as the original printed it: tokens/s, two decimals.
pub fn fmt_throughput(c: &Option<ThroughputCell>) -> String {
    match c {
        Some(c) => format!("{:.2}", c.tok_s),
        None => "-".into(),
    }
}

/// A latency cell as the original printed it: `per-token (request)`, seconds, 4 decimals.
pub fn fmt_latency(c: &Option<LatencyCell>) -> String {
    match c {
        Some(c) => format!("{:.4} ({:.4})", c.per_token_s, c.request_s),
        None => "-".into(),
    }
}

pub(crate) fn fmt_opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(v) => format!("{v:.decimals$}"),
        None => "-".into(),
    }
}
