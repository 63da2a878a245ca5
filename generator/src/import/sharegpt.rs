//! Import of a ShareGPT conversation file: a JSON list of
//! `{"id": ..., "conversations": [{"from": "human" | "gpt", "value": "..."}, ...]}`.
//!
//! A conversation gives one request: its first `human` turn is the prompt (leading `gpt`
//! or `system` turns are skipped) and the next `gpt` turn after it is the recorded
//! answer, whose token count is the output length (see [`crate::import::dataset`]). A
//! conversation with no human turn, or (when output lengths come from the answers) no
//! answer after it, is unusable and counted. Turn roles other than these are passed over;
//! any other key of a conversation or turn is ignored.
//!
//! With `--sessions` a conversation is kept whole as a session instead
//! ([`parse_sharegpt_sessions`], [`crate::import::dataset_session`]).
//!
//! A UTF-8 byte-order mark is dropped. Errors name the file, the conversation index
//! (0-based) and the field.

use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use formats::{ChatMessage, InputFile, InputKind, TraceSpec};
use serde_json::Value;

use crate::error::{GenError, Result};
use crate::import::dataset::{
    DatasetFile, DatasetOptions, DatasetReport, Item, ItemOutput, import_items,
};
use crate::import::dataset_session::{Conversation, TurnItem, import_sessions};
use crate::prompt::PromptSource;

/// Parses ShareGPT JSON text; `path` only labels errors.
pub fn parse_sharegpt(text: &str, path: &Path) -> Result<Vec<Item>> {
    conversations(&read_root(&mut text_input(text, path)?)?, path, item)
}

/// Parses ShareGPT JSON text into conversations kept whole, for `--sessions`: `human`
/// turns become `user` messages, `gpt` turns `assistant`, `system` turns are kept, other
/// roles passed over, and `gpt` turns before the first `human` one are skipped. Each
/// user message is a turn; its recorded answer is the first assistant message after it
/// before the next user message. `path` only labels errors.
pub fn parse_sharegpt_sessions(text: &str, path: &Path) -> Result<Vec<Conversation>> {
    let root = read_root(&mut text_input(text, path)?)?;
    conversations(&root, path, conversation_of)
}

/// `text` as an input file named `path`.
fn text_input<'a>(text: &'a str, path: &Path) -> Result<InputFile<&'a [u8]>> {
    Ok(InputFile::from_reader(
        text.as_bytes(),
        path,
        InputKind::SHAREGPT_JSON,
    )?)
}

/// Parses the whole file as one JSON value while reading it: memory follows what is
/// parsed, and garbage (`/dev/zero`) fails at its first byte.
fn read_root<R: Read>(input: &mut InputFile<R>) -> Result<Value> {
    let path = input.path().to_path_buf();
    let mut seen = SeenData {
        inner: input.reader(),
        data: false,
    };
    let parsed = serde_json::from_reader::<_, Value>(&mut seen);
    let data = seen.data;
    drop(seen);
    parsed.map_err(|e| {
        if let Some(too_large) = input.limit_error() {
            return too_large.into();
        }
        if e.is_io() {
            return GenError::Invalid(format!("{}: cannot read: {e}", path.display()));
        }
        if !data {
            return GenError::Invalid(format!(
                "{}: empty file: expected a JSON list of conversations",
                path.display()
            ));
        }
        let message = if e.to_string().starts_with("invalid unicode code point") {
            format!("not UTF-8 (column {})", e.column())
        } else {
            format!("not JSON: {e}")
        };
        GenError::BadRow {
            path,
            line: e.line(),
            message,
        }
    })
}

/// A reader that notes whether any byte other than white space went through.
struct SeenData<R> {
    inner: R,
    data: bool,
}

impl<R: Read> Read for SeenData<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.data = self.data || buf[..n].iter().any(|b| !b.is_ascii_whitespace());
        Ok(n)
    }
}

/// Each conversation of the file's list, `make(turns, index)`.
fn conversations<T>(
    root: &Value,
    path: &Path,
    make: impl Fn(&[(&str, &str)], usize) -> T,
) -> Result<Vec<T>> {
    let bad = |m: String| GenError::Invalid(format!("{}: {m}", path.display()));
    let Value::Array(convs) = root else {
        return Err(bad(format!(
            "expected a JSON list of conversations, found {}",
            kind(root)
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
    crate::import::dataset::check_options(opts)?;
    let mut file = InputFile::open(input, InputKind::SHAREGPT_JSON)?;
    let root = read_root(&mut file)?;
    let from = DatasetFile {
        path: input,
        sha256: file.finish()?,
    };
    if opts.sessions {
        let convs = conversations(&root, input, conversation_of)?;
        return import_sessions(convs, &from, TraceSpec::ShareGpt, opts, source, out);
    }
    let items = conversations(&root, input, item)?;
    import_items(items, &from, TraceSpec::ShareGpt, opts, source, out)
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
        // A byte-order mark, as the other importers accept.
        assert_eq!(parse("\u{feff}[]").unwrap().len(), 0);
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
            (" \n ", "s.json: empty file"),
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.contains(want), "{e} / {want}");
        }
    }
}
