//! Differential tests: the SGLang event scanner against serde_json on generated events
//! and byte-level mutations of them (see `openai_fast_tests.rs`).

use proptest::prelude::*;

use super::*;
use crate::dialect::scan::strategies::{edits, json_string, mutate, object, opt_str, scalar, ws};

fn check(data: &[u8]) -> Result<bool, TestCaseError> {
    let Ok(fast) = Facts::fast(data) else {
        return Ok(false);
    };
    let text = String::from_utf8_lossy(data);
    match Facts::reference(data) {
        Ok(slow) => {
            prop_assert!(fast.error.is_none() && fast.finish.is_none(), "{}", text);
            prop_assert_eq!(fast, slow, "{}", text);
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
    let finish = prop_oneof![
        Just("null".to_string()),
        Just("{\"type\":\"length\",\"length\":16}".to_string()),
        Just("{\"type\":\"stop\",\"matched\":2}".to_string()),
        Just("{\"type\":\"abort\",\"message\":\"boom\",\"status_code\":400}".to_string()),
        Just("\"length\"".to_string()),
        scalar(),
    ]
    .boxed();
    let meta = object(vec![
        ("id".into(), json_string().boxed()),
        ("finish_reason".into(), finish),
        ("prompt_tokens".into(), scalar().boxed()),
        (
            "weight_version".into(),
            Just("\"default\"".to_string()).boxed(),
        ),
        ("completion_tokens".into(), scalar().boxed()),
        ("cached_tokens".into(), scalar().boxed()),
        ("e2e_latency".into(), Just("0.25".to_string()).boxed()),
    ]);
    let top = object(vec![
        ("text".into(), opt_str()),
        (
            "output_ids".into(),
            prop_oneof![
                Just("[1,2,3]".to_string()),
                Just("[]".to_string()),
                scalar()
            ]
            .boxed(),
        ),
        (
            "meta_info".into(),
            prop_oneof![meta, Just("null".to_string()), scalar()].boxed(),
        ),
        (
            "error".into(),
            prop_oneof![
                Just("null".to_string()),
                Just("{\"message\":\"bad\"}".to_string())
            ]
            .boxed(),
        ),
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

/// What SGLang sends while generating takes the fast path; the last object, errors and
/// aborts go to serde.
#[test]
fn common_events_take_the_fast_path() {
    for e in [
        r#"{"text":" Paris is","output_ids":[3681,338],"meta_info":{"id":"a1b2","finish_reason":null,"prompt_tokens":6,"weight_version":"default","completion_tokens":2,"cached_tokens":0}}"#,
        r#"{"text":"caf\u00e9\n","output_ids":[5],"meta_info":{"id":"x","finish_reason":null,"prompt_tokens":1,"completion_tokens":1,"cached_tokens":1}}"#,
    ] {
        assert!(check(e.as_bytes()).unwrap(), "missed: {e}");
    }
    let cached = br#"{"text":"x","meta_info":{"finish_reason":null,"prompt_tokens":64,"completion_tokens":1,"cached_tokens":48}}"#;
    assert_eq!(Facts::fast(cached).unwrap().cached_tokens, Some(48));
    for e in [
        r#"{"text":"a","meta_info":{"finish_reason":{"type":"length","length":1},"completion_tokens":1}}"#,
        r#"{"error":{"message":"The input (9000 tokens) is longer than the model's context length (4096 tokens)."}}"#,
    ] {
        assert!(Facts::fast(e.as_bytes()).is_err(), "{e}");
    }
    let f = Facts::facts(br#"{"text":"a","meta_info":{"finish_reason":{"type":"abort","message":"out of memory","status_code":500},"completion_tokens":1}}"#).unwrap();
    assert_eq!(f.finish.as_deref(), Some("abort"));
    assert_eq!(f.error.as_deref(), Some("out of memory"));
}
