//! The SGLang and llama.cpp native dialects on the wire: exact event shapes, counts,
//! end markers, errors as each server's source writes them.

use crate::common;
use common::*;
use simulator::Dialect;

fn data_events(body: &str) -> Vec<serde_json::Value> {
    sse_data(body)
        .iter()
        .map(|e| {
            let e = e.strip_prefix(' ').expect("one space after data:");
            if e == "[DONE]" {
                serde_json::Value::String("[DONE]".into())
            } else {
                serde_json::from_str(e).unwrap()
            }
        })
        .collect()
}

#[tokio::test]
async fn sglang_stream_is_cumulative_and_ends_with_done() {
    let s = start(Dialect::Sglang, "tiny").await;
    let body = format!(
        r#"{{"text":"{}","sampling_params":{{"max_new_tokens":4,"ignore_eos":true}},"stream":true}}"#,
        prompt(5)
    );
    let r = post(&s, "/generate", &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert!(r.complete);
    let events = data_events(&r.text());
    assert_eq!(events.len(), 5, "4 tokens and [DONE]");
    assert_eq!(events[4], "[DONE]");
    let mut text = String::new();
    for (i, e) in events[..4].iter().enumerate() {
        let keys: Vec<_> = e.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["meta_info", "output_ids", "text"].map(String::from));
        let m = &e["meta_info"];
        assert_eq!(m["completion_tokens"], i as u64 + 1);
        assert_eq!(m["prompt_tokens"], 5);
        assert_eq!(m["cached_tokens"], 0);
        assert_eq!(e["output_ids"].as_array().unwrap().len(), i + 1);
        let t = e["text"].as_str().unwrap();
        assert!(t.starts_with(&text) && t.len() > text.len(), "cumulative");
        text = t.to_string();
        if i < 3 {
            assert!(m["finish_reason"].is_null());
            assert!(m.get("e2e_latency").is_none());
        } else {
            assert_eq!(
                m["finish_reason"],
                serde_json::json!({"type": "length", "length": 4})
            );
            assert!(m["e2e_latency"].as_f64().unwrap() >= 0.0);
        }
    }
    assert_eq!(
        text.split_whitespace().count(),
        4,
        "the prompt is not repeated"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn sglang_answer_and_errors() {
    let s = start(Dialect::Sglang, "tiny").await;
    let r = post(
        &s,
        "/generate",
        r#"{"text":"a b c","sampling_params":{"max_new_tokens":3}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let v = r.json();
    assert_eq!(v["meta_info"]["completion_tokens"], 3);
    assert_eq!(v["meta_info"]["finish_reason"]["type"], "length");
    // Token ids as the prompt.
    let r = post(
        &s,
        "/generate",
        r#"{"input_ids":[1,2,3,4],"sampling_params":{"max_new_tokens":2}}"#,
    )
    .await;
    assert_eq!(r.json()["meta_info"]["prompt_tokens"], 4);
    // max_new_tokens 0: an empty answer, not an error.
    let r = post(
        &s,
        "/generate",
        r#"{"text":"a","sampling_params":{"max_new_tokens":0}}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["meta_info"]["completion_tokens"], 0);
    // Validation (FastAPI): 400 in the server's ErrorResponse shape.
    let r = post(&s, "/generate", r#"{"text":"a","stream":"yes"}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["object"], "error");
    assert_eq!(r.json()["code"], 400);
    // A ValueError: 400 {"error":{"message"}} when not streamed...
    let long = format!(
        r#"{{"text":"{}","sampling_params":{{"max_new_tokens":100}}}}"#,
        prompt(2000)
    );
    let r = post(&s, "/generate", &long).await;
    assert_eq!(r.status, 400);
    let m = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(m.starts_with("Requested token count exceeds"), "{m}");
    let r = post(&s, "/generate", r#"{"sampling_params":{}}"#).await;
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("should be provided")
    );
    // ...and a 200 with an error event and [DONE] when streamed.
    let long_stream = long.replace("}}", "},\"stream\":true}");
    let r = post(&s, "/generate", &long_stream).await;
    assert_eq!(r.status, 200);
    let events = data_events(&r.text());
    assert_eq!(events.len(), 2);
    assert!(events[0]["error"]["message"].is_string());
    assert_eq!(events[1], "[DONE]");
    // An unknown sampling parameter raises a TypeError nothing catches.
    let r = post(
        &s,
        "/generate",
        r#"{"text":"a","sampling_params":{"max_tokens":3}}"#,
    )
    .await;
    assert_eq!(r.status, 500);
    assert_eq!(r.text(), "Internal Server Error");
    let r = post(
        &s,
        "/generate",
        r#"{"text":"a","sampling_params":{"max_tokens":3},"stream":true}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(!r.complete, "the stream is cut");
    // Unknown top-level keys are ignored (a dataclass).
    let r = post(
        &s,
        "/generate",
        r#"{"text":"a","sampling_params":{"max_new_tokens":1},"unknown":1}"#,
    )
    .await;
    assert_eq!(r.status, 200);
    let r = request(&s, "GET", "/get_model_info", "", None, &[]).await;
    assert_eq!(r.json()["is_generation"], true);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn llamacpp_stream_matches_the_captured_shape() {
    let s = start(Dialect::Llamacpp, "tiny").await;
    let body = format!(
        r#"{{"prompt":"{}","n_predict":4,"ignore_eos":true,"stream":true}}"#,
        prompt(6)
    );
    let r = post(&s, "/completion", &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert_eq!(r.header("server"), Some("llama.cpp"));
    assert!(r.complete);
    let events = data_events(&r.text());
    assert_eq!(
        events.len(),
        5,
        "4 token events and the final one, no [DONE]"
    );
    for (i, e) in events[..4].iter().enumerate() {
        let keys: Vec<_> = e.as_object().unwrap().keys().cloned().collect();
        // The captured server's keys (the bytes keep its order: checked below).
        assert_eq!(
            keys,
            [
                "content",
                "id_slot",
                "index",
                "stop",
                "tokens",
                "tokens_evaluated",
                "tokens_predicted"
            ]
            .map(String::from)
        );
        assert_eq!(e["stop"], false);
        assert_eq!(e["tokens_predicted"], i as u64 + 1);
        assert_eq!(e["tokens_evaluated"], 6);
        assert_eq!(e["tokens"].as_array().unwrap().len(), 1);
    }
    assert!(sse_data(&r.text())[0].starts_with(" {\"index\":0,\"content\":"));
    let last = &events[4];
    assert_eq!(last["stop"], true);
    assert_eq!(last["content"], "");
    assert_eq!(last["stop_type"], "limit");
    assert_eq!(last["tokens_predicted"], 4);
    assert_eq!(last["timings"]["predicted_n"], 4);
    assert_eq!(last["timings"]["prompt_n"], 6);
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn llamacpp_answer_and_errors() {
    let s = start(Dialect::Llamacpp, "tiny").await;
    let r = post(&s, "/completion", r#"{"prompt":"a b","n_predict":3}"#).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        Some("application/json; charset=utf-8")
    );
    let v = r.json();
    assert_eq!(v["stop"], true);
    assert_eq!(v["tokens_predicted"], 3);
    assert_eq!(v["tokens"].as_array().unwrap().len(), 3);
    assert_eq!(v["content"].as_str().unwrap().split_whitespace().count(), 3);
    // Token ids, and `max_tokens` as an alias of n_predict.
    let r = post(&s, "/completions", r#"{"prompt":[1,2,3],"max_tokens":2}"#).await;
    assert_eq!(r.json()["tokens_evaluated"], 3);
    assert_eq!(r.json()["tokens_predicted"], 2);
    // A wrong type falls back to the default (json_value): n_predict -1 runs to the
    // end of the context.
    let r = post(
        &s,
        "/completion",
        &format!(r#"{{"prompt":"{}","n_predict":"x"}}"#, prompt(2040)),
    )
    .await;
    assert_eq!(r.json()["tokens_predicted"], 8);
    let r = post(&s, "/completion", r#"{"n_predict":3}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["type"], "invalid_request_error");
    let r = post(&s, "/completion", "{no").await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error"]["type"], "server_error");
    let r = post(
        &s,
        "/completion",
        &format!(r#"{{"prompt":"{}","stream":true}}"#, prompt(2048)),
    )
    .await;
    assert_eq!(r.status, 400);
    let e = &r.json()["error"];
    assert_eq!(e["type"], "exceed_context_size_error");
    assert_eq!(e["n_prompt_tokens"], 2048);
    assert_eq!(e["n_ctx"], 2048);
    let r = request(&s, "GET", "/props", "", None, &[]).await;
    assert_eq!(r.json()["default_generation_settings"]["n_ctx"], 2048);
    s.shutdown().await.unwrap();
}
