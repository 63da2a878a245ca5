//! Differential tests: the TGI/LightLLM event scanner against serde_json on generated
//! events and byte-level mutations of them (see `openai_fast_tests.rs`).

use proptest::prelude::*;

use super::*;
use crate::dialect::scan::strategies::{edits, json_string, mutate, object, opt_str, scalar, ws};

type Key = (
    Option<(Option<u64>, Option<u64>)>,
    bool,
    Option<(Option<String>, Option<u64>)>,
    Option<String>,
    Option<u64>,
    Option<u64>,
);

fn key(ev: &TokenEvent<'_>) -> Key {
    (
        ev.token
            .as_ref()
            .map(|t| (t.count_output_tokens, t.prompt_tokens)),
        ev.generated_text.is_some(),
        ev.details.as_ref().map(|d| {
            (
                d.finish_reason.as_deref().map(str::to_string),
                d.generated_tokens,
            )
        }),
        ev.finish_reason.as_deref().map(str::to_string),
        ev.count_output_tokens,
        ev.prompt_tokens,
    )
}

fn check(data: &[u8]) -> Result<bool, TestCaseError> {
    let Ok(fast) = TokenEvent::fast(data) else {
        return Ok(false);
    };
    let text = String::from_utf8_lossy(data);
    match serde_json::from_slice::<TokenEvent>(data) {
        Ok(slow) => {
            prop_assert!(fast.error.is_none());
            prop_assert!(
                slow.error.as_ref().is_none_or(|e| e.is_null()),
                "error event: {}",
                text
            );
            prop_assert_eq!(key(&fast), key(&slow), "{}", text);
        }
        Err(e) => {
            return Err(TestCaseError::fail(format!(
                "fast path accepted what serde rejects ({e}): {text}"
            )));
        }
    }
    Ok(true)
}

fn event() -> impl Strategy<Value = String> {
    let token = object(vec![
        ("id".into(), Just("17".to_string()).boxed()),
        ("text".into(), opt_str()),
        ("logprob".into(), scalar().boxed()),
        ("special".into(), Just("false".to_string()).boxed()),
        ("count_output_tokens".into(), scalar().boxed()),
        ("prompt_tokens".into(), scalar().boxed()),
    ]);
    let reason = prop_oneof![
        Just("\"length\"".to_string()),
        Just("\"eos_token\"".to_string()),
        Just("\"l\\u0065ngth\"".to_string()),
        scalar(),
    ]
    .boxed();
    let details = object(vec![
        ("finish_reason".into(), reason.clone()),
        ("generated_tokens".into(), scalar().boxed()),
        ("seed".into(), scalar().boxed()),
        (
            "prefill".into(),
            Just("[{\"id\":1,\"text\":\"a\",\"logprob\":null}]".to_string()).boxed(),
        ),
    ]);
    let top = object(vec![
        (
            "token".into(),
            prop_oneof![token, Just("null".to_string()), scalar()].boxed(),
        ),
        (
            "generated_text".into(),
            prop_oneof![json_string(), Just("null".to_string()), scalar()].boxed(),
        ),
        (
            "details".into(),
            prop_oneof![details, Just("null".to_string())].boxed(),
        ),
        (
            "error".into(),
            prop_oneof![Just("null".to_string()), Just("\"boom\"".to_string())].boxed(),
        ),
        ("error_type".into(), json_string().boxed()),
        ("finish_reason".into(), reason),
        ("count_output_tokens".into(), scalar().boxed()),
        ("prompt_tokens".into(), scalar().boxed()),
    ]);
    (ws(), top, ws()).prop_map(|(a, t, b)| format!("{a}{t}{b}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_agrees_with_serde(e in event()) {
        check(e.as_bytes())?;
    }

    #[test]
    fn fast_path_agrees_with_serde_on_mutations(e in event(), edits in edits()) {
        check(&mutate(e.into_bytes(), edits))?;
    }
}

/// What TGI 1.0 and LightLLM send takes the fast path.
#[test]
fn common_events_take_the_fast_path() {
    for e in [
        r#"{"token":{"id":1,"text":" a","logprob":-0.5,"special":false},"generated_text":null,"details":null}"#,
        r#"{"token":{"id":2,"text":"\n","logprob":0.0,"special":false},"generated_text":"x\ny","details":{"finish_reason":"length","generated_tokens":2,"seed":null}}"#,
        r#"{"token":{"id":3,"text":"b","logprob":-1.0,"special":false},"generated_text":null,"finished":false,"finish_reason":null,"details":null,"count_output_tokens":3,"prompt_tokens":5}"#,
        r#"{"token": {"id": 4, "text": " c", "logprob": -0.5, "special": false, "count_output_tokens": 2, "prompt_tokens": 6}, "generated_text": null, "finished": false, "finish_reason": null, "details": null}"#,
    ] {
        assert!(check(e.as_bytes()).unwrap(), "missed: {e}");
    }
    assert!(TokenEvent::fast(br#"{"error":"boom","error_type":"generation"}"#).is_err());
}
