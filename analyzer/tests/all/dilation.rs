//! Time dilation: a log of a run against the simulator sped up K times (header
//! `backend.simulated.speedup`) is loaded in the profile's units: every time x K, rates
//! / K, the latency column at the trace's own rate when replayed at time scale K, rows
//! labelled `x K`, and one row for runs of one profile at several speed-ups.

use crate::common;

use analyzer::AnalyzeOptions;
use common::*;

fn sped_up(h: formats::LogHeader, k: f64) -> formats::LogHeader {
    let mut h = simulated(h, "a800-llama2-13b");
    h.backend.simulated.as_mut().unwrap().speedup = Some(k);
    h.options.time_scale = k;
    h
}

#[test]
fn a_sped_up_log_is_analysed_in_the_profiles_units() {
    let dir = tempfile::tempdir().unwrap();
    // The profile's run: latencies 1, 2, 3 s at QPS 2. The same run K = 10 times faster
    // (arrivals at 20 requests/s, latencies 0.1, 0.2, 0.3 s) must analyse identically.
    let h = simulated(
        latency_header("vllm", "lat-2", "q2", 2.0),
        "a800-llama2-13b",
    );
    let slow = write_log(
        &dir.path().join("slow.msgpack"),
        &h,
        &latency_records(2.0, 1.0),
    );
    let fast = write_log(
        &dir.path().join("fast.msgpack"),
        &sped_up(latency_header("vllm", "lat-2", "q2b", 2.0), 10.0),
        &latency_records(20.0, 0.1),
    );
    let runs = analyzer::load_runs(&[&slow, &fast]).unwrap();
    assert_eq!(runs.runs[1].dilation, 10.0);
    let report = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let (a, b) = (&report.runs[0].metrics, &report.runs[1].metrics);
    let close = |x: f64, y: f64| (x - y).abs() <= 1e-6 * x.abs().max(1.0);
    for (x, y) in [
        (a.e2e_s.p50, b.e2e_s.p50),
        (a.ttft_s.p50, b.ttft_s.p50),
        (a.itl_s.p50, b.itl_s.p50),
        (a.duration_s, b.duration_s),
        (a.throughput_tok_s, b.throughput_tok_s),
        (a.request_s, b.request_s),
    ] {
        assert!(close(x.unwrap(), y.unwrap()), "{x:?} vs {y:?}");
    }
    assert_eq!(report.runs[0].placement, report.runs[1].placement);
    assert!(
        report.runs[1]
            .warnings
            .iter()
            .all(|w| !w.contains("time scale"))
    );
    let rates = |i: usize| report.runs[i].rates.offered.unwrap();
    assert!(close(rates(0), rates(1)), "{} vs {}", rates(0), rates(1));
    // Two traces (sha q2, q2b) of one profile: one row, labelled with both speed-ups.
    let t = &report.latency_tables[0];
    assert_eq!(t.rows.len(), 1);
    assert_eq!(t.rows[0].label, "vLLM (simulated, a800-llama2-13b, x 1-10)");
    assert!(
        t.notes.iter().any(|n| n.starts_with("x K:")),
        "{:?}",
        t.notes
    );
}

#[test]
fn a_time_scale_other_than_the_speedup_is_still_warned() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = sped_up(latency_header("tgi", "lat-2", "q2", 2.0), 10.0);
    h.options.time_scale = 40.0;
    let log = write_log(
        &dir.path().join("x.msgpack"),
        &h,
        &latency_records(80.0, 0.1),
    );
    let runs = analyzer::load_runs(&[&log]).unwrap();
    let report = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let r = &report.runs[0];
    assert_eq!(
        r.placement,
        analyzer::report::Placement::Latency { qps: 8.0 }
    );
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("trace's rate times 4")),
        "{:?}",
        r.warnings
    );
    assert_eq!(r.row_label(), "TGI (simulated, a800-llama2-13b, x 10)");
}
