//! `GET /metrics`: vLLM's names in the Prometheus text format on every dialect, counting
//! what the engine and the handlers did.

use crate::common;

use common::{post, request, start};
use simulator::Dialect;

/// The value of the sample line that starts with `series ` (exact series key).
fn value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn every_dialect_serves_vllm_names() {
    for d in Dialect::ALL {
        let server = start(d, "tiny").await;
        let r = request(&server, "GET", "/metrics", "", None, &[]).await;
        assert_eq!(r.status, 200, "{d}");
        assert!(
            r.header("content-type")
                .unwrap()
                .starts_with("text/plain; version=0.0.4")
        );
        let text = r.text();
        for name in [
            "vllm:num_requests_running",
            "vllm:num_requests_waiting",
            "vllm:kv_cache_usage_perc",
            "vllm:gpu_cache_usage_perc",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} gauge\n")),
                "{d} {name}"
            );
            assert_eq!(
                value(&text, &format!("{name}{{model_name=\"llmib-sim-tiny\"}}")),
                0.0
            );
        }
        for name in [
            "vllm:num_preemptions_total",
            "vllm:prompt_tokens_total",
            "vllm:generation_tokens_total",
            "vllm:request_success_total",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} counter\n")),
                "{d} {name}"
            );
        }
        server.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn counters_and_histograms_follow_the_requests() {
    let server = start(Dialect::Tgi, "tiny").await;
    for n in [5, 7] {
        let body = format!(
            "{{\"inputs\":\"one two three four\",\"parameters\":{{\"max_new_tokens\":{n}}}}}"
        );
        assert_eq!(post(&server, "/generate", &body).await.status, 200);
    }
    let text = request(&server, "GET", "/metrics", "", None, &[])
        .await
        .text();
    let l = "model_name=\"llmib-sim-tiny\"";
    assert_eq!(
        value(&text, &format!("vllm:generation_tokens_total{{{l}}}")),
        12.0
    );
    assert!(value(&text, &format!("vllm:prompt_tokens_total{{{l}}}")) > 0.0);
    assert_eq!(
        value(
            &text,
            &format!("vllm:request_success_total{{finished_reason=\"length\",{l}}}")
        ),
        2.0
    );
    let ttft = "vllm:time_to_first_token_seconds";
    assert_eq!(value(&text, &format!("{ttft}_count{{{l}}}")), 2.0);
    assert_eq!(
        value(&text, &format!("{ttft}_bucket{{{l},le=\"+Inf\"}}")),
        2.0
    );
    assert!(value(&text, &format!("{ttft}_sum{{{l}}}")) > 0.0);
    let e2e = "vllm:e2e_request_latency_seconds";
    assert_eq!(value(&text, &format!("{e2e}_count{{{l}}}")), 2.0);
    // Nothing left running: the engine published its idle state.
    assert_eq!(
        value(&text, &format!("vllm:num_requests_running{{{l}}}")),
        0.0
    );
    assert_eq!(
        value(&text, &format!("vllm:kv_cache_usage_perc{{{l}}}")),
        0.0
    );
    server.shutdown().await.unwrap();
}
