//! The server's prefix cache hit rate per run (`server_cached_tokens`): cached / prompt
//! tokens over the measured requests that reported it, in the JSON report and as a runs
//! table column that appears only when some run reported it.

use crate::common;

use analyzer::Format;
use common::*;
use formats::LogRecord;

/// Four requests of 100 prompt tokens: three report 0, 50 and 90 cached tokens (one with
/// the server's own prompt count, 120), one reports nothing; a warmup reports 100.
fn records() -> Vec<LogRecord> {
    let mut out = Vec::new();
    for (k, cached) in [Some(0), Some(50), Some(90), None].into_iter().enumerate() {
        let d = k as u64 * S;
        let mut r = ok(
            k as u64,
            d,
            d,
            &even_events(d, d + S / 2, 4),
            d + S / 2,
            100,
            4,
        );
        r.server_cached_tokens = cached;
        if k == 2 {
            r.server_prompt_tokens = Some(120);
        }
        out.push(r);
    }
    let mut warm = ok(9, 0, 0, &even_events(0, S / 4, 4), S / 4, 100, 4);
    warm.warmup = true;
    warm.server_cached_tokens = Some(100);
    out.push(warm);
    out
}

fn report(records: &[LogRecord]) -> (tempfile::TempDir, analyzer::Report) {
    latency_report("openai", records)
}

#[test]
fn hit_rate_over_the_requests_that_report_it() {
    let (_dir, rep) = report(&records());
    let json: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, Format::Json)).unwrap();
    let p = &json["runs"][0]["prefix_cache"];
    assert_eq!(p["requests"], 3);
    assert_eq!(p["prompt_tokens"], 320);
    assert_eq!(p["cached_tokens"], 140);
    assert!((p["hit_rate"].as_f64().unwrap() - 140.0 / 320.0).abs() < 1e-12);
    let md = analyzer::render(&rep, Format::Markdown);
    let head = md.lines().find(|l| l.starts_with("| run |")).unwrap();
    assert!(head.ends_with("| prefix cache hit % |"), "{head}");
    let row = md.lines().find(|l| l.starts_with("| r |")).unwrap();
    assert!(row.ends_with("| 43.8 |"), "{row}");
}

#[test]
fn no_report_no_field_no_column() {
    let plain: Vec<LogRecord> = records()
        .into_iter()
        .map(|mut r| {
            r.server_cached_tokens = None;
            r
        })
        .collect();
    let (_dir, rep) = report(&plain);
    let json: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, Format::Json)).unwrap();
    assert!(json["runs"][0].get("prefix_cache").is_none());
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(!md.contains("prefix cache"), "{md}");
}
