//! Figures (decoded and checked), exports (read back), README blocks, interrupted,
//! empty and corrupt logs.

use crate::common;

use std::path::Path;

use analyzer::{AnalyzeOptions, ExportFormat};
use common::*;
use polars::prelude::*;

fn latency_suite(d: &Path) {
    for (backend, qps, l) in [("tgi", 2.0, 1.0), ("vllm", 2.0, 1.5), ("tgi", 4.0, 1.2)] {
        let h = latency_header(backend, &format!("lat-{qps}"), &format!("q{qps}"), qps);
        write_log(
            &d.join(format!("{backend}-{qps}.msgpack")),
            &h,
            &latency_records(qps, l),
        );
    }
    throughput_run(d, "tgi-32.msgpack", "tgi", "thr", "s32", 32, 1.0);
    throughput_run(d, "vllm-32.msgpack", "vllm", "thr", "s32", 32, 0.5);
}

fn check_png(path: &Path) {
    let img = image::open(path).unwrap().to_rgb8();
    assert_eq!(img.dimensions(), (700, 450), "{}", path.display());
    let non_white = img.pixels().filter(|p| p.0 != [255, 255, 255]).count();
    let total = (700 * 450) as usize;
    assert!(
        non_white > total / 100 && non_white < total * 9 / 10,
        "{}: {non_white} non-white pixels",
        path.display()
    );
    // Some coloured (series) pixels, not only black text and grey grid.
    let coloured = img
        .pixels()
        .filter(|p| {
            let [r, g, b] = p.0;
            r.max(g).max(b) - r.min(g).min(b) > 60
        })
        .count();
    assert!(
        coloured > 200,
        "{}: {coloured} coloured pixels",
        path.display()
    );
}

fn svg(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap();
    assert!(s.starts_with("<?xml"), "{}", path.display());
    assert!(s.trim_end().ends_with("</svg>"), "{}", path.display());
    assert!(s.contains("width=\"700\" height=\"450\""));
    // Text is drawn as outlines: no font needed to view it.
    assert!(!s.contains("<text"), "{}", path.display());
    assert!(s.contains("<path data-text="), "{}", path.display());
    // Every element is closed: each `<` starts a self-closed element, the XML
    // declaration, or one half of an open/close pair (only `<svg>` here).
    let lt = s.matches('<').count();
    let accounted = s.matches("/>").count() + 2 * s.matches("</").count() + s.matches("<?").count();
    assert_eq!(lt, accounted, "{}: unbalanced tags", path.display());
    assert_eq!(s.matches("</").count(), 1);
    s
}

#[test]
fn figures_are_written_decodable_and_not_blank() {
    let dir = tempfile::tempdir().unwrap();
    latency_suite(dir.path());
    let runs = analyzer::load_runs(&[dir.path()]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    // ANALYZER_KEEP_FIGURES=DIR keeps the figures for a look.
    let out = std::env::var_os("ANALYZER_KEEP_FIGURES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("figs"));
    let files = analyzer::write_figures(&rep, &runs, &out, None).unwrap();
    let names: Vec<String> = files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "throughput.png",
        "throughput.svg",
        "latency-cdf-qps-2.png",
        "latency-cdf-qps-4.svg",
        "ttft-cdf-qps-2.png",
        "itl-cdf-qps-2.svg",
        "timeline-tgi-4.png",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    for f in &files {
        if f.extension().unwrap() == "png" {
            check_png(f);
        } else {
            svg(f);
        }
    }
    // Two backends at QPS=2: two curves, each also drawn in the legend.
    let s = svg(&out.join("latency-cdf-qps-2.svg"));
    assert_eq!(
        s.matches("<polyline fill=\"none\" stroke=\"#0072b2\" stroke-width=\"2\"")
            .count(),
        2
    );
    assert_eq!(
        s.matches("<polyline fill=\"none\" stroke=\"#e69f00\" stroke-width=\"2\"")
            .count(),
        2
    );
    assert!(s.contains("data-text=\"request latency, from dispatch (s)\""));
    assert!(s.contains("data-text=\"vLLM\""));
    // Bars: one filled rect per (backend, cap) cell.
    let s = svg(&out.join("throughput.svg"));
    assert!(s.contains("data-text=\"max 32 tokens\""));
    assert!(s.contains("data-text=\"throughput (tokens/s)\""));
}

#[test]
fn export_writes_requests_and_events_tables() {
    let dir = tempfile::tempdir().unwrap();
    latency_suite(dir.path());
    let runs = analyzer::load_runs(&[dir.path()]).unwrap();
    let n_req = runs.requests.height();
    let n_ev = runs.events.height();
    for format in [ExportFormat::Parquet, ExportFormat::Csv] {
        let out = dir.path().join(format!("export-{format:?}"));
        let files = analyzer::export(&runs, &out, format).unwrap();
        assert_eq!(files.len(), 3);
        let read = |name: &str| -> DataFrame {
            let p = out.join(name);
            match format {
                ExportFormat::Parquet => ParquetReader::new(std::fs::File::open(&p).unwrap())
                    .finish()
                    .unwrap(),
                ExportFormat::Csv => CsvReadOptions::default()
                    .with_has_header(true)
                    .try_into_reader_with_file_path(Some(p))
                    .unwrap()
                    .finish()
                    .unwrap(),
            }
        };
        let ext = if format == ExportFormat::Parquet {
            "parquet"
        } else {
            "csv"
        };
        let req = read(&format!("requests.{ext}"));
        let ev = read(&format!("events.{ext}"));
        let rn = read(&format!("runs.{ext}"));
        assert_eq!(req.height(), n_req);
        assert_eq!(ev.height(), n_ev);
        assert_eq!(rn.height(), 5);
        for c in [
            "run",
            "run_id",
            "request_id",
            "e2e_s",
            "ttft_s",
            "early_stop",
            "outcome",
        ] {
            assert!(req.column(c).is_ok(), "requests.{ext} lacks {c}");
        }
        for c in ["run", "request_id", "seq", "t_ns", "tokens"] {
            assert!(ev.column(c).is_ok(), "events.{ext} lacks {c}");
        }
        let total: f64 = ev
            .column("tokens")
            .unwrap()
            .as_materialized_series()
            .sum()
            .unwrap();
        assert_eq!(total as usize, 3 * 3 * 10 + 2 * 4 * 32);
    }
}

#[test]
fn readme_blocks_are_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    latency_suite(dir.path());
    let runs = analyzer::load_runs(&[dir.path()]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let readme = dir.path().join("README.md");
    let before = "# Title\n\nintro\n\n<!-- llmib:throughput-table:begin -->\nstale\n<!-- llmib:throughput-table:end -->\n\nmiddle\n\n<!-- llmib:latency-table:begin -->\n<!-- llmib:latency-table:end -->\n\n<!-- llmib:figures:begin -->\n<!-- llmib:figures:end -->\nend\n";
    std::fs::write(&readme, before).unwrap();
    let done = analyzer::update_readme(&readme, &rep, &["figures/throughput.png".into()]).unwrap();
    assert_eq!(done, ["throughput-table", "latency-table", "figures"]);
    let after = std::fs::read_to_string(&readme).unwrap();
    assert!(!after.contains("stale"));
    assert!(after.starts_with(
        "# Title\n\nintro\n\n<!-- llmib:throughput-table:begin -->\n| Throughput (token/s)"
    ));
    assert!(after.contains("| TGI | 132.00 |"));
    assert!(after.contains("\nmiddle\n"));
    assert!(after.contains("| QPS=2 | QPS=4 |"));
    assert!(after.contains("<img src=\"figures/throughput.png\" width=700>"));
    assert!(after.ends_with("<!-- llmib:figures:end -->\nend\n"));
    // Idempotent.
    analyzer::update_readme(&readme, &rep, &["figures/throughput.png".into()]).unwrap();
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), after);
    // No markers: an error, file untouched.
    std::fs::write(&readme, "plain\n").unwrap();
    assert!(analyzer::update_readme(&readme, &rep, &[]).is_err());
    assert_eq!(std::fs::read_to_string(&readme).unwrap(), "plain\n");
}

#[test]
fn interrupted_log_is_analysed_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let h = latency_header("tgi", "lat", "q", 2.0);
    let p = write_truncated(
        &dir.path().join("cut.msgpack"),
        &h,
        &latency_records(2.0, 1.0),
    );
    let runs = analyzer::load_runs(&[&p]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    assert_eq!(rep.runs[0].metrics.ok, 3);
    assert_eq!(rep.runs[0].log_end, "truncated");
    assert!(!rep.runs[0].complete);
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("no trailer (interrupted run)")),
        "{:?}",
        rep.warnings
    );
}

#[test]
fn empty_and_corrupt_logs_are_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.msgpack");
    std::fs::write(&empty, b"").unwrap();
    let e = analyzer::load_runs(&[&empty]).unwrap_err().to_string();
    assert!(
        e.contains("empty.msgpack") && e.contains("empty file"),
        "{e}"
    );
    assert!(!e.contains('\n'));

    let h = latency_header("tgi", "lat", "q", 2.0);
    let good = write_log(
        &dir.path().join("c.msgpack"),
        &h,
        &latency_records(2.0, 1.0),
    );
    let mut bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    bytes[n / 2] ^= 0x5a; // inside a record: the trailer's checksum no longer matches
    std::fs::write(&good, &bytes).unwrap();
    let e = analyzer::load_runs(&[&good]).unwrap_err().to_string();
    assert!(e.contains("c.msgpack"), "{e}");
    assert!(!e.contains('\n'));

    // A header-only log has nothing to analyse.
    let none = write_log(&dir.path().join("none.msgpack"), &h, &[]);
    let e = analyzer::load_runs(&[&none]).unwrap_err().to_string();
    assert!(e.contains("no request records"), "{e}");
}
