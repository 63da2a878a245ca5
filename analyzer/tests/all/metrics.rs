//! Every metric of a hand-built run, against answers worked out by hand.

use crate::common;

use analyzer::{AnalyzeOptions, LatencyFrom, Slo, Stat, TokenSource};
use common::*;
use formats::LogRecord;

fn close(a: Option<f64>, b: f64) {
    let a = a.expect("value present");
    assert!((a - b).abs() < 1e-9, "{a} != {b}");
}

/// Warmup r0; r1 ok with 3 token events (and one empty); r2 ok but stopped early; r3 HTTP 503; r4 not sent.
fn records() -> Vec<LogRecord> {
    let mut r0 = ok(0, 0, 0, &[(500 * MS, 1)], 500 * MS, 5, 1);
    r0.warmup = true;
    let r1 = ok(
        1,
        S,
        1100 * MS,
        // A role-only chunk at 1.2 s carries no token: not the first token, no gap.
        &[
            (1200 * MS, 0),
            (1300 * MS, 1),
            (1400 * MS, 1),
            (1600 * MS, 2),
        ],
        1600 * MS,
        10,
        4,
    );
    let mut r2 = ok(2, 2 * S, 2 * S, &[(2500 * MS, 1), (3 * S, 1)], 3 * S, 20, 4);
    r2.server_output_tokens = Some(2);
    r2.finish_reason = Some("eos_token".into());
    let r3 = failed(3, 3 * S, 3200 * MS, 3300 * MS, 503);
    let r4 = LogRecord::not_sent(4, 4 * S, 10, 4, false);
    vec![r0, r1, r2, r3, r4]
}

fn run(opts: &AnalyzeOptions) -> analyzer::Report {
    let dir = tempfile::tempdir().unwrap();
    let h = latency_header("tgi", "lat", "aa", 2.0);
    let p = write_log(&dir.path().join("r.msgpack"), &h, &records());
    let runs = analyzer::load_runs(&[p]).unwrap();
    assert_eq!(runs.requests.height(), 5);
    assert_eq!(runs.events.height(), 7);
    analyzer::report(&runs, opts).unwrap()
}

#[test]
fn every_metric_has_its_hand_computed_value() {
    let mut opts = AnalyzeOptions::default();
    opts.metrics.slo = Some(Slo::parse("ttft=0.3").unwrap());
    let rep = run(&opts);
    let m = &rep.runs[0].metrics;
    assert_eq!(m.requests, 4);
    assert_eq!(m.warmup_excluded, 1);
    assert_eq!(m.ok, 2);
    assert_eq!(m.outcomes["ok"], 2);
    assert_eq!(m.outcomes["http_error"], 1);
    assert_eq!(m.outcomes["not_sent"], 1);
    assert_eq!(m.early_stops, 1);
    // First dispatch 1.1 s (r1), last completion 3.3 s (r3, failed but ended).
    close(m.duration_s, 2.2);
    assert_eq!(m.tokens.prompt, 30);
    assert_eq!(m.tokens.output_client, 6);
    assert_eq!(m.tokens.output_requested, 8);
    assert_eq!(m.tokens.output_server, 2);
    assert_eq!(m.tokens.server_reported, 1);
    close(m.throughput_tok_s, 36.0 / 2.2);
    close(m.throughput_requested_tok_s, 38.0 / 2.2);
    close(m.output_tok_s, 6.0 / 2.2);
    close(m.request_s, 2.0 / 2.2);
    // TTFT from dispatch: r1 0.2, r2 0.5; from scheduled: 0.3, 0.5.
    assert_eq!(m.ttft_s.count, 2);
    close(m.ttft_s.mean, 0.35);
    close(m.ttft_s.p50, 0.35);
    close(m.ttft_s.p90, 0.2 + 0.9 * 0.3);
    close(m.ttft_s.min, 0.2);
    close(m.ttft_s.max, 0.5);
    close(m.ttft_from_scheduled_s.p50, 0.4);
    // TPOT: r1 (1.6 - 1.3) / 3 = 0.1, r2 (3.0 - 2.5) / 1 = 0.5.
    close(m.tpot_s.mean, 0.3);
    close(m.tpot_s.min, 0.1);
    // ITL gaps: 0.1, 0.2 (r1), 0.5 (r2); per token: 0.1, 0.2/2, 0.5.
    assert_eq!(m.itl_s.count, 3);
    close(m.itl_s.p50, 0.2);
    close(m.itl_s.mean, 0.8 / 3.0);
    close(m.itl_s.p99, 0.2 + 0.98 * 0.3);
    close(m.itl_per_token_s.p50, 0.1);
    close(m.itl_per_token_s.max, 0.5);
    // E2E: 0.5 and 1.0 from dispatch; 0.6 and 1.0 from scheduled.
    close(m.e2e_s.p50, 0.75);
    close(m.e2e_s.p99_9, 0.5 + 0.999 * 0.5);
    close(m.e2e_from_scheduled_s.min, 0.6);
    // Per-token latency: 0.5 / 4, 1.0 / 2.
    close(m.per_token_latency_s.min, 0.125);
    close(m.per_token_latency_s.max, 0.5);
    close(m.per_token_latency_from_scheduled_s.min, 0.15);
    // Lateness: r1 0.1, r2 0, r3 0.2 (r4 was never sent).
    assert_eq!(m.lateness_s.count, 3);
    close(m.lateness_s.mean, 0.1);
    close(m.lateness_s.p50, 0.1);
    // Goodput at TTFT <= 0.3 s: only r1.
    let g = m.goodput.as_ref().unwrap();
    assert_eq!(g.good, 1);
    close(g.fraction, 0.25);
    close(g.request_s, 1.0 / 2.2);
    // The early stop is reported.
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("1 requests stopped early"))
    );
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("2 of 4 requests did not succeed"))
    );
}

#[test]
fn json_names_the_documented_fields() {
    let rep = run(&AnalyzeOptions::default());
    let v: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, analyzer::Format::Json)).unwrap();
    let r = &v["runs"][0];
    for k in [
        "requests",
        "ok",
        "duration_s",
        "throughput_tok_s",
        "output_tok_s",
        "request_s",
    ] {
        assert!(r[k].is_number(), "{k} missing");
    }
    for k in [
        "ttft_s",
        "tpot_s",
        "itl_s",
        "e2e_s",
        "per_token_latency_s",
        "lateness_s",
    ] {
        for s in ["mean", "p50", "p90", "p99"] {
            assert!(r[k][s].is_number(), "{k}.{s} missing");
        }
    }
    assert_eq!(r["backend"], "tgi");
    assert_eq!(r["simulated"], serde_json::Value::Null);
}

#[test]
fn options_change_the_answers() {
    let mut opts = AnalyzeOptions::default();
    opts.metrics.include_warmup = true;
    let m = run(&opts).runs[0].metrics.clone();
    assert_eq!(m.requests, 5);
    assert_eq!(m.ok, 3);
    close(m.duration_s, 3.3);
    close(m.throughput_tok_s, (35.0 + 7.0) / 3.3);

    let mut opts = AnalyzeOptions::default();
    opts.metrics.output_tokens = TokenSource::Requested;
    let m = run(&opts).runs[0].metrics.clone();
    close(m.throughput_tok_s, 38.0 / 2.2);
    close(m.per_token_latency_s.max, 0.25); // 1.0 / 4 requested

    let mut opts = AnalyzeOptions::default();
    opts.metrics.output_tokens = TokenSource::Server;
    let m = run(&opts).runs[0].metrics.clone();
    assert_eq!(m.tokens.server_fallbacks, 1);
    assert_eq!(m.tokens.output_used, 6);

    let mut opts = AnalyzeOptions::default();
    opts.metrics.latency_from = LatencyFrom::Scheduled;
    opts.stat = Stat::Mean;
    let rep = run(&opts);
    let cell = rep.latency_tables[0].rows[0].cells[0].clone().unwrap();
    close(Some(cell.request_s), 0.8); // mean of 0.6 and 1.0
    close(Some(cell.per_token_s), (0.15 + 0.5) / 2.0);
    assert!(rep.latency_tables[0].corner.contains("mean"));
    assert!(rep.latency_tables[0].corner.contains("scheduled"));
}

#[test]
fn slo_parsing() {
    let s = Slo::parse("ttft=0.5,tpot=0.05,e2e=10").unwrap();
    assert_eq!(
        (s.ttft_s, s.tpot_s, s.e2e_s),
        (Some(0.5), Some(0.05), Some(10.0))
    );
    assert!(Slo::parse("ttft=-1").is_err());
    assert!(Slo::parse("foo=1").is_err());
    assert!(Slo::parse("").is_err());
}
