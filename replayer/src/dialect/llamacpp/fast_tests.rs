//! Differential tests: the llama.cpp event scanner against serde_json on generated
//! events and byte-level mutations of them (see `openai_fast_tests.rs`).

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
            prop_assert!(!fast.stop && fast.error.is_none(), "{}", text);
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
    let top = object(vec![
        ("index".into(), Just("0".to_string()).boxed()),
        ("content".into(), opt_str()),
        (
            "tokens".into(),
            prop_oneof![
                Just("[18253]".to_string()),
                Just("[]".to_string()),
                scalar()
            ]
            .boxed(),
        ),
        (
            "stop".into(),
            prop_oneof![
                Just("false".to_string()),
                Just("true".to_string()),
                Just("null".to_string()),
                scalar()
            ]
            .boxed(),
        ),
        ("id_slot".into(), Just("-1".to_string()).boxed()),
        ("tokens_predicted".into(), scalar().boxed()),
        ("tokens_evaluated".into(), scalar().boxed()),
        (
            "stop_type".into(),
            prop_oneof![
                Just("\"limit\"".to_string()),
                Just("null".to_string()),
                json_string()
            ]
            .boxed(),
        ),
        (
            "timings".into(),
            Just("{\"prompt_n\":1,\"prompt_ms\":1.843,\"predicted_n\":8}".to_string()).boxed(),
        ),
        (
            "error".into(),
            prop_oneof![
                Just("null".to_string()),
                Just("{\"code\":500,\"message\":\"boom\",\"type\":\"server_error\"}".to_string())
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

/// Every token event of the captured llama-server stream takes the fast path; its final
/// event and errors go to serde.
#[test]
fn captured_token_events_take_the_fast_path() {
    let body = include_str!("../../../tests/fixtures/llama.cpp/native_completion_stream.body");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.len(), 9);
    for e in &events[..8] {
        assert!(check(e.as_bytes()).unwrap(), "missed: {e}");
    }
    assert!(Facts::fast(events[8].as_bytes()).is_err(), "final event");
    let f = Facts::facts(events[8].as_bytes()).unwrap();
    assert!(f.stop);
    assert_eq!(f.stop_type.as_deref(), Some("limit"));
    assert_eq!(f.tokens_predicted, Some(8));
    assert_eq!(f.tokens_evaluated, Some(14));
    let err = br#"{"error":{"code":500,"message":"slot unavailable","type":"server_error"}}"#;
    assert!(Facts::fast(err).is_err());
    assert_eq!(
        Facts::facts(err).unwrap().error.as_deref(),
        Some("slot unavailable")
    );
}
