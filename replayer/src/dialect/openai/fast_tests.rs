//! Differential tests: the fast scanner ([`Facts::fast`]) against serde_json
//! ([`Facts::reference`]) on generated OpenAI chunks and byte-level mutations of them. Whenever
//! the fast path answers, serde must give the same facts; the fast path must answer for
//! the common shapes (else it would be no fast path at all).

use proptest::prelude::*;

use super::*;
use crate::dialect::scan::strategies::{json_string, mutate, object, opt_str, scalar, ws};

/// Answer and reasoning text bytes, finish reason, usage counts.
type Key = (usize, usize, Option<String>, Option<Counts>);

/// The facts as comparable plain values.
fn key(f: &Facts<'_>) -> Key {
    (
        f.answer,
        f.reasoning,
        f.finish_reason.as_deref().map(str::to_string),
        f.usage,
    )
}

fn check(data: &[u8]) -> Result<bool, TestCaseError> {
    let Ok(fast) = Facts::fast(data) else {
        return Ok(false);
    };
    match Facts::reference(data) {
        Ok(slow) => prop_assert_eq!(key(&fast), key(&slow), "{}", String::from_utf8_lossy(data)),
        Err(NoFacts::Malformed(e)) => {
            return Err(TestCaseError::fail(format!(
                "fast path accepted what serde rejects ({e}): {}",
                String::from_utf8_lossy(data)
            )));
        }
        Err(NoFacts::ServerError(m)) => {
            return Err(TestCaseError::fail(format!(
                "fast path accepted an error event ({m}): {}",
                String::from_utf8_lossy(data)
            )));
        }
    }
    Ok(true)
}

fn chunk() -> impl Strategy<Value = String> {
    let delta = object(vec![
        ("role".into(), Just("\"assistant\"".to_string()).boxed()),
        ("content".into(), opt_str()),
        ("reasoning".into(), opt_str()),
        ("reasoning_content".into(), opt_str()),
        (
            "tool_calls".into(),
            Just("[{\"id\":\"x\",\"n\":[1,{}]}]".to_string()).boxed(),
        ),
    ]);
    let finish = prop_oneof![
        Just("null".to_string()),
        Just("\"length\"".to_string()),
        Just("\"stop\"".to_string()),
        Just("\"st\\u006fp\"".to_string()),
        scalar(),
    ]
    .boxed();
    let choice = object(vec![
        ("index".into(), Just("0".to_string()).boxed()),
        ("text".into(), opt_str()),
        (
            "delta".into(),
            prop_oneof![delta.clone(), Just("null".to_string())].boxed(),
        ),
        ("message".into(), delta),
        ("logprobs".into(), scalar().boxed()),
        ("finish_reason".into(), finish),
    ]);
    let choices = prop_oneof![
        prop::collection::vec(choice, 0..3).prop_map(|v| format!("[{}]", v.join(","))),
        Just("null".to_string()),
    ]
    .boxed();
    let details = prop_oneof![
        object(vec![
            ("reasoning_tokens".into(), scalar().boxed()),
            ("audio_tokens".into(), scalar().boxed()),
        ]),
        Just("null".to_string()),
        scalar(),
    ]
    .boxed();
    let prompt_details = prop_oneof![
        object(vec![
            ("cached_tokens".into(), scalar().boxed()),
            ("audio_tokens".into(), scalar().boxed()),
        ]),
        Just("null".to_string()),
        scalar(),
    ]
    .boxed();
    let usage = prop_oneof![
        object(vec![
            ("prompt_tokens".into(), scalar().boxed()),
            ("completion_tokens".into(), scalar().boxed()),
            ("total_tokens".into(), scalar().boxed()),
            ("reasoning_tokens".into(), scalar().boxed()),
            ("completion_tokens_details".into(), details),
            ("prompt_tokens_details".into(), prompt_details),
        ]),
        Just("null".to_string()),
    ]
    .boxed();
    let top = object(vec![
        ("id".into(), json_string().boxed()),
        (
            "object".into(),
            prop_oneof![
                Just("\"chat.completion.chunk\"".to_string()),
                Just("\"error\"".to_string()),
                scalar()
            ]
            .boxed(),
        ),
        ("created".into(), Just("1700000000".to_string()).boxed()),
        ("choices".into(), choices),
        ("usage".into(), usage),
        (
            "error".into(),
            prop_oneof![
                Just("null".to_string()),
                Just("{\"message\":\"boom\"}".to_string())
            ]
            .boxed(),
        ),
        ("message".into(), scalar().boxed()),
    ]);
    (ws(), top, ws()).prop_map(|(a, t, b)| format!("{a}{t}{b}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn fast_path_agrees_with_serde(c in chunk()) {
        check(c.as_bytes())?;
    }

    #[test]
    fn fast_path_agrees_with_serde_on_mutations(
        c in chunk(),
        edits in crate::dialect::scan::strategies::edits(),
    ) {
        check(&mutate(c.into_bytes(), edits))?;
    }

    /// An event with another string in its template's hole: when the template accepts
    /// it, its facts are the full decode's (itself checked against serde above), and the
    /// full decode accepts it too.
    #[test]
    fn template_fill_agrees_with_a_full_decode(c in chunk(), new in json_string(), edits in crate::dialect::scan::strategies::edits()) {
        let data = c.as_bytes();
        let Ok(f) = Facts::fast(data) else { return Ok(()) };
        let Some(t) = template_of(data, &f) else { return Ok(()) };
        prop_assert!(t.fill(data).is_some(), "an event must fill its own template");
        let Holes::One(raw, _) = f.hole else { unreachable!() };
        let start = raw.as_ptr() as usize - data.as_ptr() as usize;
        let mut other = data[..start].to_vec();
        other.extend_from_slice(&new.as_bytes()[1..new.len() - 1]);
        other.extend_from_slice(&data[start + raw.len()..]);
        for candidate in [other.clone(), mutate(other, edits)] {
            if let Some(hole) = t.fill(&candidate) {
                let text = String::from_utf8_lossy(&candidate).into_owned();
                let full = Facts::fast(&candidate).map_err(|_| {
                    TestCaseError::fail(format!("template accepted what the scanner misses: {text}"))
                })?;
                prop_assert_eq!(key(&t.base.with_hole(hole.decoded_len)), key(&full), "{}", text);
                check(&candidate)?;
            }
        }
    }
}

/// A stream of content events decodes through the template from the second event on,
/// with the same counts as a decoder without templates.
#[test]
fn content_events_take_the_template() {
    let ev = |t: &str| {
        format!(
            r#"{{"id":"chatcmpl-9","object":"chat.completion.chunk","created":1,"model":"m","choices":[{{"index":0,"delta":{{"content":"{t}"}},"logprobs":null,"finish_reason":null}}]}}"#
        )
    };
    let texts = [" a", " bc", r"\n", r" \u00e9t\u00e9", ""];
    let mut with = StreamDecoder::default();
    let mut acc = Accum::default();
    for (i, t) in texts.iter().enumerate() {
        let e = ev(t);
        if i > 0 {
            assert!(
                with.template.as_ref().unwrap().fill(e.as_bytes()).is_some(),
                "{e}"
            );
        }
        assert!(with.payload(e.as_bytes(), i as u64, &mut acc));
    }
    let mut reference = Accum::default();
    for (i, t) in texts.iter().enumerate() {
        let e = ev(t);
        let f = Facts::reference(e.as_bytes()).ok().unwrap();
        StreamDecoder::default().apply(f, i as u64, &mut reference);
    }
    assert_eq!(acc.text_bytes, reference.text_bytes);
    // The last, empty delta is a token too (vLLM's partial UTF-8 character).
    assert_eq!(acc.text_bytes, vec![2, 3, 1, 6, 0]);
    assert_eq!(acc.events.t_ns, reference.events.t_ns);
}

/// The shapes servers send take the fast path (a scanner that always missed would pass
/// the properties above).
#[test]
fn common_chunks_take_the_fast_path() {
    for c in [
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":" hello\n"},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"id":"cmpl-1","object":"text_completion","created":1,"model":"m","choices":[{"index":0,"text":" w","logprobs":null,"finish_reason":"length","stop_reason":null}],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12}}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":7,"total_tokens":12,"completion_tokens_details":{"reasoning_tokens":3}}}"#,
        r#"{"choices":[{"delta":{"reasoning_content":"think \u00e9"}}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"reasoning":" Okay","reasoning_content":" Okay"},"logprobs":null,"finish_reason":null}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":5,"total_tokens":12,"completion_tokens":7,"prompt_tokens_details":null,"reasoning_tokens":4}}"#,
    ] {
        assert!(check(c.as_bytes()).unwrap(), "missed: {c}");
    }
    let f = Facts::fast(br#"{"choices":[{"delta":{"content":"a\nb\u20ac"},"finish_reason":"stop"}],"usage":{"completion_tokens":3}}"#).unwrap();
    let usage = Counts {
        completion: Some(3),
        ..Counts::default()
    };
    assert_eq!(key(&f), (6, 0, Some("stop".into()), Some(usage)));
}

/// `usage.prompt_tokens_details.cached_tokens` (vLLM, the simulator) on both paths.
#[test]
fn cached_tokens_on_both_paths() {
    for (c, cached) in [
        (
            r#"{"choices":[],"usage":{"prompt_tokens":64,"total_tokens":66,"completion_tokens":2,"prompt_tokens_details":{"cached_tokens":48}}}"#,
            Some(48),
        ),
        (
            r#"{"choices":[],"usage":{"prompt_tokens":64,"completion_tokens":2,"prompt_tokens_details":{"audio_tokens":0}}}"#,
            None,
        ),
    ] {
        assert!(check(c.as_bytes()).unwrap(), "missed: {c}");
        let f = Facts::fast(c.as_bytes()).unwrap();
        assert_eq!(f.usage.and_then(|u| u.cached), cached, "{c}");
    }
}

/// Reasoning is the longer of `reasoning` and `reasoning_content` (vLLM sends the same
/// text in both); the server's count is the OpenAI field, else SGLang's.
#[test]
fn reasoning_fields_on_both_paths() {
    let cases: [(&str, (usize, usize), Option<u64>); 5] = [
        (
            r#"{"choices":[{"delta":{"reasoning":"abc","reasoning_content":"abc"}}]}"#,
            (0, 3),
            None,
        ),
        (
            r#"{"choices":[{"delta":{"reasoning":null,"reasoning_content":"ab","content":"x"}}]}"#,
            (1, 2),
            None,
        ),
        (
            r#"{"choices":[{"message":{"reasoning":"abcd","content":"xy"}}]}"#,
            (2, 4),
            None,
        ),
        (
            r#"{"choices":[],"usage":{"completion_tokens":9,"reasoning_tokens":2,"completion_tokens_details":{"reasoning_tokens":5}}}"#,
            (0, 0),
            Some(5),
        ),
        (
            r#"{"choices":[],"usage":{"completion_tokens":9,"reasoning_tokens":2,"completion_tokens_details":null}}"#,
            (0, 0),
            Some(2),
        ),
    ];
    for (c, (answer, reasoning), server) in cases {
        assert!(check(c.as_bytes()).unwrap(), "missed: {c}");
        let f = Facts::reference(c.as_bytes()).ok().unwrap();
        assert_eq!((f.answer, f.reasoning), (answer, reasoning), "{c}");
        assert_eq!(f.usage.and_then(|u| u.reasoning), server, "{c}");
    }
}

#[test]
fn error_events_and_odd_shapes_go_to_serde() {
    for c in [
        r#"{"error":{"message":"boom"}}"#,
        r#"{"object":"error","message":"boom"}"#,
        r#"{"choices":[{"delta":{"content":"a"},"delta":{"content":"b"}}]}"#,
        r#"{"choices":[{"text":"\ud83d\ude00"}]}"#,
        r#"{"\u0063hoices":[]}"#,
        r#"[]"#,
        r#"{"choices":[]} x"#,
    ] {
        assert!(Facts::fast(c.as_bytes()).is_err(), "{c}");
    }
}
