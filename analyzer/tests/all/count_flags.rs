//! Records whose count the client inferred rather than read (`count_flags`): counted per
//! run and per flag in the JSON report (measured requests only), one warning line per
//! flag in the text report, and a `count_flags` column in the export.

use crate::common;

use analyzer::{AnalyzeOptions, ExportFormat, Format};
use common::*;
use formats::LogRecord;

/// LightLLM-like run: requests 0..3 lost events (counted by contract), request 3 has
/// two flags, request 4 none, and a warmup request with a flag (left out of the counts).
fn records() -> Vec<LogRecord> {
    let mut out = Vec::new();
    for k in 0..5u64 {
        let d = k * S;
        let mut r = ok(k, d, d, &even_events(d, d + S / 2, 4), d + S / 2, 10, 4);
        if k < 4 {
            r.count_flags.push("events_lost".into());
        }
        if k == 3 {
            r.count_flags.push("capped_at_max_model_len".into());
        }
        out.push(r);
    }
    let mut warm = ok(9, 0, 0, &even_events(0, S / 4, 4), S / 4, 10, 4);
    warm.warmup = true;
    warm.count_flags.push("prompt_only".into());
    out.push(warm);
    out
}

fn load(records: &[LogRecord]) -> (tempfile::TempDir, analyzer::Runs) {
    load_latency_run("lightllm", records)
}

#[test]
fn flags_are_counted_per_run_and_warned() {
    let (_dir, runs) = load(&records());
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let json: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, Format::Json)).unwrap();
    assert_eq!(
        json["runs"][0]["count_flags"],
        serde_json::json!({"events_lost": 4, "capped_at_max_model_len": 1}),
    );
    let md = analyzer::render(&rep, Format::Markdown);
    let lost = md
        .lines()
        .find(|l| l.contains("counted by contract after lost events"))
        .unwrap_or_else(|| panic!("no events_lost warning: {md}"));
    assert!(lost.contains("run r: 4 records"), "{lost}");
    assert!(
        md.contains("run r: 1 records with an assumed count capped at max_model_len"),
        "{md}"
    );
    // The warmup record's flag is not measured.
    assert!(!md.contains("prompt alone"), "{md}");

    let mut opts = AnalyzeOptions::default();
    opts.metrics.include_warmup = true;
    let rep = analyzer::report(&runs, &opts).unwrap();
    assert_eq!(rep.runs[0].metrics.count_flags.get("prompt_only"), Some(&1));
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.starts_with("run r: 1 records answered with the prompt alone")),
        "{:?}",
        rep.warnings
    );
}

#[test]
fn no_flags_no_warning_and_an_empty_map() {
    let plain: Vec<LogRecord> = records()
        .into_iter()
        .map(|mut r| {
            r.count_flags.clear();
            r
        })
        .collect();
    let (_dir, runs) = load(&plain);
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    assert!(rep.runs[0].metrics.count_flags.is_empty());
    assert!(
        !rep.warnings.iter().any(|w| w.contains("records")),
        "{:?}",
        rep.warnings
    );
    let json: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, Format::Json)).unwrap();
    assert_eq!(json["runs"][0]["count_flags"], serde_json::json!({}));
}

#[test]
fn export_has_a_count_flags_column() {
    let (dir, runs) = load(&records());
    let out = dir.path().join("x");
    analyzer::export(&runs, &out, ExportFormat::Csv).unwrap();
    let csv = std::fs::read_to_string(out.join("requests.csv")).unwrap();
    let mut lines = csv.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let at = head
        .iter()
        .position(|c| *c == "count_flags")
        .expect("column");
    let rows: Vec<&str> = lines.collect();
    // Request 3: both flags in one quoted cell; request 4: empty.
    assert!(
        rows[3].contains("\"events_lost,capped_at_max_model_len\""),
        "{}",
        rows[3]
    );
    assert_eq!(rows[4].split(',').nth(at), Some(""), "{}", rows[4]);
    assert_eq!(
        rows[0].split(',').nth(at),
        Some("events_lost"),
        "{}",
        rows[0]
    );
}
