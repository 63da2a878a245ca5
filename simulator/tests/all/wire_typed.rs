//! The Responses (`/v1/responses`) and Messages (`/v1/messages`) routes against what the
//! real vLLM 0.32 wrote (`replayer/tests/fixtures/vllm-0.32/`): the same event types in
//! the same order (the number of deltas aside), the same keys in each event's data, the
//! usage's counts, and the errors' shapes.

use crate::common::{post, start};

use std::collections::BTreeSet;

use simulator::Dialect;

const CAPTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../replayer/tests/fixtures/vllm-0.32/"
);

/// (event type, the data's sorted top-level keys) of each SSE event, runs of one delta
/// type collapsed into one.
fn shape(body: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut out: Vec<(String, BTreeSet<String>)> = Vec::new();
    for ev in body.split("\n\n").filter(|e| !e.trim().is_empty()) {
        let kind = ev
            .lines()
            .find_map(|l| l.strip_prefix("event: "))
            .unwrap_or_else(|| panic!("no event line in {ev}"))
            .to_string();
        let data = ev.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
        let v: serde_json::Value = serde_json::from_str(data).unwrap();
        assert_eq!(v["type"], kind.as_str(), "{ev}");
        let keys = v.as_object().unwrap().keys().cloned().collect();
        if out
            .last()
            .is_some_and(|(k, _)| *k == kind && kind.contains("delta") && kind != "message_delta")
        {
            continue;
        }
        out.push((kind, keys));
    }
    out
}

fn capture(name: &str) -> String {
    std::fs::read_to_string(format!("{CAPTURES}{name}")).unwrap()
}

/// The capture's event types and keys, each of the simulator's data keys among the
/// capture's (the capture may carry more: vLLM's optional fields).
fn assert_same_shape(sim: &str, real: &str) {
    let (s, r) = (shape(sim), shape(real));
    let kinds =
        |v: &[(String, BTreeSet<String>)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    assert_eq!(kinds(&s), kinds(&r), "event types");
    for ((kind, sk), (_, rk)) in s.iter().zip(&r) {
        assert!(
            sk.is_subset(rk) && rk.is_subset(sk),
            "{kind}: {sk:?} vs {rk:?}"
        );
    }
}

#[tokio::test]
async fn responses_stream_has_vllms_events_and_usage() {
    let sim = start(Dialect::Openai, "tiny").await;
    let body =
        r#"{"model":"llmib-sim-tiny","input":"a b c d","max_output_tokens":8,"stream":true}"#;
    let r = post(&sim, "/v1/responses", body).await;
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = r.text();
    assert_same_shape(&text, &capture("responses_stream.body"));
    let last = text
        .split("\n\n")
        .filter(|e| e.contains("response.completed"))
        .last()
        .unwrap();
    let v: serde_json::Value =
        serde_json::from_str(last.lines().nth(1).unwrap().strip_prefix("data: ").unwrap()).unwrap();
    let usage = &v["response"]["usage"];
    assert_eq!(usage["input_tokens"], 4);
    let out = usage["output_tokens"].as_u64().unwrap();
    assert!((1..=8).contains(&out), "{usage}");
    let status = v["response"]["status"].as_str().unwrap();
    assert!(
        status == "completed" || (status == "incomplete" && out == 8),
        "{v}"
    );
    // Not streamed: the whole response object.
    let r = post(&sim, "/v1/responses", &body.replace(",\"stream\":true", "")).await;
    let v = r.json();
    assert_eq!(v["object"], "response");
    assert_eq!(v["output"][0]["content"][0]["type"], "output_text");
    assert!(v["usage"]["output_tokens"].as_u64().unwrap() >= 1);
    sim.shutdown().await.unwrap();
}

#[tokio::test]
async fn messages_stream_has_vllms_events_usage_and_errors() {
    let sim = start(Dialect::Openai, "tiny").await;
    let body = r#"{"model":"llmib-sim-tiny","max_tokens":8,"messages":[{"role":"user","content":"a b c"}],"system":"d e","stream":true}"#;
    let r = post(&sim, "/v1/messages", body).await;
    assert_eq!(r.status, 200);
    let text = r.text();
    assert_same_shape(&text, &capture("messages_stream.body"));
    assert!(
        text.contains(r#""usage":{"input_tokens":5,"output_tokens":0}"#),
        "{text}"
    );
    let r = post(&sim, "/v1/messages", &body.replace(",\"stream\":true", "")).await;
    let v = r.json();
    assert_eq!(
        (v["type"].as_str(), v["usage"]["input_tokens"].as_u64()),
        (Some("message"), Some(5))
    );
    // Errors in Anthropic's shape, as vLLM's Messages route answers them.
    let r = post(&sim, "/v1/messages", r#"{"model":"llmib-sim-tiny","max_tokens":99999,"messages":[{"role":"user","content":"a"}]}"#).await;
    assert_eq!(r.status, 400);
    let real: serde_json::Value = serde_json::from_str(&capture("messages_too_long.body")).unwrap();
    let v = r.json();
    assert_eq!(v["type"], real["type"]);
    assert!(
        v["error"]["message"].is_string() && v["error"]["type"] == "BadRequestError",
        "{v}"
    );
    let r = post(
        &sim,
        "/v1/messages",
        r#"{"max_tokens":4,"messages":[{"role":"user","content":"a"}]}"#,
    )
    .await;
    assert_eq!(r.status, 400, "model is required");
    sim.shutdown().await.unwrap();
}
