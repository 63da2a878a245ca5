//! Each dialect's bytes on the wire, validation, malformed input, exact token counts.

use crate::common;
use common::*;
use simulator::Dialect;

#[tokio::test]
async fn tgi_stream_bytes() {
    let s = start(Dialect::Tgi, "tiny").await;
    let body = format!(
        r#"{{"inputs":"{}","parameters":{{"max_new_tokens":5,"details":true}}}}"#,
        prompt(7)
    );
    let r = post(&s, "/generate_stream", &body).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.complete);
    let text = r.text();
    assert!(text.starts_with("data:{\"token\":{\"id\":"), "{text}");
    let events = sse_data(&text);
    assert_eq!(events.len(), 5, "one event per token, no end marker");
    let mut generated = String::new();
    for (i, e) in events.iter().enumerate() {
        assert!(!e.starts_with(' '), "TGI writes no space after data:");
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["details", "generated_text", "token"].map(String::from)
        );
        let tok = &v["token"];
        assert!(tok["id"].is_u64() && tok["logprob"].is_f64() && tok["special"] == false);
        generated.push_str(tok["text"].as_str().unwrap());
        if i < 4 {
            assert!(v["generated_text"].is_null() && v["details"].is_null());
        } else {
            assert_eq!(v["generated_text"], generated.as_str());
            assert_eq!(
                v["details"],
                serde_json::json!({"finish_reason":"length","generated_tokens":5,"seed":null})
            );
        }
    }
    // The field order is TGI's: token, generated_text, details.
    assert!(events[0].find("\"generated_text\"").unwrap() > events[0].find("\"token\"").unwrap());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn tgi_generate_json_headers_and_errors() {
    let s = start(Dialect::Tgi, "tiny").await;
    let r = post(
        &s,
        "/generate",
        &format!(
            r#"{{"inputs":"{}","parameters":{{"max_new_tokens":4,"details":true}}}}"#,
            prompt(3)
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    for h in [
        "x-compute-time",
        "x-total-time",
        "x-validation-time",
        "x-queue-time",
        "x-inference-time",
        "x-time-per-token",
    ] {
        r.header(h)
            .unwrap_or_else(|| panic!("{h}"))
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("{h} is integer ms"));
    }
    // Was: x-generated-tokens and x-prompt-tokens, which TGI only sends from 1.4.
    assert_eq!(r.header("x-generated-tokens"), None);
    assert_eq!(r.header("x-prompt-tokens"), None);
    assert_eq!(r.header("x-compute-characters"), Some("8"));
    let v = r.json();
    assert_eq!(v["details"]["generated_tokens"], 4);
    assert_eq!(v["details"]["finish_reason"], "length");
    assert_eq!(v["details"]["tokens"].as_array().unwrap().len(), 4);
    assert_eq!(v["details"]["prefill"], serde_json::json!([]));
    // Without details: only generated_text.
    let r = post(&s, "/generate", &format!(r#"{{"inputs":"{}"}}"#, prompt(3))).await;
    let v = r.json();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert_eq!(
        v["generated_text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        20,
        "max_new_tokens defaults to 20"
    );
    // Validation: too long -> 422 validation.
    let r = post(
        &s,
        "/generate",
        &format!(
            r#"{{"inputs":"{}","parameters":{{"max_new_tokens":10}}}}"#,
            prompt(1030)
        ),
    )
    .await;
    assert_eq!(r.status, 422);
    let v = r.json();
    assert_eq!(v["error_type"], "validation");
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("Input validation error: `inputs` must have less than 1024 tokens"),
        "{v}"
    );
    let r = post(
        &s,
        "/generate",
        &format!(
            r#"{{"inputs":"{}","parameters":{{"max_new_tokens":1500}}}}"#,
            prompt(1000)
        ),
    )
    .await;
    assert_eq!(r.status, 422);
    assert!(
        r.json()["error"]
            .as_str()
            .unwrap()
            .contains("must be <= 2048")
    );
    // On /generate_stream the error is an event after a 200.
    let r = post(
        &s,
        "/generate_stream",
        &format!(
            r#"{{"inputs":"{}","parameters":{{"max_new_tokens":0}}}}"#,
            prompt(3)
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    let ev = sse_data(&r.text());
    assert_eq!(ev.len(), 1);
    let v: serde_json::Value = serde_json::from_str(&ev[0]).unwrap();
    assert_eq!(v["error_type"], "validation");
    // Malformed input: axum's plain-text rejections; the server keeps serving.
    assert_eq!(post(&s, "/generate", "{not json").await.status, 400);
    assert_eq!(post(&s, "/generate", r#"{"inputs": 5}"#).await.status, 422);
    assert_eq!(
        post(&s, "/generate", r#"{"parameters": {}}"#).await.status,
        422
    );
    assert_eq!(
        post(
            &s,
            "/generate",
            r#"{"inputs":"a","parameters":{"max_new_tokens":"x"}}"#
        )
        .await
        .status,
        422
    );
    assert_eq!(
        request(&s, "POST", "/generate", r#"{"inputs":"a"}"#, None, &[])
            .await
            .status,
        415
    );
    assert_eq!(
        request(&s, "GET", "/health", "", None, &[]).await.status,
        200
    );
    assert_eq!(
        post(
            &s,
            "/generate",
            r#"{"inputs":"a b","parameters":{"max_new_tokens":2}}"#
        )
        .await
        .status,
        200
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn vllm_legacy_bytes() {
    let s = start(Dialect::Vllm, "tiny").await;
    let p = prompt(4);
    let r = post(
        &s,
        "/generate",
        &format!(r#"{{"prompt":"{p}","stream":true,"max_tokens":6,"ignore_eos":true}}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type"),
        None,
        "vLLM's StreamingResponse sets no Content-Type"
    );
    let body = r.text();
    assert!(body.ends_with('\0'));
    let parts: Vec<&str> = body.split_terminator('\0').collect();
    assert_eq!(parts.len(), 6);
    let mut prev = p.clone();
    for part in &parts {
        assert!(
            part.starts_with("{\"text\": [\""),
            "Python json.dumps spacing: {part}"
        );
        let v: serde_json::Value = serde_json::from_str(part).unwrap();
        let t = v["text"][0].as_str().unwrap();
        assert!(
            t.starts_with(&prev) && t.len() > prev.len(),
            "cumulative text including the prompt"
        );
        prev = t.to_string();
    }
    assert_eq!(prev.split_whitespace().count(), 4 + 6);
    // Not streamed: compact JSON, text includes the prompt; max_tokens defaults to 16.
    let r = post(&s, "/generate", &format!(r#"{{"prompt":"{p}"}}"#)).await;
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert!(r.text().starts_with("{\"text\":[\""));
    assert_eq!(
        r.json()["text"][0]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        4 + 16
    );
    // Bad input: uvicorn's plain 500; the server keeps serving.
    for bad in [
        "{oops",
        r#"{"stream":true}"#,
        r#"{"prompt":"a","max_tokens":"x"}"#,
        r#"{"prompt":"a","bogus":1}"#,
        r#"{"prompt":"a","max_tokens":0}"#,
    ] {
        let r = post(&s, "/generate", bad).await;
        assert_eq!(r.status, 500, "{bad}");
        assert_eq!(r.text(), "Internal Server Error");
    }
    // A prompt over max_model_len: 200 with an empty completion.
    let long = prompt(2100);
    let r = post(
        &s,
        "/generate",
        &format!(r#"{{"prompt":"{long}","max_tokens":5}}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["text"][0], long.as_str());
    // Output stops once longer than max_model_len (was: at it): 2040 + 9 = 2049 words.
    let r = post(
        &s,
        "/generate",
        &format!(
            r#"{{"prompt":"{}","max_tokens":100,"ignore_eos":true}}"#,
            prompt(2040)
        ),
    )
    .await;
    assert_eq!(
        r.json()["text"][0]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        2049
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn lightllm_bytes() {
    let s = start(Dialect::Lightllm, "tiny").await;
    let r = post(
        &s,
        "/generate_stream",
        &format!(
            r#"{{"inputs":"{}","parameters":{{"max_new_tokens":3,"ignore_eos":true}}}}"#,
            prompt(2)
        ),
    )
    .await;
    assert_eq!(r.status, 200);
    // Was: without the charset Starlette adds.
    assert_eq!(
        r.header("content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert!(r.complete);
    let ev = sse_data(&r.text());
    // Tokens ready together are sent as the latest only (was: exactly 3 events); the
    // last token is always sent.
    assert!((1..=3).contains(&ev.len()));
    for e in &ev {
        assert!(e.starts_with("{\"token\": {\"id\": "), "{e}");
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        assert!(v["generated_text"].is_null() && v["details"].is_null());
        assert_eq!(v["token"]["special"], false);
    }
    let r = post(
        &s,
        "/generate",
        &format!(r#"{{"inputs":"{}","parameters":{{}}}}"#, prompt(2)),
    )
    .await;
    assert_eq!(r.header("content-type"), None);
    assert!(r.text().starts_with("{\"generated_text\": [\""));
    assert_eq!(
        r.json()["generated_text"][0]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        16
    );
    // parameters are required; unknown parameters raise.
    assert_eq!(post(&s, "/generate", r#"{"inputs":"a"}"#).await.status, 500);
    assert_eq!(
        post(
            &s,
            "/generate",
            r#"{"inputs":"a","parameters":{"best_of":2}}"#
        )
        .await
        .status,
        500
    );
    // Too long: 500 on /generate, a cut connection after 200 on /generate_stream.
    let long = format!(
        r#"{{"inputs":"{}","parameters":{{"max_new_tokens":5}}}}"#,
        prompt(1500)
    );
    assert_eq!(post(&s, "/generate", &long).await.status, 500);
    let r = post(&s, "/generate_stream", &long).await;
    assert_eq!(r.status, 200);
    assert!(!r.complete && r.body.is_empty());
    assert_eq!(
        request(&s, "GET", "/health", "", None, &[]).await.status,
        200
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn openai_completions_stream_usage_and_done() {
    let s = start(Dialect::Openai, "tiny").await;
    let body = format!(
        r#"{{"model":"llmib-sim-tiny","prompt":"{}","max_tokens":4,"stream":true,"ignore_eos":true,"stream_options":{{"include_usage":true,"continuous_usage_stats":true}}}}"#,
        prompt(5)
    );
    let r = post(&s, "/v1/completions", &body).await;
    assert_eq!(r.status, 200);
    let ev = sse_data(&r.text());
    assert_eq!(ev.last().unwrap(), " [DONE]");
    assert_eq!(ev.len(), 4 + 2);
    for (i, e) in ev[..4].iter().enumerate() {
        assert!(e.starts_with(" {"), "one space after data:");
        let v: serde_json::Value = serde_json::from_str(e).unwrap();
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["usage"]["completion_tokens"], i as u64 + 1);
        assert_eq!(v["usage"]["prompt_tokens"], 5);
        let fr = &v["choices"][0]["finish_reason"];
        if i == 3 {
            assert_eq!(fr, "length")
        } else {
            assert!(fr.is_null())
        }
    }
    let usage: serde_json::Value = serde_json::from_str(&ev[4]).unwrap();
    assert_eq!(usage["choices"], serde_json::json!([]));
    assert_eq!(
        usage["usage"],
        serde_json::json!({"prompt_tokens":5,"total_tokens":9,"completion_tokens":4,
            "prompt_tokens_details":{"cached_tokens":0}})
    );
    // Token-id prompt; no include_usage: no usage anywhere.
    let r = post(
        &s,
        "/v1/completions",
        r#"{"prompt":[1,2,3],"max_tokens":2,"stream":true}"#,
    )
    .await;
    let ev = sse_data(&r.text());
    assert_eq!(ev.len(), 3);
    assert!(!ev[0].contains("usage"));
    // Not streamed.
    let r = post(
        &s,
        "/v1/completions",
        r#"{"prompt":[1,2,3],"max_tokens":7}"#,
    )
    .await;
    assert_eq!(
        r.json()["usage"],
        serde_json::json!({"prompt_tokens":3,"total_tokens":10,"completion_tokens":7,
            "prompt_tokens_details":{"cached_tokens":0}})
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn openai_chat_models_and_errors() {
    let s = start(Dialect::Openai, "tiny").await;
    let r = post(&s, "/v1/chat/completions", r#"{"messages":[{"role":"user","content":"hello there you"}],"max_completion_tokens":3,"stream":true,"stream_options":{"include_usage":true}}"#).await;
    let ev = sse_data(&r.text());
    // role chunk, 3 tokens, usage, [DONE]
    assert_eq!(ev.len(), 6);
    let first: serde_json::Value = serde_json::from_str(&ev[0]).unwrap();
    assert_eq!(first["object"], "chat.completion.chunk");
    assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
    let usage: serde_json::Value = serde_json::from_str(&ev[4]).unwrap();
    assert_eq!(usage["usage"]["prompt_tokens"], 3);
    assert_eq!(usage["usage"]["completion_tokens"], 3);
    let r = request(&s, "GET", "/v1/models", "", None, &[]).await;
    assert_eq!(r.json()["data"][0]["id"], "llmib-sim-tiny");
    // Errors: {"error":{"message","type","code"}}.
    let too_long = format!(r#"{{"prompt":"{}","max_tokens":100}}"#, prompt(2000));
    for (body, status) in [
        ("{bad", 400),
        (r#"{"max_tokens":3}"#, 400),
        (r#"{"prompt":"a","max_tokens":"3"}"#, 400),
        (r#"{"prompt":"a","model":"other"}"#, 404),
        (
            r#"{"prompt":"a","stream_options":{"include_usage":true}}"#,
            400,
        ),
        (too_long.as_str(), 400),
    ] {
        let r = post(&s, "/v1/completions", body).await;
        assert_eq!(r.status, status, "{body}");
        let v = r.json();
        assert_eq!(v["error"]["code"], status, "{v}");
        assert!(v["error"]["message"].is_string() && v["error"]["type"].is_string());
    }
    assert_eq!(
        post(&s, "/v1/completions", r#"{"prompt":"a b","max_tokens":1}"#)
            .await
            .status,
        200
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn exact_token_counts_under_ignore_eos_with_eos_chance() {
    // A profile where EOS is likely: ignore_eos must still give exactly max_tokens, and
    // without it outputs stop early (finish reason eos / stop).
    let mut text = include_str!("../../profiles/tiny.toml").to_string();
    text = text.replace("eos_probability = 0.0", "eos_probability = 0.2");
    let profile = simulator::Profile::parse(&text, "test").unwrap();
    let s = simulator::start(simulator::SimConfig::new(Dialect::Openai, profile))
        .await
        .unwrap();
    let mut early = 0;
    for _ in 0..10 {
        let r = post(
            &s,
            "/v1/completions",
            r#"{"prompt":"a b c","max_tokens":40,"ignore_eos":true}"#,
        )
        .await;
        assert_eq!(r.json()["usage"]["completion_tokens"], 40);
        let r = post(
            &s,
            "/v1/completions",
            r#"{"prompt":"a b c","max_tokens":40,"min_tokens":2}"#,
        )
        .await;
        let v = r.json();
        let n = v["usage"]["completion_tokens"].as_u64().unwrap();
        assert!((2..=40).contains(&n));
        if n < 40 {
            assert_eq!(v["choices"][0]["finish_reason"], "stop");
            early += 1;
        }
    }
    assert!(
        early >= 5,
        "with p = 0.2 per token, 40 tokens almost never survive: {early}"
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn tgi_info_and_compat_route() {
    let s = start(Dialect::Tgi, "tiny").await;
    let r = request(&s, "GET", "/info", "", None, &[]).await;
    let v = r.json();
    assert_eq!(v["max_input_length"], 1024);
    assert_eq!(v["max_total_tokens"], 2048);
    assert_eq!(v["version"], "1.0.1", "what the v1.0.2 tag reports");
    let r = post(
        &s,
        "/",
        r#"{"inputs":"a b","parameters":{"max_new_tokens":3},"stream":true}"#,
    )
    .await;
    assert_eq!(sse_data(&r.text()).len(), 3);
    let r = post(
        &s,
        "/",
        r#"{"inputs":"a b","parameters":{"max_new_tokens":3}}"#,
    )
    .await;
    // Not streamed, `POST /` answers inside an array (was: the bare object).
    assert!(
        r.text().starts_with("[{\"generated_text\":"),
        "{}",
        r.text()
    );
    assert_eq!(
        r.json()[0]["generated_text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        3
    );
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn every_answer_names_the_simulator() {
    for dialect in Dialect::ALL {
        let s = start(dialect, "tiny").await;
        let health = request(&s, "GET", "/health", "", None, &[]).await;
        assert_eq!(
            health.header(simulator::SIMULATOR_HEADER),
            Some(format!("profile=tiny; dialect={dialect}").as_str()),
            "{dialect} /health"
        );
        // Errors too: a malformed body on the dialect's generation route.
        let route = if dialect == Dialect::Openai {
            "/v1/completions"
        } else {
            "/generate"
        };
        let bad = post(&s, route, "{not json").await;
        assert!(bad.status >= 400, "{dialect}: {}", bad.status);
        assert!(
            bad.header(simulator::SIMULATOR_HEADER).is_some(),
            "{dialect} error"
        );
        s.shutdown().await.unwrap();
    }
}
