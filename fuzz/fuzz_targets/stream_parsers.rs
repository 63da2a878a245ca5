//! Every response parser of the replayer (`replayer::decode`): SSE and NUL framing with
//! each dialect's stream decoder (tgi, vllm, lightllm, openai, openai-chat), the
//! non-streamed answer parsers and the error-body reader. Control bytes in front of the
//! body pick the backend, the request facts and the chunk boundaries (see
//! `llmib_fuzz::StreamCase`). A streamed body must decode the same whatever the chunks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmib_fuzz::{StreamCase, check_accum, cut_points, decode_streamed, summary};
use replayer::adapter::{Accum, ERROR_LIMIT};
use replayer::decode::{error_body_message, parse_answer};

fuzz_target!(|data: &[u8]| {
    let Some((case, body)) = StreamCase::parse(data) else {
        return;
    };
    if case.streamed {
        let whole = decode_streamed(&case, &[body]);
        check_accum(&whole, true);
        let mut parts = Vec::new();
        let mut prev = 0;
        for c in cut_points(body.len(), case.cut_seed) {
            parts.push(&body[prev..c]);
            prev = c;
        }
        parts.push(&body[prev..]);
        let chunked = decode_streamed(&case, &parts);
        assert_eq!(
            summary(&chunked),
            summary(&whole),
            "result depends on chunking"
        );
    } else {
        let mut acc = Accum::default();
        parse_answer(case.backend, body, 7, &case.ctx, &mut acc);
        check_accum(&acc, false);
        llmib_fuzz::assert_one_line(&error_body_message(body), ERROR_LIMIT + 3);
    }
});
