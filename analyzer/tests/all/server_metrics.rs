//! Runs replayed with `--server-metrics`: the sidecar is read with its log (never as a
//! log), drawn under the timeline and exported; a missing or stale sidecar is a warning.

use crate::common;

use std::path::Path;

use analyzer::{AnalyzeOptions, ExportFormat};
use common::{MS, S, even_events, header, ok, write_log};
use formats::{
    LogHeader, MetricSample, ServerMetricsHeader, ServerMetricsRef, ServerMetricsWriter,
    sidecar_path,
};

fn scraped_header() -> LogHeader {
    let mut h = header("vllm", "t", "abc", None);
    h.options.server_metrics = Some(ServerMetricsRef {
        url: "http://127.0.0.1:1/metrics".into(),
        interval_ns: 500 * MS,
    });
    h
}

/// A run of two requests over 2 s, and its sidecar of 4 samples (one failed).
fn write_run(dir: &Path, started_unix_ns: u64) -> std::path::PathBuf {
    let h = scraped_header();
    let records = [
        ok(0, 0, 0, &even_events(100 * MS, S, 10), S, 100, 10),
        ok(1, 0, 0, &even_events(200 * MS, 2 * S, 10), 2 * S, 100, 10),
    ];
    let log = write_log(&dir.join("run.llmib-log"), &h, &records);
    let sh = ServerMetricsHeader::new(started_unix_ns, "http://127.0.0.1:1/metrics", 500 * MS);
    let mut w = ServerMetricsWriter::create(sidecar_path(&log), &sh).unwrap();
    for (k, running) in [(0u64, 2.0), (1, 2.0), (2, 1.0)] {
        w.write(&MetricSample {
            start_ns: k * 500 * MS,
            end_ns: k * 500 * MS + 2 * MS,
            running: Some(running),
            waiting: Some(0.0),
            kv_usage: Some(running / 10.0),
            series: [(
                "vllm:num_requests_running{model_name=\"m\"}".to_string(),
                running,
            )]
            .into(),
            ..Default::default()
        })
        .unwrap();
    }
    w.write(&MetricSample {
        start_ns: 1500 * MS,
        end_ns: 1505 * MS,
        error: Some("HTTP 503".into()),
        ..Default::default()
    })
    .unwrap();
    log
}

#[test]
fn samples_are_drawn_and_exported() {
    let dir = tempfile::tempdir().unwrap();
    let h = scraped_header();
    write_run(dir.path(), h.started_unix_ns);
    // The directory holds the log and its sidecar: one run, no "not a run log" warning.
    let runs = analyzer::load_runs(&[dir.path()]).unwrap();
    assert_eq!(runs.runs.len(), 1);
    assert!(runs.warnings.is_empty(), "{:?}", runs.warnings);

    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let figs = dir.path().join("figs");
    let files = analyzer::write_figures(&rep, &runs, &figs, None).unwrap();
    let svg = files
        .iter()
        .find(|f| f.to_str().unwrap().ends_with(".svg") && f.to_str().unwrap().contains("timeline"))
        .unwrap();
    let text = std::fs::read_to_string(svg).unwrap();
    assert!(text.contains("KV cache used (%)"), "no server panel");
    assert!(text.contains("server: requests"));

    let out = dir.path().join("export");
    let written = analyzer::export(&runs, &out, ExportFormat::Csv).unwrap();
    assert!(written.contains(&out.join("server_metrics.csv")));
    let csv = std::fs::read_to_string(out.join("server_metrics.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "run,run_id,start_ns,end_ns,t_s,running,waiting,kv_usage,error"
    );
    assert_eq!(lines.len(), 5);
    assert_eq!(lines[1], "0,run,0,2000000,0.001,2.0,0.0,0.2,");
    assert!(lines[4].ends_with(",,,,HTTP 503"), "{}", lines[4]);
    let series = std::fs::read_to_string(out.join("server_series.csv")).unwrap();
    assert_eq!(series.lines().count(), 4);
    assert!(series.contains("\"vllm:num_requests_running{model_name=\"\"m\"\"}\",1.0"));
}

#[test]
fn a_stale_or_missing_sidecar_is_a_warning_and_nothing_is_drawn() {
    let dir = tempfile::tempdir().unwrap();
    let log = write_run(dir.path(), 42);
    let runs = analyzer::load_runs(&[&log]).unwrap();
    assert_eq!(runs.warnings.len(), 1, "{:?}", runs.warnings);
    assert!(runs.warnings[0].contains("belongs to another run"));
    let out = dir.path().join("export");
    let written = analyzer::export(&runs, &out, ExportFormat::Csv).unwrap();
    assert_eq!(written.len(), 3, "{written:?}");

    std::fs::remove_file(sidecar_path(&log)).unwrap();
    let runs = analyzer::load_runs(&[&log]).unwrap();
    assert!(
        runs.warnings[0].contains("unreadable"),
        "{:?}",
        runs.warnings
    );
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let files = analyzer::write_figures(&rep, &runs, &dir.path().join("f"), None).unwrap();
    let svg = files
        .iter()
        .find(|f| f.to_str().unwrap().ends_with(".svg"))
        .unwrap();
    let timeline = files
        .iter()
        .find(|f| f.to_str().unwrap().contains("timeline") && f.to_str().unwrap().ends_with(".svg"))
        .unwrap_or(svg);
    assert!(
        !std::fs::read_to_string(timeline)
            .unwrap()
            .contains("KV cache used")
    );
}

#[test]
fn runs_not_scraped_export_no_server_tables() {
    let dir = tempfile::tempdir().unwrap();
    let h = header("vllm", "t", "abc", None);
    let log = write_log(
        &dir.path().join("plain.llmib-log"),
        &h,
        &[ok(0, 0, 0, &even_events(100 * MS, S, 10), S, 100, 10)],
    );
    let runs = analyzer::load_runs(&[&log]).unwrap();
    assert!(runs.warnings.is_empty());
    let written = analyzer::export(&runs, &dir.path().join("e"), ExportFormat::Csv).unwrap();
    assert_eq!(written.len(), 3);
}
