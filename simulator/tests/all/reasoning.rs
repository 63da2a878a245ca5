//! Reasoning models (`SimConfig::reasoning`, `llmib sim --reasoning-tokens N`): chat
//! deltas carry reasoning before the answer, in the configured field(s); usage says how
//! many tokens were reasoning; a request can turn it off; completions never reason; the
//! truth log records reasoning tokens and the first answer token's time.

use crate::common;
use common::*;
use serde_json::Value;
use simulator::truth::read_truth_log;
use simulator::{Dialect, Profile, Reasoning, ReasoningField, SimConfig, SimServer};

async fn reasoning_server(
    tokens: u32,
    field: ReasoningField,
    truth: Option<&std::path::Path>,
) -> SimServer {
    let mut cfg = SimConfig::new(Dialect::Openai, Profile::builtin("tiny").unwrap());
    cfg.reasoning = Some(Reasoning { tokens, field });
    cfg.truth_log = truth.map(|p| p.to_path_buf());
    simulator::start(cfg).await.unwrap()
}

fn chat(max: u32, extra: &str) -> String {
    format!(
        r#"{{"messages":[{{"role":"user","content":"why is the sky blue"}}],"max_tokens":{max},"ignore_eos":true{extra}}}"#
    )
}

/// The data events of a stream as JSON, `[DONE]` left out.
fn events(r: &Raw) -> Vec<Value> {
    sse_data(&r.text())
        .iter()
        .filter(|d| d.trim() != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn reasoning_deltas_come_first_in_every_field_style() {
    for field in [
        ReasoningField::Reasoning,
        ReasoningField::ReasoningContent,
        ReasoningField::Both,
    ] {
        let s = reasoning_server(3, field, None).await;
        let body = chat(
            5,
            r#","stream":true,"stream_options":{"include_usage":true,"continuous_usage_stats":true}"#,
        );
        let ev = events(&post(&s, "/v1/chat/completions", &body).await);
        // role chunk, 5 tokens, final usage
        assert_eq!(ev.len(), 7, "{field:?}");
        for (i, e) in ev[1..6].iter().enumerate() {
            let delta = e["choices"][0]["delta"].as_object().unwrap();
            let keys: Vec<&str> = delta.keys().map(String::as_str).collect();
            if i < 3 {
                let want: Vec<&str> = match field {
                    ReasoningField::Reasoning => vec!["reasoning"],
                    ReasoningField::ReasoningContent => vec!["reasoning_content"],
                    ReasoningField::Both => vec!["reasoning", "reasoning_content"],
                };
                assert_eq!(keys, want, "token {i}");
                let texts: Vec<&Value> = delta.values().collect();
                assert!(
                    texts
                        .iter()
                        .all(|t| *t == texts[0] && t.as_str().unwrap().starts_with(' '))
                );
            } else {
                assert_eq!(keys, ["content"], "token {i}");
            }
            let usage = &e["usage"];
            assert_eq!(usage["completion_tokens"], i as u64 + 1);
            let reasoning = (i as u64 + 1).min(3);
            assert_eq!(
                usage["completion_tokens_details"]["reasoning_tokens"],
                reasoning
            );
        }
        assert_eq!(
            ev[6]["usage"]["completion_tokens_details"]["reasoning_tokens"],
            3
        );
        s.shutdown().await.unwrap();
    }
}

#[tokio::test]
async fn short_answers_only_reason_and_requests_can_turn_it_off() {
    let s = reasoning_server(8, ReasoningField::Reasoning, None).await;
    let ev = events(&post(&s, "/v1/chat/completions", &chat(4, r#","stream":true"#)).await);
    assert_eq!(ev.len(), 5);
    assert!(
        ev[1..]
            .iter()
            .all(|e| e["choices"][0]["delta"].get("reasoning").is_some())
    );
    assert_eq!(ev[4]["choices"][0]["finish_reason"], "length");

    for off in [
        r#","chat_template_kwargs":{"enable_thinking":false}"#,
        r#","chat_template_kwargs":{"thinking":false}"#,
    ] {
        let body = chat(
            3,
            &format!(r#","stream":true,"stream_options":{{"include_usage":true}}{off}"#),
        );
        let ev = events(&post(&s, "/v1/chat/completions", &body).await);
        assert!(
            ev[1..4]
                .iter()
                .all(|e| e["choices"][0]["delta"].get("content").is_some()),
            "{off}"
        );
        assert_eq!(
            ev[4]["usage"]["completion_tokens_details"]["reasoning_tokens"],
            0
        );
    }
    let r = post(
        &s,
        "/v1/chat/completions",
        &chat(3, r#","chat_template_kwargs":7"#),
    )
    .await;
    assert_eq!(r.status, 400);

    // Completions never reason.
    let r = post(
        &s,
        "/v1/completions",
        r#"{"prompt":"a b","max_tokens":2,"stream":true}"#,
    )
    .await;
    let ev = events(&r);
    assert!(ev.iter().all(|e| e["choices"][0]["text"].is_string()));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn whole_answers_carry_both_texts() {
    let s = reasoning_server(2, ReasoningField::Both, None).await;
    let v = post(&s, "/v1/chat/completions", &chat(5, "")).await.json();
    let m = &v["choices"][0]["message"];
    let reasoning = m["reasoning"].as_str().unwrap();
    assert_eq!(m["reasoning_content"], m["reasoning"]);
    assert_eq!(reasoning.split_whitespace().count(), 2);
    assert_eq!(m["content"].as_str().unwrap().split_whitespace().count(), 3);
    assert_eq!(
        v["usage"]["completion_tokens_details"]["reasoning_tokens"],
        2
    );
    // All reasoning: no answer.
    let v = post(&s, "/v1/chat/completions", &chat(2, "")).await.json();
    assert!(v["choices"][0]["message"]["content"].is_null());
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn truth_log_has_reasoning_tokens_and_first_answer_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("truth.jsonl");
    let s = reasoning_server(3, ReasoningField::Reasoning, Some(&path)).await;
    for max in [5, 2] {
        let r = post(&s, "/v1/chat/completions", &chat(max, r#","stream":true"#)).await;
        assert_eq!(r.status, 200);
    }
    s.shutdown().await.unwrap();
    let mut recs = read_truth_log(&path).unwrap();
    recs.sort_by_key(|r| r.seq);
    let (five, two) = (&recs[0], &recs[1]);
    assert_eq!((five.output_tokens, five.reasoning_tokens), (5, 3));
    assert_eq!(five.first_token_ns, Some(five.token_ns[0]));
    assert_eq!(five.first_answer_ns, Some(five.token_ns[3]));
    assert_eq!((two.output_tokens, two.reasoning_tokens), (2, 2));
    assert_eq!(two.first_answer_ns, None);
}
