//! JSON: the whole [`Report`] — options, every run's metrics (field names as in
//! [`RunMetrics`](crate::RunMetrics): `requests`, `ok`, `duration_s`,
//! `throughput_tok_s`, `output_tok_s`, `request_s`, and statistics objects `ttft_s`,
//! `ttfat_s`, `tpot_s`, `itl_s`, `e2e_s`, `per_token_latency_s`, `lateness_s` with
//! `count`, `mean`, `min`, `max`, `p50`, `p90`, `p95`, `p99`, `p99_9`; `reasoning`;
//! `tool_calls` and `first_tool_s`;
//! `sessions` and `ttft_by_turn` for runs with multi-turn sessions), both tables and the
//! warnings.

use crate::report::Report;

pub fn report(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("report serializes");
    s.push('\n');
    s
}
