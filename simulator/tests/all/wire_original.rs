//! The original benchmark's servers as their source writes them, on the paths a test
//! otherwise never sees: TGI's error event after tokens and its keep-alive comments,
//! LightLLM's lost events.

use crate::common;
use common::*;
use simulator::truth::{Outcome, read_truth_log};
use simulator::{Dialect, Faults, Profile, SimConfig};

async fn start_with(
    dialect: Dialect,
    profile: &str,
    tweak: impl FnOnce(&mut SimConfig),
) -> simulator::SimServer {
    let mut cfg = SimConfig::new(dialect, Profile::builtin(profile).unwrap());
    tweak(&mut cfg);
    simulator::start(cfg).await.unwrap()
}

#[tokio::test]
async fn tgi_injected_500_is_an_error_event_before_or_after_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.jsonl");
    let s = start_with(Dialect::Tgi, "tiny", |c| {
        c.faults = Faults {
            http_500: 1.0,
            ..Faults::default()
        };
        c.seed = 5;
        c.truth_log = Some(truth.clone());
    })
    .await;
    let body = format!(
        r#"{{"inputs":"{}","parameters":{{"max_new_tokens":8,"details":true}}}}"#,
        prompt(4)
    );
    let mut before = Vec::new();
    for _ in 0..12 {
        let r = post(&s, "/generate_stream", &body).await;
        assert_eq!(r.status, 200, "errors on a TGI stream come after the 200");
        assert!(r.complete);
        let events = sse_data(&r.text());
        let (last, tokens) = events.split_last().unwrap();
        let v: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["error_type"], "incomplete_generation");
        assert_eq!(v["error"], "Incomplete generation");
        for t in tokens {
            assert!(t.starts_with("{\"token\":"), "{t}");
        }
        assert!(tokens.len() < 8);
        before.push(tokens.len());
    }
    assert!(
        before.contains(&0),
        "some fail before any token: {before:?}"
    );
    assert!(
        before.iter().any(|&k| k > 0),
        "some after tokens: {before:?}"
    );
    // Not streamed: 500 incomplete_generation (TGI's generation errors are 424).
    let r = post(&s, "/generate", &body).await;
    assert_eq!(r.status, 500);
    assert_eq!(r.json()["error_type"], "incomplete_generation");
    s.shutdown().await.unwrap();
    let truth = read_truth_log(&truth).unwrap();
    assert_eq!(truth.len(), 13);
    for t in &truth {
        assert_eq!(t.outcome, Some(Outcome::Http500));
        assert_eq!(t.fault.as_deref(), Some("http_500"));
    }
    let streamed: Vec<u32> = truth
        .iter()
        .filter(|t| t.stream)
        .map(|t| t.output_tokens)
        .collect();
    let mut a = streamed.clone();
    a.sort();
    let mut b: Vec<u32> = before.iter().map(|&k| k as u32).collect();
    b.sort();
    assert_eq!(
        a, b,
        "the truth log counts the tokens written before the error"
    );
    assert!(
        truth
            .iter()
            .filter(|t| t.stream)
            .all(|t| t.http_status == 200)
    );
}

#[tokio::test]
async fn tgi_stream_sends_keep_alive_comments_when_idle() {
    let s = start_with(Dialect::Tgi, "tiny", |c| {
        c.keep_alive = std::time::Duration::from_millis(20);
        c.faults = Faults {
            stall: 1.0,
            stall_ms: 300,
            ..Faults::default()
        };
    })
    .await;
    let body = r#"{"inputs":"a b","parameters":{"max_new_tokens":4}}"#;
    let r = post(&s, "/generate_stream", body).await;
    assert!(r.complete);
    let text = r.text();
    let comments = text.split("\n\n").filter(|e| *e == ":").count();
    assert!(
        comments >= 1,
        "a 300 ms stall with a 20 ms keep-alive: {text:?}"
    );
    let tokens = text
        .split("\n\n")
        .filter(|e| e.starts_with("data:{\"token\""))
        .count();
    assert_eq!(tokens, 4, "comments are not events");
    s.shutdown().await.unwrap();
}

/// The token ids a LightLLM `/generate_stream` of 40 tokens (ignore_eos) sends.
async fn streamed_ids_of_40(s: &simulator::SimServer) -> Vec<u64> {
    let r = post(
        s,
        "/generate_stream",
        r#"{"inputs":"a b c","parameters":{"do_sample":false,"ignore_eos":true,"max_new_tokens":40}}"#,
    )
    .await;
    assert!(r.complete);
    sse_data(&r.text())
        .iter()
        .map(|e| {
            let v: serde_json::Value = serde_json::from_str(e).unwrap();
            v["token"]["id"].as_u64().unwrap()
        })
        .collect()
}

/// The ids of the first request's tokens at these indices.
fn token_ids(indices: impl IntoIterator<Item = u32>) -> Vec<u64> {
    indices
        .into_iter()
        .map(|i| u64::from(simulator::words::token(0, i).0))
        .collect()
}

#[tokio::test]
async fn lightllm_sends_only_the_latest_of_the_tokens_ready_together() {
    // The null profile with no delay makes every token ready at once: the server sends
    // one event per chunk of (at most 16) tokens, the chunk's last, as LightLLM's
    // manager does when the stream falls behind.
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.jsonl");
    let s = start_with(Dialect::Lightllm, "null", |c| {
        c.truth_log = Some(truth.clone())
    })
    .await;
    let expect = token_ids([15, 31, 39]);
    assert_eq!(
        streamed_ids_of_40(&s).await,
        expect,
        "tokens 15, 31 and 39 (the last) are sent"
    );
    s.shutdown().await.unwrap();
    let truth = read_truth_log(&truth).unwrap();
    assert_eq!(
        truth[0].output_tokens, 40,
        "the lost tokens were generated all the same"
    );
}

#[tokio::test]
async fn a_sped_up_lightllm_sends_every_token() {
    // The same tokens, all ready at once, but the profile runs sped up: losing tokens
    // would be an artifact of the real-time handler against a K times faster engine.
    let s = start_with(Dialect::Lightllm, "null", |c| {
        c.profile = c.profile.clone().sped_up(4.0).unwrap()
    })
    .await;
    assert_eq!(streamed_ids_of_40(&s).await, token_ids(0..40));
    s.shutdown().await.unwrap();
}

#[tokio::test]
async fn vllm_newline_separator_ends_each_object_with_a_newline() {
    let s = start_with(Dialect::Vllm, "tiny", |c| {
        c.vllm_separator = simulator::VllmSeparator::Newline;
    })
    .await;
    let p = prompt(4);
    let r = post(
        &s,
        "/generate",
        &format!(r#"{{"prompt":"{p}","stream":true,"max_tokens":6,"ignore_eos":true}}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), None);
    let body = r.text();
    assert!(
        !body.contains('\0'),
        "no NUL in the late-2024 form: {body:?}"
    );
    assert!(body.ends_with("\"]}\n"), "{body:?}");
    let parts: Vec<&str> = body.split_terminator('\n').collect();
    assert_eq!(parts.len(), 6);
    let mut prev = p.clone();
    for part in &parts {
        assert!(part.starts_with("{\"text\": [\""), "{part}");
        let t = serde_json::from_str::<serde_json::Value>(part).unwrap()["text"][0]
            .as_str()
            .unwrap()
            .to_string();
        assert!(t.starts_with(&prev) && t.len() > prev.len());
        prev = t;
    }
    // The prompt-only answer (prompt over max_model_len) uses the same separator.
    let long = prompt(5000);
    let r = post(
        &s,
        "/generate",
        &format!(r#"{{"prompt":"{long}","stream":true,"max_tokens":6}}"#),
    )
    .await;
    assert_eq!(r.status, 200);
    assert!(r.text().ends_with("\"]}\n"));
    assert_eq!(r.text().matches('\n').count(), 1);
    s.shutdown().await.unwrap();
}

#[test]
fn vllm_separator_names() {
    use simulator::VllmSeparator;
    assert_eq!("nul".parse::<VllmSeparator>().unwrap(), VllmSeparator::Nul);
    assert_eq!(
        "newline".parse::<VllmSeparator>().unwrap(),
        VllmSeparator::Newline
    );
    assert!("lf".parse::<VllmSeparator>().is_err());
    assert_eq!(VllmSeparator::default(), VllmSeparator::Nul);
}

#[tokio::test]
async fn tgi_generation_error_is_424_or_an_error_event_after_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let truth = dir.path().join("truth.jsonl");
    let s = start_with(Dialect::Tgi, "tiny", |c| {
        c.faults = Faults {
            generation_error: 1.0,
            ..Faults::default()
        };
        c.seed = 3;
        c.truth_log = Some(truth.clone());
    })
    .await;
    let body = format!(
        r#"{{"inputs":"{}","parameters":{{"max_new_tokens":8,"details":true}}}}"#,
        prompt(4)
    );
    let message = "Request failed during generation: Server error: CUDA out of memory";
    // Not streamed: TGI 1.0.2 maps GenerationError to 424 Failed Dependency.
    let r = post(&s, "/generate", &body).await;
    assert_eq!(r.status, 424);
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"error": message, "error_type": "generation"})
    );
    let mut before = Vec::new();
    for _ in 0..12 {
        let r = post(&s, "/generate_stream", &body).await;
        assert_eq!(r.status, 200);
        assert!(r.complete);
        let events = sse_data(&r.text());
        let (last, tokens) = events.split_last().unwrap();
        let v: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"error": message, "error_type": "generation"})
        );
        assert!(tokens.iter().all(|t| t.starts_with("{\"token\":")));
        before.push(tokens.len() as u32);
    }
    // A uniform number of tokens in [0, 8) before the error.
    assert!(
        before.iter().all(|&k| k < 8) && before.iter().any(|&k| k > 0),
        "{before:?}"
    );
    s.shutdown().await.unwrap();
    let truth = read_truth_log(&truth).unwrap();
    assert_eq!(truth.len(), 13);
    for t in &truth {
        assert_eq!(t.outcome, Some(Outcome::Http424));
        assert_eq!(t.fault.as_deref(), Some("generation_error"));
        assert_eq!(t.http_status, if t.stream { 200 } else { 424 });
    }
    let mut written: Vec<u32> = truth
        .iter()
        .filter(|t| t.stream)
        .map(|t| t.output_tokens)
        .collect();
    written.sort();
    before.sort();
    assert_eq!(written, before);
}

#[tokio::test]
async fn generation_error_is_refused_outside_tgi() {
    let mut cfg = SimConfig::new(Dialect::Vllm, Profile::builtin("tiny").unwrap());
    cfg.faults.generation_error = 0.1;
    let err = simulator::start(cfg).await.err().expect("refused");
    assert!(err.to_string().contains("TGI's"), "{err}");
}

/// The request keys the 2023 servers' `SamplingParams` take, over HTTP: what their
/// source accepts answers 200, a key added in later versions a plain 500.
#[tokio::test]
async fn the_2023_servers_accept_their_sampling_keys_and_refuse_later_ones() {
    let s = start_with(Dialect::Vllm, "tiny", |_| {}).await;
    let ok = r#"{"prompt":"a b","n":1,"best_of":1,"presence_penalty":0.1,"frequency_penalty":0.1,"temperature":0.8,"top_p":0.9,"top_k":5,"use_beam_search":false,"stop":["zz"],"ignore_eos":true,"max_tokens":3,"logprobs":0}"#;
    assert_eq!(post(&s, "/generate", ok).await.status, 200);
    for later in [
        "length_penalty",
        "early_stopping",
        "stop_token_ids",
        "skip_special_tokens",
    ] {
        let body = format!(r#"{{"prompt":"a b","max_tokens":3,"{later}":1}}"#);
        let r = post(&s, "/generate", &body).await;
        assert_eq!(r.status, 500, "vLLM 0.1.4 has no {later}");
        assert_eq!(r.text(), "Internal Server Error");
    }
    s.shutdown().await.unwrap();

    let s = start_with(Dialect::Lightllm, "tiny", |_| {}).await;
    let ok = r#"{"inputs":"a b","stream":true,"parameters":{"do_sample":true,"presence_penalty":0.1,"frequency_penalty":0.1,"temperature":0.8,"top_p":0.9,"top_k":5,"ignore_eos":true,"max_new_tokens":3}}"#;
    assert_eq!(
        post(&s, "/generate", ok).await.status,
        200,
        "unknown top-level keys are ignored"
    );
    for later in ["stop_sequences", "return_details"] {
        let body =
            format!(r#"{{"inputs":"a b","parameters":{{"max_new_tokens":3,"{later}":true}}}}"#);
        assert_eq!(post(&s, "/generate", &body).await.status, 500, "{later}");
        assert_eq!(
            post(&s, "/generate_stream", &body).await.status,
            500,
            "{later}"
        );
    }
    s.shutdown().await.unwrap();
}
