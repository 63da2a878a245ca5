//! The prefix cache as clients see it: OpenAI usage `prompt_tokens_details.cached_tokens`,
//! SGLang `meta_info.cached_tokens`, and the truth log's `cached_tokens`, on `tiny`
//! (block size 16, prefix caching on).

use crate::common;
use common::*;
use simulator::truth::read_truth_log;
use simulator::{Dialect, Profile, SimConfig};

fn words(tag: &str, n: usize) -> String {
    (0..n)
        .map(|i| format!("{tag}{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test]
async fn openai_reports_cached_prompt_tokens_as_the_truth_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.jsonl");
    let mut cfg = SimConfig::new(Dialect::Openai, Profile::builtin("tiny").unwrap());
    cfg.truth_log = Some(path.clone());
    let s = simulator::start(cfg).await.unwrap();
    let shared = words("w", 64);
    let completion = |p: &str| format!(r#"{{"prompt":"{p}","max_tokens":2,"ignore_eos":true}}"#);
    let cached = |r: &Raw| r.json()["usage"]["prompt_tokens_details"]["cached_tokens"].clone();
    let r = post(&s, "/v1/completions", &completion(&shared)).await;
    assert_eq!(cached(&r), 0);
    // Whole prompt cached: the last block is recomputed (at least one token is).
    let r = post(&s, "/v1/completions", &completion(&shared)).await;
    assert_eq!(cached(&r), 48);
    // 40 shared words: 2 full blocks.
    let p = format!("{} {}", words("w", 40), words("x", 30));
    let r = post(&s, "/v1/completions", &completion(&p)).await;
    assert_eq!(cached(&r), 32);
    // Chat hashes roles: the same words as a user message share nothing with the
    // completion prompt, but a second identical chat does.
    let chat = format!(
        r#"{{"messages":[{{"role":"user","content":"{shared}"}}],"max_tokens":2,"stream":true,"stream_options":{{"include_usage":true}}}}"#
    );
    for expect in [0, 48] {
        let r = post(&s, "/v1/chat/completions", &chat).await;
        let ev = sse_data(&r.text());
        let usage: serde_json::Value = serde_json::from_str(&ev[ev.len() - 2]).unwrap();
        assert_eq!(
            usage["usage"]["prompt_tokens_details"]["cached_tokens"],
            expect
        );
    }
    s.shutdown().await.unwrap();
    let mut recs = read_truth_log(&path).unwrap();
    recs.sort_by_key(|r| r.seq);
    let got: Vec<u32> = recs.iter().map(|r| r.cached_tokens).collect();
    assert_eq!(got, [0, 48, 32, 0, 48]);
}

#[tokio::test]
async fn sglang_meta_info_cached_tokens() {
    let s = start(Dialect::Sglang, "tiny").await;
    let body = format!(
        r#"{{"text":"{}","sampling_params":{{"max_new_tokens":2,"ignore_eos":true}}}}"#,
        words("s", 33)
    );
    let first = post(&s, "/generate", &body).await.json();
    let second = post(&s, "/generate", &body).await.json();
    assert_eq!(first["meta_info"]["cached_tokens"], 0);
    assert_eq!(second["meta_info"]["cached_tokens"], 32);
}

#[tokio::test]
async fn no_prefix_cache_no_details() {
    let s = start(Dialect::Openai, "a800-llama2-13b").await;
    let body = format!(r#"{{"prompt":"{}","max_tokens":1}}"#, words("w", 40));
    for _ in 0..2 {
        let r = post(&s, "/v1/completions", &body).await;
        assert!(r.json()["usage"].get("prompt_tokens_details").is_none());
    }
}
