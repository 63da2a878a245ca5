//! Tool calls on a hand-built log: requests with calls counted apart, valid and invalid
//! calls, argument tokens, time to first argument token, and the per-run table's columns
//! (only when some run's answers made calls).

use crate::common;

use analyzer::Format;
use common::*;
use formats::LogRecord;

/// Request k dispatched at k s answers with one call whose first argument token comes
/// after (k + 1) * 100 ms; request 1's arguments do not parse; request 2 makes two valid
/// calls; request 3 answers with text only; request 4 failed.
fn records() -> Vec<LogRecord> {
    let mut out = Vec::new();
    for k in 0..4u64 {
        let d = k * S;
        let first = d + (k + 1) * 100 * MS;
        let mut r = ok(
            k,
            d,
            d,
            &[(first, 4), (first + 50 * MS, 4)],
            first + 50 * MS,
            10,
            8,
        );
        if k < 3 {
            let calls = if k == 2 { 2 } else { 1 };
            r.tool_calls = Some(calls);
            r.tool_calls_valid = Some(if k == 1 { 0 } else { calls });
            r.first_tool_ns = Some(first);
            r.tool_tokens = Some(8);
        }
        out.push(r);
    }
    out.push(failed(4, 4 * S, 4 * S, 4 * S + MS, 503));
    out
}

fn report(records: &[LogRecord]) -> (tempfile::TempDir, analyzer::Report) {
    latency_report("openai-chat", records)
}

#[test]
fn tool_calls_are_counted_validated_and_timed() {
    let (_dir, rep) = report(&records());
    let m = &rep.runs[0].metrics;
    let t = &m.tool_calls;
    assert_eq!(
        (t.requests, t.calls, t.valid, t.invalid, t.tokens),
        (3, 4, 3, 1, 24)
    );
    // First argument tokens at 0.1, 0.2, 0.3 s after dispatch.
    assert_eq!(m.first_tool_s.count, 3);
    let p50 = m.first_tool_s.p50.unwrap();
    assert!((p50 - 0.2).abs() < 1e-9, "{p50}");
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(
        md.contains("| tool-call requests | tool calls valid / all | first tool token p50 s |"),
        "{md}"
    );
    assert!(md.contains("| 3 | 3 / 4 | 0.2000 |"), "{md}");
    let json = analyzer::render(&rep, Format::Json);
    assert!(json.contains("\"tool_calls\"") && json.contains("\"first_tool_s\""));
}

#[test]
fn runs_without_tool_calls_have_no_tool_columns() {
    let mut plain = records();
    for r in &mut plain {
        r.tool_calls = None;
        r.tool_calls_valid = None;
        r.first_tool_ns = None;
        r.tool_tokens = None;
    }
    let (_dir, rep) = report(&plain);
    assert_eq!(rep.runs[0].metrics.tool_calls.requests, 0);
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(!md.contains("tool-call requests"), "{md}");
}
