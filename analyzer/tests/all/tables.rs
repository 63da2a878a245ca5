//! The original's two tables from hand-built runs: snapshot of the Markdown text (files
//! in tests/snapshots/, checked by hand: see the numbers in the comments), grouping
//! rules (traces never mixed, repeats pooled, simulated rows marked), CSV and JSON.

use crate::common;

use std::path::{Path, PathBuf};

use analyzer::AnalyzeOptions;
use common::*;

/// Throughput runs: TGI takes 1 s per request slot, vLLM 0.5 s, so cells are
/// (100 + cap) / t: TGI 132.00 and 228.00, vLLM 264.00 and 456.00.
/// Latency runs: request latencies l, 2l, 3l over 10 tokens: median "0.2l (2l)".
/// TGI l = 1 (QPS 2) and 1.5 (QPS 4); vLLM l = 1.5 and 2.5; LightLLM (simulated) l = 2
/// at QPS 2 only.
fn suite(dir: &Path) -> Vec<PathBuf> {
    let mut v = vec![
        throughput_run(dir, "tgi-32.msgpack", "tgi", "thr-32", "s32", 32, 1.0),
        throughput_run(dir, "tgi-128.msgpack", "tgi", "thr-128", "s128", 128, 1.0),
        throughput_run(dir, "vllm-32.msgpack", "vllm", "thr-32", "s32", 32, 0.5),
        throughput_run(dir, "vllm-128.msgpack", "vllm", "thr-128", "s128", 128, 0.5),
    ];
    for (backend, qps, l, sim) in [
        ("tgi", 2.0, 1.0, false),
        ("tgi", 4.0, 1.5, false),
        ("vllm", 2.0, 1.5, false),
        ("vllm", 4.0, 2.5, false),
        ("lightllm", 2.0, 2.0, true),
    ] {
        let trace = format!("lat-{qps}");
        let sha = format!("q{qps}");
        let mut h = latency_header(backend, &trace, &sha, qps);
        if sim {
            h = simulated(h, "a800-13b");
        }
        let path = dir.join(format!("{backend}-qps{qps}.msgpack"));
        v.push(write_log(&path, &h, &latency_records(qps, l)));
    }
    v
}

fn snapshot(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/snapshots")
        .join(name);
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("missing snapshot {}", path.display()));
    assert_eq!(actual, expected, "snapshot {name} differs");
}

#[test]
fn tables_have_the_original_shape() {
    let dir = tempfile::tempdir().unwrap();
    suite(dir.path());
    let runs = analyzer::load_runs(&[dir.path()]).unwrap();
    assert_eq!(runs.runs.len(), 9);
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let thr = analyzer::tables::markdown::throughput(&rep);
    let lat = analyzer::tables::markdown::latency(&rep);
    snapshot("throughput.md", &thr);
    snapshot("latency.md", &lat);
    // The numbers, independently of the snapshot files.
    assert!(thr.contains("| TGI | 132.00 | 228.00 |"), "{thr}");
    assert!(thr.contains("| vLLM | 264.00 | 456.00 |"), "{thr}");
    assert!(
        lat.contains("| TGI | 0.2000 (2.0000) | 0.3000 (3.0000) |"),
        "{lat}"
    );
    assert!(
        lat.contains("| vLLM | 0.3000 (3.0000) | 0.5000 (5.0000) |"),
        "{lat}"
    );
    assert!(
        lat.contains("| LightLLM (simulated, a800-13b) | 0.4000 (4.0000) | - |"),
        "{lat}"
    );
    assert!(lat.starts_with(
        "| generation request latency vs. QPS: median per-token (request), s | QPS=2 | QPS=4 |\n|:--|:--|:--|\n"
    ));
    // CSV has the same cells.
    let csv = analyzer::tables::csv::latency(&rep);
    assert!(
        csv.contains("TGI,0.2000 (2.0000),0.3000 (3.0000)\n"),
        "{csv}"
    );
    let csv = analyzer::tables::csv::throughput(&rep);
    assert!(csv.starts_with("Throughput (token/s) vs. variance in length,max 32 tokens,max 128 tokens\nTGI,132.00,228.00\n"), "{csv}");
    // JSON carries the tables.
    let v: serde_json::Value =
        serde_json::from_str(&analyzer::render(&rep, analyzer::Format::Json)).unwrap();
    assert_eq!(
        v["throughput_tables"][0]["rows"][1]["cells"][1]["tok_s"],
        456.0
    );
    assert_eq!(v["runs"].as_array().unwrap().len(), 9);
    let sim = v["runs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["backend"] == "lightllm")
        .unwrap();
    assert_eq!(sim["simulated"]["profile"], "a800-13b");
}

#[test]
fn different_traces_are_never_mixed_and_repeats_are_pooled() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Same cap, two different traces: two columns.
    throughput_run(d, "a.msgpack", "tgi", "trace-a", "sha-a", 32, 1.0);
    throughput_run(d, "b.msgpack", "tgi", "trace-b", "sha-b", 32, 2.0);
    // A repeat of trace-a on vLLM, twice: pooled (total tokens / total duration).
    throughput_run(d, "c1.msgpack", "vllm", "trace-a", "sha-a", 32, 1.0);
    throughput_run(d, "c2.msgpack", "vllm", "trace-a", "sha-a", 32, 0.5);
    let runs = analyzer::load_runs(&[d]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let t = &rep.throughput_tables[0];
    let labels: Vec<&str> = t.columns.iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        ["max 32 tokens (trace-a)", "max 32 tokens (trace-b)"]
    );
    let md = analyzer::tables::markdown::throughput(&rep);
    // TGI: 132 on trace-a, 66 on trace-b. vLLM pooled: 2 x 528 tokens / (4 + 2) s = 176.
    assert!(md.contains("| TGI | 132.00 | 66.00 |"), "{md}");
    assert!(md.contains("| vLLM | 176.00 | - |"), "{md}");
    assert!(md.contains("never mixed"), "{md}");
    assert!(
        md.contains("2 runs of the same trace pooled (c1, c2)"),
        "{md}"
    );
    assert!(rep.warnings.iter().any(|w| w.contains("different traces")));
}

#[test]
fn early_stops_show_both_token_counts() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 2 requests asked 10 tokens; one got 4 (EOS): client 14, requested 20.
    let recs = vec![
        ok(0, 0, 0, &even_events(0, S, 10), S, 100, 10),
        ok(1, 0, 0, &even_events(0, 2 * S, 4), 2 * S, 100, 10),
    ];
    write_log(
        &d.join("e.msgpack"),
        &header("tgi", "t", "s", Some(spec("t", 10, None))),
        &recs,
    );
    let runs = analyzer::load_runs(&[d]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let md = analyzer::tables::markdown::throughput(&rep);
    // (200 + 14) / 2 = 107.00 counted; (200 + 20) / 2 = 110.00 requested.
    assert!(md.contains("| TGI | 107.00 |"), "{md}");
    assert!(
        md.contains(
            "110.00 token/s with requested output tokens (the original's count); 1 early stops"
        ),
        "{md}"
    );
}

#[test]
fn models_get_separate_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = throughput_run(d, "a.msgpack", "tgi", "t", "s", 32, 1.0);
    let mut h = header("tgi", "t", "s", Some(spec("t", 32, None)));
    h.backend.model = Some("70b".into());
    let recs: Vec<_> = formats::read_log(&p).unwrap().records;
    write_log(&d.join("b.msgpack"), &h, &recs);
    let runs = analyzer::load_runs(&[d]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    assert_eq!(rep.throughput_tables.len(), 2);
    let md = analyzer::tables::markdown::throughput(&rep);
    assert!(md.contains("Model: 70b"), "{md}");
    assert!(md.contains("Model: m"), "{md}");
}

#[test]
fn imported_traces_stay_out_of_the_original_tables() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let azure = formats::TraceSpec::Azure(formats::AzureImportSpec {
        name: "azure".into(),
        seed: 1,
        source_file: "AzureLLMInferenceTrace_conv.csv".into(),
        source_sha256: "00".into(),
        start_s: 0.0,
        duration_s: Some(60.0),
        time_scale: 1.0,
        max_prompt_tokens: None,
        max_output_tokens: Some(512),
        max_requests: None,
        ignore_eos: true,
    });
    // Its output cap must not make it look like a burst throughput run.
    let h = header("vllm", "azure", "az", Some(azure));
    write_log(&d.join("az.msgpack"), &h, &latency_records(2.0, 1.0));
    let runs = analyzer::load_runs(&[d]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    assert!(rep.throughput_tables.is_empty() && rep.latency_tables.is_empty());
    assert!(
        rep.warnings
            .iter()
            .any(|w| w.contains("per-run table only"))
    );
    assert!(analyzer::tables::markdown::runs(&rep).contains("| az | vLLM | azure | - | 3 | 3 |"));
}

#[test]
fn time_scaled_runs_are_placed_at_their_offered_rate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut h = latency_header("tgi", "lat-2", "q2", 2.0);
    h.options.time_scale = 4.0;
    write_log(&d.join("fast.msgpack"), &h, &latency_records(8.0, 1.0));
    write_log(
        &d.join("normal.msgpack"),
        &latency_header("tgi", "lat-2", "q2", 2.0),
        &latency_records(2.0, 1.0),
    );
    let runs = analyzer::load_runs(&[d]).unwrap();
    let rep = analyzer::report(&runs, &AnalyzeOptions::default()).unwrap();
    let labels: Vec<&str> = rep.latency_tables[0]
        .columns
        .iter()
        .map(|c| c.label.as_str())
        .collect();
    // Same trace, different offered rates: two columns, never pooled.
    assert_eq!(labels, ["QPS=2", "QPS=8"]);
    assert!(rep.warnings.iter().any(|w| w.contains("time scale 4")));
}
