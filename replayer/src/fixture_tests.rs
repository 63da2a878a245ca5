//! Decoder tests on the bodies of `tests/fixtures/reconstructed/` (written from each
//! server's own source; see that directory's README) and the real llama-server native
//! capture: every body split at every byte boundary (and in three pieces) must decode
//! to the outcome and token count its server's source says.

use crate::adapter::{Accum, Decoder, ReqCtx};
use crate::tests::{CTX, Result, check_splits, run};
use crate::{llamacpp, openai, sglang};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../tests/fixtures/reconstructed/", $name))
    };
}

fn sgl() -> Box<dyn Decoder> {
    Box::new(sglang::StreamDecoder::default())
}

fn llama() -> Box<dyn Decoder> {
    Box::new(llamacpp::StreamDecoder::default())
}

fn oai() -> Box<dyn Decoder> {
    Box::new(openai::StreamDecoder::default())
}

fn ok(r: &Result) {
    assert!(
        r.complete && r.server_error.is_none() && !r.protocol_error,
        "{r:?}"
    );
}

#[test]
fn sglang_stream_counts_completion_token_increases() {
    let r = check_splits(fixture!("sglang_generate_stream.body"), false, &sgl, &CTX);
    ok(&r);
    assert_eq!(r.tokens, vec![1, 1, 1]);
    assert_eq!(r.method, Some("usage_delta"));
    assert_eq!(r.output, Some(3));
    assert_eq!(r.server_output, Some(3));
    assert_eq!(r.server_prompt, Some(6));
    assert_eq!(r.finish.as_deref(), Some("length"));
}

#[test]
fn sglang_stream_interval_events_carry_several_tokens() {
    let body = fixture!("sglang_generate_stream_interval2.body");
    let r = check_splits(body, false, &sgl, &CTX);
    ok(&r);
    assert_eq!(
        r.tokens,
        vec![1, 2, 2],
        "exact per event, not one per event"
    );
    assert_eq!(r.output, Some(5));
}

#[test]
fn sglang_eos_token_counts_without_text() {
    let r = check_splits(
        fixture!("sglang_generate_stream_eos.body"),
        false,
        &sgl,
        &CTX,
    );
    ok(&r);
    assert_eq!(r.tokens, vec![1, 1]);
    assert_eq!(r.finish.as_deref(), Some("stop"), "early stop visible");
}

#[test]
fn sglang_errors_in_a_200_stream() {
    let r = check_splits(
        fixture!("sglang_generate_stream_error.body"),
        false,
        &sgl,
        &CTX,
    );
    assert!(r.tokens.is_empty());
    assert!(
        r.server_error
            .as_deref()
            .unwrap()
            .starts_with("Requested token count exceeds"),
        "{r:?}"
    );
    let r = check_splits(
        fixture!("sglang_generate_stream_abort.body"),
        false,
        &sgl,
        &CTX,
    );
    assert_eq!(r.tokens, vec![1], "what arrived is kept");
    assert_eq!(r.finish.as_deref(), Some("abort"));
    assert!(
        r.server_error
            .as_deref()
            .unwrap()
            .starts_with("Abort request")
    );
}

#[test]
fn sglang_stream_cut_before_the_end_is_incomplete() {
    let body = fixture!("sglang_generate_stream.body");
    let cut = &body[..body.len() / 2];
    let r = run(&[cut], false, sgl(), &CTX, true);
    assert!(!r.complete && r.server_error.is_none());
}

#[test]
fn sglang_answers_and_error_bodies() {
    let mut acc = Accum::default();
    sglang::parse_answer(fixture!("sglang_generate.body"), 5, &CTX, &mut acc);
    assert!(acc.complete && acc.server_error.is_none());
    assert_eq!(acc.output_tokens, Some(3));
    assert_eq!(acc.method, Some("final_usage"));
    assert_eq!(acc.server_prompt_tokens, Some(6));
    assert_eq!(acc.events.t_ns, vec![5]);
    for (body, text) in [
        (
            &fixture!("sglang_error_too_long.body")[..],
            "Requested token count",
        ),
        (fixture!("sglang_error_validation.body"), "bool_parsing"),
    ] {
        assert!(crate::adapter::error_message(body).contains(text));
    }
}

#[test]
fn llama_cpp_native_capture_counts_tokens_predicted() {
    let body = include_bytes!("../tests/fixtures/llama.cpp/native_completion_stream.body");
    let r = check_splits(body, false, &llama, &CTX);
    ok(&r);
    assert_eq!(r.tokens, vec![1; 8], "the final event carries no token");
    assert_eq!(r.method, Some("usage_delta"));
    assert_eq!(r.server_output, Some(8));
    assert_eq!(r.server_prompt, Some(14));
    assert_eq!(r.finish.as_deref(), Some("limit"));
}

#[test]
fn llama_cpp_held_back_utf8_makes_a_two_token_event() {
    let body = fixture!("llamacpp_completion_stream_multibyte.body");
    let r = check_splits(body, false, &llama, &CTX);
    ok(&r);
    assert_eq!(r.tokens, vec![1, 2, 1]);
    assert_eq!(r.output, Some(4));
}

#[test]
fn llama_cpp_stream_errors_in_both_forms() {
    for body in [
        &fixture!("llamacpp_completion_stream_error.body")[..],
        fixture!("llamacpp_completion_stream_error_field.body"),
    ] {
        let r = check_splits(body, false, &llama, &CTX);
        assert_eq!(r.tokens, vec![1, 1]);
        assert_eq!(r.server_error.as_deref(), Some("context shift is disabled"));
        assert!(!r.complete);
    }
}

#[test]
fn llama_cpp_stream_without_final_event_is_incomplete() {
    let body = include_bytes!("../tests/fixtures/llama.cpp/native_completion_stream.body");
    let end = body
        .windows(13)
        .rposition(|w| w == b"data: {\"index")
        .unwrap();
    let r = check_splits(&body[..end], false, &llama, &CTX);
    assert_eq!(r.tokens, vec![1; 8]);
    assert!(!r.complete);
}

#[test]
fn llama_cpp_answer() {
    let mut acc = Accum::default();
    llamacpp::parse_answer(fixture!("llamacpp_completion.body"), 9, &CTX, &mut acc);
    assert!(acc.complete && acc.server_error.is_none());
    assert_eq!(acc.output_tokens, Some(8));
    assert_eq!(acc.method, Some("final_usage"));
    assert_eq!(acc.finish_reason.as_deref(), Some("limit"));
    let mut acc = Accum::default();
    llamacpp::parse_answer(
        br#"{"index":0,"content":"x","stop":false}"#,
        9,
        &CTX,
        &mut acc,
    );
    assert!(acc.protocol_error.is_some(), "a partial is no answer");
}

#[test]
fn vllm_openai_continuous_usage() {
    let no_eos = ReqCtx {
        ignore_eos_sent: false,
        ..CTX
    };
    let body = fixture!("vllm-openai_completions_stream_continuous_usage.body");
    let r = check_splits(body, false, &oai, &no_eos);
    ok(&r);
    assert_eq!(r.tokens, vec![1, 1, 1]);
    assert_eq!(r.method, Some("usage_delta"));
    assert_eq!(r.server_prompt, Some(6));
    let body = fixture!("vllm-openai_completions_stream_continuous_usage_coalesced.body");
    let r = check_splits(body, false, &oai, &no_eos);
    ok(&r);
    assert_eq!(r.tokens, vec![1, 2]);
    assert_eq!(r.output, Some(3));
}
