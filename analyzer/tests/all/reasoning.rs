//! Reasoning models on a hand-built log: time to first answer token (TTFAT) beside TTFT,
//! reasoning tokens (client and server counts), requests whose answer never came, the
//! TTFAT column of the per-run table (only when a run streamed reasoning), the JSON keys
//! and the export's columns.

use crate::common;

use analyzer::{ExportFormat, Format};
use common::*;
use formats::LogRecord;

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("value present");
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Request k (k = 0, 1) dispatched at k s: reasoning events from 100 ms, the answer
/// from (k + 1) * 500 ms; request 2 reasoned until its length limit (no answer);
/// request 3 failed.
fn records() -> Vec<LogRecord> {
    let mut out = Vec::new();
    for k in 0..2u64 {
        let d = k * S;
        let answer = d + (k + 1) * 500 * MS;
        let mut r = ok(
            k,
            d,
            d,
            &[
                (d + 100 * MS, 3),
                (d + 200 * MS, 3),
                (answer, 2),
                (answer + 50 * MS, 2),
            ],
            answer + 50 * MS,
            10,
            10,
        );
        r.first_reasoning_ns = Some(d + 100 * MS);
        r.first_answer_ns = Some(answer);
        r.reasoning_tokens = Some(6);
        r.server_reasoning_tokens = (k == 0).then_some(7);
        out.push(r);
    }
    let mut cut = ok(
        2,
        2 * S,
        2 * S,
        &even_events(2 * S, 3 * S, 10),
        3 * S,
        10,
        10,
    );
    cut.first_reasoning_ns = Some(2 * S + 100 * MS);
    cut.reasoning_tokens = Some(10);
    out.push(cut);
    out.push(failed(3, 3 * S, 3 * S, 3 * S + MS, 503));
    out
}

fn report(records: &[LogRecord]) -> (tempfile::TempDir, analyzer::Report) {
    latency_report("openai-chat", records)
}

#[test]
fn ttfat_and_reasoning_tokens() {
    let (_dir, rep) = report(&records());
    let m = &rep.runs[0].metrics;
    // TTFT: the first reasoning event of each ok request (0.1 s each).
    assert_eq!(m.ttft_s.count, 3);
    close(m.ttft_s.max, 0.1);
    // TTFAT: 0.5 s and 1.0 s; the request without an answer has none.
    assert_eq!(m.ttfat_s.count, 2);
    close(m.ttfat_s.mean, 0.75);
    close(m.ttfat_s.p50, 0.75);
    close(m.ttfat_from_sent_s.max, 1.0);
    let r = &m.reasoning;
    assert_eq!((r.requests, r.without_answer), (3, 1));
    assert_eq!(
        (r.tokens_client, r.tokens_server, r.server_reported),
        (22, 7, 1)
    );
    let w = rep
        .warnings
        .iter()
        .find(|w| w.contains("before any answer text"))
        .expect("a warning about the answerless request");
    assert!(w.contains("1 of 3 reasoning requests"), "{w}");
}

#[test]
fn json_has_ttft_and_ttfat_with_the_same_shape() {
    let (_dir, rep) = report(&records());
    let json: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, Format::Json)).unwrap();
    let run = &json["runs"][0];
    for key in ["ttft_s", "ttfat_s"] {
        for stat in ["count", "mean", "p50", "p90", "p99"] {
            assert!(run[key].get(stat).is_some(), "{key}.{stat} missing: {run}");
        }
    }
    assert_eq!(run["ttfat_s"]["count"], 2);
    assert_eq!(run["reasoning"]["tokens_client"], 22);
}

#[test]
fn the_runs_table_shows_ttfat_only_with_reasoning() {
    let (_dir, rep) = report(&records());
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(
        md.contains("| TTFT p99 s | TTFAT p50 s | TTFAT p99 s | reasoning tokens | TPOT p50 s |"),
        "{md}"
    );
    let row = md.lines().find(|l| l.starts_with("| r |")).unwrap();
    assert!(row.contains("| 0.7500 | 0.9950 | 22 (server 7) |"), "{row}");

    // A log without reasoning (older, or another dialect): the table keeps its shape.
    let plain: Vec<LogRecord> = latency_records(1.0, 0.5);
    let (_dir, rep) = report(&plain);
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(!md.contains("TTFAT"), "{md}");
    assert_eq!(rep.runs[0].metrics.ttfat_s.count, 0);
    assert_eq!(rep.runs[0].metrics.reasoning.requests, 0);
}

#[test]
fn export_carries_the_reasoning_fields_and_ttfat() {
    let dir = tempfile::tempdir().unwrap();
    let h = latency_header("openai-chat", "lat", "aa", 1.0);
    let p = write_log(&dir.path().join("r.msgpack"), &h, &records());
    let runs = analyzer::load_runs(&[p]).unwrap();
    let out = dir.path().join("x");
    analyzer::export(&runs, &out, ExportFormat::Csv).unwrap();
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let head: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    for col in [
        "first_reasoning_ns",
        "first_answer_ns",
        "reasoning_tokens",
        "server_reasoning_tokens",
        "ttfat_s",
    ] {
        assert!(head.contains(&col), "{col} missing: {head:?}");
    }
    let at = head.iter().position(|c| *c == "ttfat_s").unwrap();
    let second: Vec<&str> = csv.lines().nth(2).unwrap().split(',').collect();
    assert_eq!(second[at].parse::<f64>().unwrap(), 1.0);
}
