//! Import of a ShareGPT conversation file: a JSON list of
//! `{"id": ..., "conversations": [{"from": "human" | "gpt", "value": "..."}, ...]}`.
//!
//! A conversation gives one request: its first `human` turn is the prompt (leading `gpt`
//! or `system` turns are skipped) and the next `gpt` turn after it is the recorded
//! answer, whose token count is the output length (see [`crate::dataset`]). A
//! conversation with no human turn, or (when output lengths come from the answers) no
//! answer after it, is unusable and counted. Turn roles other than these are passed over;
//! any other key of a conversation or turn is ignored.
//!
//! With `--sessions` a conversation is kept whole as a session instead
//! ([`parse_sharegpt_sessions`], [`crate::dataset_session`]).
//!
//! Errors name the file, the conversation index (0-based) and the field.

use std::path::Path;
use std::rc::Rc;

use formats::{ChatMessage, TraceSpec};
use serde_json::Value;

use crate::dataset::{DatasetOptions, DatasetReport, Item, ItemOutput, import_items, read_utf8};
use crate::dataset_session::{Conversation, TurnItem, import_sessions};
use crate::error::{GenError, Result};
use crate::prompt::PromptSource;

/// Parses ShareGPT JSON text; `path` only labels errors.
pub fn parse_sharegpt(text: &str, path: &Path) -> Result<Vec<Item>> {
    parse_with(text, path, item)
}

/// Parses ShareGPT JSON text into conversations kept whole, for `--sessions`: `human`
/// turns become `user` messages, `gpt` turns `assistant`, `system` turns are kept, other
/// roles passed over, and `gpt` turns before the first `human` one are skipped. Each
/// user message is a turn; its recorded answer is the first assistant message after it
/// before the next user message. `path` only labels errors.
pub fn parse_sharegpt_sessions(text: &str, path: &Path) -> Result<Vec<Conversation>> {
    parse_with(text, path, conversation_of)
}

/// Parses the file's list and each conversation's turns, then `make(turns, index)`.
fn parse_with<T>(
    text: &str,
    path: &Path,
    make: impl Fn(&[(&str, &str)], usize) -> T,
) -> Result<Vec<T>> {
    let bad = |m: String| GenError::Invalid(format!("{}: {m}", path.display()));
    if text.trim().is_empty() {
        return Err(bad(
            "empty file: expected a JSON list of conversations".into()
        ));
    }
    let root: Value = serde_json::from_str(text).map_err(|e| GenError::BadRow {
        path: path.to_path_buf(),
        line: e.line(),
        message: format!("not JSON: {e}"),
    })?;
    let Value::Array(convs) = root else {
        return Err(bad(format!(
            "expected a JSON list of conversations, found {}",
            kind(&root)
        )));
    };
    convs
        .iter()
        .enumerate()
        .map(|(i, c)| {
            turns_of(c)
                .map(|t| make(&t, i))
                .map_err(|m| bad(format!("conversation {i}: {m}")))
        })
        .collect()
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// One turn's `(from, value)`.
fn turn(t: &Value, j: usize) -> std::result::Result<(&str, &str), String> {
    let field = |name: &str| match t.get(name) {
        Some(Value::String(s)) => Ok(s.as_str()),
        Some(v) => Err(format!(
            "conversations[{j}].{name}: expected a string, found {}",
            kind(v)
        )),
        None => Err(format!("conversations[{j}]: missing field {name}")),
    };
    if !t.is_object() {
        return Err(format!(
            "conversations[{j}]: expected an object, found {}",
            kind(t)
        ));
    }
    Ok((field("from")?, field("value")?))
}

/// A conversation's `(from, value)` turns.
fn turns_of(c: &Value) -> std::result::Result<Vec<(&str, &str)>, String> {
    let turns = match c.get("conversations") {
        Some(Value::Array(t)) => t,
        Some(v) => {
            return Err(format!("conversations: expected a list, found {}", kind(v)));
        }
        None if c.is_object() => return Err("missing field conversations".into()),
        None => return Err(format!("expected an object, found {}", kind(c))),
    };
    turns.iter().enumerate().map(|(j, t)| turn(t, j)).collect()
}

/// The single-shot item of conversation `i`: its first human turn and its answer.
fn item(turns: &[(&str, &str)], i: usize) -> Item {
    let origin = format!("conversation {i}");
    let Some(h) = turns.iter().position(|(from, _)| *from == "human") else {
        return Item {
            origin,
            prompt: String::new(),
            output: ItemOutput::Missing,
            timestamp_ms: None,
        };
    };
    let answer = turns[h + 1..]
        .iter()
        .take_while(|(from, _)| *from != "human")
        .find(|(from, _)| *from == "gpt");
    Item {
        origin,
        prompt: turns[h].1.to_string(),
        output: answer.map_or(ItemOutput::Missing, |(_, v)| {
            ItemOutput::Text(v.to_string())
        }),
        timestamp_ms: None,
    }
}

/// Conversation `i` kept whole (see [`parse_sharegpt_sessions`]).
fn conversation_of(turns: &[(&str, &str)], i: usize) -> Conversation {
    let mut chat: Vec<ChatMessage> = Vec::new();
    let mut users = Vec::new();
    for &(from, value) in turns {
        let role = match from {
            "human" => "user",
            "gpt" if users.is_empty() => continue,
            "gpt" => "assistant",
            "system" => "system",
            _ => continue,
        };
        if role == "user" {
            users.push(chat.len());
        }
        chat.push(ChatMessage::new(role, value));
    }
    let chat = Rc::new(chat);
    let turns = users
        .iter()
        .enumerate()
        .map(|(k, &u)| {
            let answer = chat[u + 1..]
                .iter()
                .take_while(|m| m.role != "user")
                .find(|m| m.role == "assistant");
            TurnItem {
                origin: format!("conversation {i} turn {k}"),
                chat: Rc::clone(&chat),
                upto: u + 1,
                output: answer.map_or(ItemOutput::Missing, |m| ItemOutput::Text(m.content.clone())),
                timestamp_ms: None,
            }
        })
        .collect();
    Conversation {
        origin: format!("conversation {i}"),
        turns,
    }
}

/// Imports a ShareGPT JSON file into the trace file `out`.
pub fn import_sharegpt(
    input: &Path,
    opts: &DatasetOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<DatasetReport> {
    let text = read_utf8(input)?;
    if opts.sessions {
        let convs = parse_sharegpt_sessions(&text, input)?;
        return import_sessions(convs, input, TraceSpec::ShareGpt, opts, source, out);
    }
    let items = parse_sharegpt(&text, input)?;
    import_items(items, input, TraceSpec::ShareGpt, opts, source, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<Vec<Item>, String> {
        parse_sharegpt(text, Path::new("s.json")).map_err(|e| e.to_string())
    }

    #[test]
    fn first_human_turn_and_its_answer() {
        let items = parse(
            r#"[{"id":"a","conversations":[{"from":"gpt","value":"hi"},{"from":"human","value":"q1"},{"from":"gpt","value":"a1"},{"from":"human","value":"q2"}]},
                {"id":"b","conversations":[{"from":"human","value":"q"},{"from":"human","value":"q'"},{"from":"gpt","value":"late"}]},
                {"id":"c","conversations":[{"from":"gpt","value":"only"}]}]"#,
        )
        .unwrap();
        assert_eq!(items[0].prompt, "q1");
        assert_eq!(items[0].output, ItemOutput::Text("a1".into()));
        assert_eq!(items[1].output, ItemOutput::Missing);
        assert_eq!(items[2].output, ItemOutput::Missing);
        assert_eq!(items[2].origin, "conversation 2");
    }

    #[test]
    fn bad_shapes_name_conversation_and_field() {
        for (text, want) in [
            ("", "s.json: empty file"),
            (
                "{}",
                "s.json: expected a JSON list of conversations, found an object",
            ),
            (
                "[1]",
                "s.json: conversation 0: expected an object, found a number",
            ),
            (
                "[{}]",
                "s.json: conversation 0: missing field conversations",
            ),
            (
                r#"[{"conversations":[]},{"conversations":[{"from":"human"}]}]"#,
                "s.json: conversation 1: conversations[0]: missing field value",
            ),
            (
                r#"[{"conversations":[{"from":"human","value":7}]}]"#,
                "conversation 0: conversations[0].value: expected a string, found a number",
            ),
            ("[\n{", "s.json:2: not JSON"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{e} / {want}");
        }
    }
}
