//! Latencies from the send time (`--from sent`) on a hand-built log: one request that
//! opened a connection (50 ms from dispatch to send), one on a kept-alive connection
//! (10 ms), and one from an older log without `sent_ns`, which falls back to dispatch
//! and is counted and warned about.

use crate::common;

use analyzer::{AnalyzeOptions, Format, LatencyFrom, Stat};
use common::*;
use formats::LogRecord;

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("value present");
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

fn records() -> Vec<LogRecord> {
    let mut r0 = ok(
        0,
        0,
        100 * MS,
        &[(400 * MS, 1), (600 * MS, 1)],
        600 * MS,
        10,
        2,
    );
    r0.connect_start_ns = Some(110 * MS);
    r0.connect_ns = Some(140 * MS);
    r0.sent_ns = Some(150 * MS);
    let mut r1 = ok(1, S, S, &[(1210 * MS, 1), (1410 * MS, 1)], 1410 * MS, 10, 2);
    r1.sent_ns = Some(1010 * MS);
    let r2 = ok(
        2,
        2 * S,
        2 * S,
        &[(2300 * MS, 1), (2500 * MS, 1)],
        2500 * MS,
        10,
        2,
    );
    vec![r0, r1, r2]
}

fn report(from: LatencyFrom) -> analyzer::Report {
    let dir = tempfile::tempdir().unwrap();
    let h = latency_header("tgi", "lat", "aa", 2.0);
    let p = write_log(&dir.path().join("r.msgpack"), &h, &records());
    let runs = analyzer::load_runs(&[p]).unwrap();
    let mut opts = AnalyzeOptions {
        stat: Stat::Mean,
        ..AnalyzeOptions::default()
    };
    opts.metrics.latency_from = from;
    analyzer::report(&runs, &opts).unwrap()
}

#[test]
fn every_origin_is_reported_and_the_send_time_splits_connection_setup_off() {
    let rep = report(LatencyFrom::Dispatch);
    let m = &rep.runs[0].metrics;
    close(m.ttft_s.mean, (0.3 + 0.21 + 0.3) / 3.0);
    close(m.ttft_from_sent_s.mean, (0.25 + 0.2 + 0.3) / 3.0);
    close(m.e2e_from_sent_s.mean, (0.45 + 0.4 + 0.5) / 3.0);
    close(m.per_token_latency_from_sent_s.max, 0.25);
    assert_eq!(m.send_delay_s.count, 2);
    close(m.send_delay_s.max, 0.05);
    close(m.send_delay_s.min, 0.01);
    assert_eq!((m.new_connections, m.sent_missing), (1, 1));
    // Under the default origin, a log without sent_ns is nothing to warn about.
    assert!(!rep.warnings.iter().any(|w| w.contains("sent_ns")));
}

#[test]
fn from_sent_drives_tables_and_labels_and_warns_about_old_records() {
    let rep = report(LatencyFrom::Sent);
    let table = &rep.latency_tables[0];
    let cell = table.rows[0].cells[0].clone().unwrap();
    close(Some(cell.request_s), (0.45 + 0.4 + 0.5) / 3.0);
    close(Some(cell.per_token_s), (0.225 + 0.2 + 0.25) / 3.0);
    assert!(table.corner.contains("from send time"), "{}", table.corner);
    let warning = rep
        .warnings
        .iter()
        .find(|w| w.contains("sent_ns"))
        .expect("a warning about the records without sent_ns");
    assert!(warning.contains("1 of 3 ok requests"), "{warning}");
    let md = analyzer::render(&rep, Format::Markdown);
    assert!(md.contains("Latencies from: sent time"), "{md}");
    assert!(md.contains("| TTFT p50 s (from sent) |"), "{md}");
    // The per-run table's TTFT is the one from the send time: p50 of 0.2, 0.25, 0.3.
    let row = md.lines().find(|l| l.starts_with("| r |")).unwrap();
    assert!(row.contains("| 0.2500 |"), "{row}");
}
