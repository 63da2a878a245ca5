//! Decoder tests on the bodies of `tests/fixtures/reconstructed/` (written from each
//! server's own source; see that directory's README) and the real llama-server native
//! capture: every body split at every byte boundary (and in three pieces) must decode
//! to the outcome and token count its server's source says.

use crate::decode::tests::{CTX, Result, check_splits, run};
use crate::dialect::adapter::{Accum, Decoder, ReqCtx};
use crate::dialect::{anthropic, llamacpp, openai, responses, sglang};

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/reconstructed/", $name))
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
        assert!(crate::dialect::adapter::error_message(body).contains(text));
    }
}

#[test]
fn llama_cpp_native_capture_counts_tokens_predicted() {
    let body = include_bytes!("../../tests/fixtures/llama.cpp/native_completion_stream.body");
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
    let body = include_bytes!("../../tests/fixtures/llama.cpp/native_completion_stream.body");
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

// The original benchmark's servers, from their source (`/work/shared` reconstructions,
// copied here): prompt "Hello, my name is", 3 output tokens.

const ORIGINAL: ReqCtx = ReqCtx {
    max_tokens: 3,
    prompt_bytes: "Hello, my name is".len(),
    ignore_eos_sent: true,
};

fn tgi() -> Box<dyn Decoder> {
    Box::new(crate::dialect::tgi::StreamDecoder)
}

fn lightllm() -> Box<dyn Decoder> {
    Box::new(crate::dialect::lightllm::StreamDecoder::default())
}

#[test]
fn tgi_1_0_2_streams() {
    let ctx = ReqCtx {
        ignore_eos_sent: false,
        ..ORIGINAL
    };
    let r = check_splits(
        fixture!("tgi-1.0.2_generate_stream.body"),
        false,
        &tgi,
        &ctx,
    );
    ok(&r);
    assert_eq!(r.tokens, vec![1, 1, 1]);
    assert_eq!(r.method, Some("per_event"));
    assert_eq!(r.server_output, Some(3));
    assert_eq!(r.finish.as_deref(), Some("length"));
    let r = check_splits(
        fixture!("tgi-1.0.2_generate_stream_eos.body"),
        false,
        &tgi,
        &ctx,
    );
    ok(&r);
    assert_eq!(r.tokens, vec![1, 1, 1], "the EOS token is an event");
    assert_eq!(r.finish.as_deref(), Some("eos_token"));
    let body = fixture!("tgi-1.0.2_generate_stream_error_after_tokens.body");
    let r = check_splits(body, false, &tgi, &ctx);
    assert_eq!(r.tokens, vec![1], "the token before the error is kept");
    assert_eq!(
        r.server_error.as_deref(),
        Some("Request failed during generation: Server error: CUDA out of memory")
    );
}

#[test]
fn vllm_28873a2_both_separators() {
    let make =
        || -> Box<dyn Decoder> { Box::new(crate::dialect::vllm::StreamDecoder::new(&ORIGINAL)) };
    for body in [
        &fixture!("vllm-28873a2_generate_stream.body")[..],
        fixture!("vllm-9e37266_generate_stream_newline.body"),
    ] {
        let r = check_splits(body, true, &make, &ORIGINAL);
        ok(&r);
        // " John", " and", " I": 3 tokens by contract, split by new text bytes.
        assert_eq!(r.tokens, vec![1, 1, 1]);
        assert_eq!(r.method, Some("assumed_max_tokens"));
    }
    let mut acc = Accum::default();
    crate::dialect::vllm::parse_answer(
        fixture!("vllm-28873a2_generate.body"),
        4,
        &ORIGINAL,
        &mut acc,
    );
    assert!(acc.complete && acc.server_error.is_none());
    assert_eq!(acc.output_tokens, Some(3));
    assert_eq!(acc.method, Some("assumed_max_tokens"));
}

#[test]
fn lightllm_718e6d6() {
    let r = check_splits(
        fixture!("lightllm-718e6d6_generate_stream.body"),
        false,
        &lightllm,
        &ORIGINAL,
    );
    ok(&r);
    assert_eq!(r.tokens, vec![1, 1, 1]);
    assert_eq!(r.method, Some("per_event"));
    assert!(r.flags.is_empty());
    let mut acc = Accum::default();
    crate::dialect::lightllm::parse_answer(
        fixture!("lightllm-718e6d6_generate.body"),
        4,
        &ORIGINAL,
        &mut acc,
    );
    assert!(acc.complete && acc.server_error.is_none());
    assert_eq!(acc.output_tokens, Some(3));
    assert_eq!(acc.method, Some("assumed_max_tokens"));
}

#[test]
fn lightllm_lost_event_counted_by_contract() {
    // The server kept only the latest undelivered token: " and" was never sent.
    let body = fixture!("lightllm-718e6d6_generate_stream.body");
    let text = std::str::from_utf8(body).unwrap();
    let lost: String = text
        .split_inclusive("\n\n")
        .filter(|e| !e.contains("\" and\""))
        .collect();
    let r = check_splits(lost.as_bytes(), false, &lightllm, &ORIGINAL);
    ok(&r);
    assert_eq!(r.tokens.iter().sum::<u32>(), 3);
    assert_eq!(r.tokens.len(), 2);
    assert_eq!(r.method, Some("assumed_max_tokens"));
    assert_eq!(r.flags, vec!["events_lost"]);
}

#[test]
fn lightllm_current_counts_inside_token() {
    // Current LightLLM: cumulative counts inside `token`, `finished` at the top level;
    // the second event covers two tokens (the first of them was never sent).
    let body = b"data:{\"token\": {\"id\": 2259, \"text\": \" John\", \"logprob\": -1.5, \"special\": false, \"count_output_tokens\": 1, \"prompt_tokens\": 6}, \"generated_text\": null, \"finished\": false, \"finish_reason\": null, \"details\": null}\n\n\
data:{\"token\": {\"id\": 306, \"text\": \" I\", \"logprob\": -0.25, \"special\": false, \"count_output_tokens\": 3, \"prompt_tokens\": 6}, \"generated_text\": null, \"finished\": true, \"finish_reason\": \"length\", \"details\": null}\n\n";
    let r = check_splits(body, false, &lightllm, &ORIGINAL);
    ok(&r);
    assert_eq!(r.tokens, vec![1, 2]);
    assert_eq!(r.method, Some("usage_delta"));
    assert_eq!(r.server_prompt, Some(6));
    assert_eq!(r.finish.as_deref(), Some("length"));
    assert!(r.flags.is_empty(), "exact: nothing to flag");
}

/// A real vLLM 0.32 capture of `tests/fixtures/vllm-0.32/`.
macro_rules! vllm032 {
    ($name:literal) => {
        include_bytes!(concat!("../../tests/fixtures/vllm-0.32/", $name))
    };
}

/// The body cut after each event, so that event `i` arrives at time `i`.
fn one_event_per_part(body: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut start = 0;
    while let Some(k) = body[start..].windows(2).position(|w| w == b"\n\n") {
        parts.push(&body[start..start + k + 2]);
        start += k + 2;
    }
    parts.push(&body[start..]);
    parts
}

/// `n` tokens, one per event, each at its own part's time (`first` for the first).
fn assert_one_token_per_event(r: &Result, n: u32, first: u64) {
    ok(r);
    assert_eq!(r.tokens, vec![1; n as usize], "{r:?}");
    assert_eq!(r.output, Some(n));
    assert_eq!(r.server_output, Some(n));
    let times: Vec<u64> = (first..first + n as u64).collect();
    assert_eq!(r.times, times);
}

fn ctx(max_tokens: u32) -> ReqCtx {
    ReqCtx { max_tokens, ..CTX }
}

#[test]
fn vllm_empty_text_events_are_tokens() {
    // 64 tokens; events 43 and 59 are `"text": ""` (tokens ending inside a UTF-8
    // character). Before the fix: 62 events, usage spread by text length.
    let body = vllm032!("completions_stream_empty_text.body");
    check_splits(body, false, &oai, &ctx(64));
    let r = run(&one_event_per_part(body), false, oai(), &ctx(64), true);
    assert_one_token_per_event(&r, 64, 0);
    assert_eq!(r.method, Some("final_usage"));
}

#[test]
fn vllm_an_empty_first_token_is_the_first_token() {
    // TTFT is the first token's time even when its text is empty.
    let body = vllm032!("completions_stream_empty_first.body");
    check_splits(body, false, &oai, &ctx(16));
    let r = run(&one_event_per_part(body), false, oai(), &ctx(16), true);
    assert_one_token_per_event(&r, 16, 0);
}

#[test]
fn vllm_an_empty_last_token_with_the_finish_reason_is_a_token() {
    // The 44th and last token is `"text": ""` with `finish_reason: length`; the usage
    // chunk (44) says it was a token, unlike llama.cpp's final empty chunk.
    let body = vllm032!("completions_stream_empty_last.body");
    check_splits(body, false, &oai, &ctx(44));
    let r = run(&one_event_per_part(body), false, oai(), &ctx(44), true);
    assert_one_token_per_event(&r, 44, 0);
}

#[test]
fn vllm_chat_empty_content_deltas_are_tokens_and_the_role_chunk_is_not() {
    let body = vllm032!("chat_stream_empty_content.body");
    check_splits(body, false, &oai, &ctx(64));
    let r = run(&one_event_per_part(body), false, oai(), &ctx(64), true);
    // Part 0 is the role chunk: the first token is part 1.
    assert_one_token_per_event(&r, 64, 1);
}

/// One tool call whose arguments parse as JSON, its first argument token at `first`,
/// all `tokens` of the answer its arguments'.
fn assert_one_valid_call(r: &Result, first: u64, tokens: u32) {
    let t = r.tools;
    assert_eq!(
        (t.tool_calls, t.tool_calls_valid),
        (Some(1), Some(1)),
        "{r:?}"
    );
    assert_eq!(t.first_tool_ns, Some(first));
    assert_eq!(t.tool_tokens, Some(tokens));
}

fn responses() -> Box<dyn Decoder> {
    Box::new(responses::StreamDecoder::default())
}

fn anthropic() -> Box<dyn Decoder> {
    Box::new(anthropic::StreamDecoder::default())
}

/// A stream whose deltas skip the tokens without text (vLLM's Responses and Messages
/// routes): complete, the usage's count spread over the deltas, the first token at the
/// first delta's part.
fn assert_usage_counted(r: &Result, total: u32, events: usize, first: u64, finish: &str) {
    ok(r);
    assert_eq!(r.server_output, Some(total), "{r:?}");
    assert_eq!(r.output, Some(total), "{r:?}");
    assert_eq!(r.tokens.len(), events, "{r:?}");
    assert_eq!(r.tokens.iter().sum::<u32>(), total);
    assert_eq!(r.method, Some("final_usage"));
    assert_eq!(r.times.first(), Some(&first), "{r:?}");
    assert_eq!(r.finish.as_deref(), Some(finish));
}

#[test]
fn vllm_responses_stream_counts_the_usage_over_its_text_deltas() {
    // 16 tokens in 14 `response.output_text.delta` events (two tokens ended inside a
    // UTF-8 character); created, in_progress, output_item and content_part come first.
    let body = vllm032!("responses_stream.body");
    check_splits(body, false, &responses, &ctx(16));
    let r = run(
        &one_event_per_part(body),
        false,
        responses(),
        &ctx(16),
        true,
    );
    assert_usage_counted(&r, 16, 14, 4, "length");
    assert_eq!(r.server_prompt, Some(21));
    assert_eq!(r.tools.tool_calls, None);
}

#[test]
fn vllm_responses_tool_call_arguments_are_the_output() {
    // A forced call: 17 `response.function_call_arguments.delta` events, 18 tokens.
    let body = vllm032!("responses_tool_stream.body");
    check_splits(body, false, &responses, &ctx(48));
    let r = run(
        &one_event_per_part(body),
        false,
        responses(),
        &ctx(48),
        true,
    );
    assert_usage_counted(&r, 18, 17, 3, "stop");
}

#[test]
fn vllm_messages_stream_counts_the_usage_over_its_text_deltas() {
    let body = vllm032!("messages_stream.body");
    check_splits(body, false, &anthropic, &ctx(16));
    let r = run(
        &one_event_per_part(body),
        false,
        anthropic(),
        &ctx(16),
        true,
    );
    let deltas = body
        .windows(19)
        .filter(|w| w == b"content_block_delta")
        .count()
        / 2;
    assert_usage_counted(&r, 16, deltas, 2, "length");
    assert_eq!(r.server_prompt, Some(20));
}

#[test]
fn vllm_messages_tool_use_input_json_deltas_are_the_output() {
    let body = vllm032!("messages_tool_stream.body");
    check_splits(body, false, &anthropic, &ctx(48));
    let r = run(
        &one_event_per_part(body),
        false,
        anthropic(),
        &ctx(48),
        true,
    );
    assert_usage_counted(&r, 18, 17, 2, "tool_use");
}

#[test]
fn vllm_chat_tool_call_argument_deltas_are_tokens() {
    // Role chunk, then 18 argument deltas, one token each, the first one naming the
    // function too. Before the fix: no event at all (TTFT missing).
    let body = vllm032!("chat_tool_stream.body");
    check_splits(body, false, &oai, &ctx(48));
    let r = run(&one_event_per_part(body), false, oai(), &ctx(48), true);
    assert_one_token_per_event(&r, 18, 1);
    assert_one_valid_call(&r, 1, 18);
}

#[test]
fn vllm_chat_json_schema_stream_counts_its_usage() {
    // 18 tokens in 17 content deltas (vLLM sent none for one of them, even empty):
    // the usage's count, spread by text.
    let body = vllm032!("chat_json_schema_stream.body");
    check_splits(body, false, &oai, &ctx(48));
    let r = run(&one_event_per_part(body), false, oai(), &ctx(48), true);
    assert_usage_counted(&r, 18, 17, 1, "stop");
}

#[test]
fn vllm_whole_responses_and_messages_answers() {
    let mut acc = Accum::default();
    responses::parse_answer(vllm032!("responses.body"), 5, &ctx(16), &mut acc);
    assert!(acc.complete && acc.server_error.is_none());
    assert_eq!(
        (acc.output_tokens, acc.server_prompt_tokens),
        (Some(16), Some(21))
    );
    assert_eq!(acc.finish_reason.as_deref(), Some("length"));
    let mut acc = Accum::default();
    anthropic::parse_answer(vllm032!("messages.body"), 5, &ctx(16), &mut acc);
    assert!(acc.complete && acc.server_error.is_none());
    assert_eq!(
        (acc.output_tokens, acc.server_prompt_tokens),
        (Some(16), Some(20))
    );
    assert_eq!(acc.events.t_ns, vec![5]);
    let mut acc = Accum::default();
    openai::parse_answer(vllm032!("chat_tool.body"), 5, &ctx(48), &mut acc);
    assert_eq!(acc.output_tokens, Some(18));
    let t = acc.tools.fields(&acc.events);
    assert_eq!((t.tool_calls, t.tool_calls_valid), (Some(1), Some(1)));
    // An error body of the Messages route reads as the server's message.
    let m = crate::dialect::adapter::error_message(vllm032!("messages_too_long.body"));
    assert!(
        m.starts_with("max_completion_tokens=4000 cannot be greater"),
        "{m}"
    );
}
