//! Generators shared by the fast-path differential tests: JSON values and objects with
//! random whitespace, member order, duplicates, escapes and malformed bits, and byte-level
//! edits of whole documents.

use proptest::prelude::*;

pub(crate) fn ws() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "", "", " ", "\n", " \t\r\n"]).prop_map(str::to_string)
}

pub(crate) fn json_string() -> impl Strategy<Value = String> {
    let piece = prop::sample::select(vec![
        "a",
        "Hello",
        " world",
        "\\n",
        "\\\"",
        "\\\\",
        "\\/",
        "\\t",
        "\\u00e9",
        "\\u20ac",
        "\\u0041",
        "\\ud83d\\ude00",
        "é",
        "€",
        "😀",
        "\\x",
        "\u{1}",
        "\\u12",
    ]);
    prop::collection::vec(piece, 0..5).prop_map(|v| format!("\"{}\"", v.concat()))
}

pub(crate) fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        json_string(),
        prop::sample::select(vec![
            "null",
            "true",
            "false",
            "0",
            "12",
            "-3",
            "1.5",
            "2e3",
            "007",
            "1.",
            "18446744073709551615",
            "18446744073709551616",
            "1E+2",
            "-0",
            "nul",
        ])
        .prop_map(str::to_string),
    ]
}

/// A JSON object from `(key, value)` candidates, with random whitespace and order and
/// the occasional duplicate.
pub(crate) fn object(members: Vec<(String, BoxedStrategy<String>)>) -> BoxedStrategy<String> {
    let parts: Vec<BoxedStrategy<Option<String>>> = members
        .into_iter()
        .map(|(k, v)| {
            (ws(), v, ws(), prop::bool::weighted(0.7))
                .prop_map(move |(a, v, b, keep)| keep.then(|| format!("{a}\"{k}\"{b}:{a}{v}{b}")))
                .boxed()
        })
        .collect();
    (
        parts,
        any::<prop::sample::Index>(),
        prop::bool::weighted(0.05),
    )
        .prop_map(|(parts, rot, dup)| {
            let mut v: Vec<String> = parts.into_iter().flatten().collect();
            if !v.is_empty() {
                let r = rot.index(v.len());
                v.rotate_left(r);
                if dup {
                    v.push(v[0].clone());
                }
            }
            format!("{{{}}}", v.join(","))
        })
        .boxed()
}

pub(crate) fn opt_str() -> BoxedStrategy<String> {
    prop_oneof![json_string(), Just("null".to_string()), scalar()].boxed()
}

/// One random edit: flip, delete or insert a byte.
fn edit(mut b: Vec<u8>, at: prop::sample::Index, op: u8, byte: u8) -> Vec<u8> {
    if b.is_empty() {
        return vec![byte];
    }
    let i = at.index(b.len());
    match op % 3 {
        0 => b[i] = byte,
        1 => {
            b.remove(i);
        }
        _ => b.insert(i, byte),
    }
    b
}

/// One to three edits (position, operation, byte), bytes biased to JSON's syntax.
pub(crate) fn edits() -> impl Strategy<Value = Vec<(prop::sample::Index, u8, u8)>> {
    prop::collection::vec(
        (
            any::<prop::sample::Index>(),
            any::<u8>(),
            prop::sample::select(b"{}[]\",:\\0123456789 nu\x01\xc3".to_vec()),
        ),
        1..4,
    )
}

/// Applies [`edits`] in order.
pub(crate) fn mutate(mut b: Vec<u8>, edits: Vec<(prop::sample::Index, u8, u8)>) -> Vec<u8> {
    for (at, op, byte) in edits {
        b = edit(b, at, op, byte);
    }
    b
}
