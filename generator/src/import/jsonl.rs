//! Import of a prompt JSONL file: one JSON object per line with
//! * `prompt` (string) or `messages` (a list of `{"role", "content"}` strings): exactly
//!   one of them. Without `--sessions`, `messages` is rendered to one prompt string
//!   ([`formats::render_messages`]: each message as `role: content`, joined by a
//!   newline, `"system: Be brief.\nuser: Hi"`); the prompt token count is that
//!   rendering's. With `--sessions` each line is a chat turn carrying its `messages`.
//! * `max_tokens` or `output_tokens` (optional, not both): the output length, an integer
//!   in `0..=4294967295` (0 is raised to 1). Without it `--output-tokens` must be given.
//! * `timestamp` (optional): integer milliseconds; when every line has one and no
//!   `--arrival` is given, arrivals follow them (see [`crate::import::dataset`]).
//! * `session_id` (optional): ignored (any value) unless `--sessions` is given; then
//!   lines sharing one (a string or an integer) are the turns of one session
//!   ([`parse_jsonl_sessions`], [`crate::import::dataset_session`]). Other keys are ignored.
//!
//! Blank lines are skipped; a UTF-8 byte-order mark is dropped. Errors name the file,
//! the 1-based line and the field.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::rc::Rc;

use formats::{ChatMessage, InputFile, InputKind, TraceSpec, render_messages};
use serde_json::{Map, Value};

use crate::error::Result;
use crate::import::dataset::{
    DatasetFile, DatasetOptions, DatasetReport, Item, ItemOutput, import_items,
};
use crate::import::dataset_session::{Conversation, TurnItem, import_sessions};
use crate::import::lines::{empty_file, for_each_line};
use crate::prompt::PromptSource;

/// Parses JSONL text; `need_output` makes a line without an output length an error.
/// `path` only labels errors.
pub fn parse_jsonl(text: &str, path: &Path, need_output: bool) -> Result<Vec<Item>> {
    jsonl_items(&mut text_input(text, path)?, need_output)
}

/// `text` as an input file named `path`.
fn text_input<'a>(text: &'a str, path: &Path) -> Result<InputFile<&'a [u8]>> {
    Ok(InputFile::from_reader(
        text.as_bytes(),
        path,
        InputKind::PROMPT_JSONL,
    )?)
}

fn jsonl_items<R: Read>(input: &mut InputFile<R>, need_output: bool) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for_lines(input, need_output, |line, n| {
        items.push(Item {
            origin: format!("line {n}"),
            prompt: match line.chat {
                Chat::Prompt(p) => p,
                Chat::Messages(m) => render_messages(&m),
            },
            output: line.output,
            timestamp_ms: line.timestamp_ms,
        });
        Ok(())
    })?;
    Ok(items)
}

/// Parses JSONL text into sessions, for `--sessions`: lines with the same `session_id`
/// (a string or an integer, compared as JSON values: `"7"` and `7` differ) are the turns
/// of one session, in file order; a line without one is a session of its own. A turn's
/// chat is its line's `messages`, which must end with a `user` message, or its `prompt`
/// as one user message. Sessions are in the order of their first line.
pub fn parse_jsonl_sessions(
    text: &str,
    path: &Path,
    need_output: bool,
) -> Result<Vec<Conversation>> {
    jsonl_sessions(&mut text_input(text, path)?, need_output)
}

fn jsonl_sessions<R: Read>(
    input: &mut InputFile<R>,
    need_output: bool,
) -> Result<Vec<Conversation>> {
    let mut convs: Vec<Conversation> = Vec::new();
    let mut by_id: BTreeMap<String, usize> = BTreeMap::new();
    for_lines(input, need_output, |line, n| {
        let chat = match line.chat {
            Chat::Prompt(p) => vec![ChatMessage::new("user", p)],
            Chat::Messages(m) if m.last().is_some_and(|x| x.role == "user") => m,
            Chat::Messages(_) => {
                return Err("messages: with --sessions the last message must be a user message (the turn's)".into());
            }
        };
        let origin = format!("line {n}");
        let turn = TurnItem {
            origin: origin.clone(),
            upto: chat.len(),
            chat: Rc::new(chat),
            output: line.output,
            timestamp_ms: line.timestamp_ms,
        };
        let at = match line.session {
            Some(key) => *by_id.entry(key?).or_insert(convs.len()),
            None => convs.len(),
        };
        if at == convs.len() {
            convs.push(Conversation {
                origin,
                turns: Vec::new(),
            });
        }
        convs[at].turns.push(turn);
        Ok(())
    })?;
    Ok(convs)
}

/// A line's prompt: a string, or chat messages.
enum Chat {
    Prompt(String),
    Messages(Vec<ChatMessage>),
}

/// The fields of one line.
struct Line {
    chat: Chat,
    output: ItemOutput,
    timestamp_ms: Option<u64>,
    /// `session_id` as a key: `s:` + a string, `n:` + an integer; an error for other
    /// values, which only `--sessions` reports (single-shot imports ignore the field).
    session: Option<std::result::Result<String, String>>,
}

/// Calls `each(line, line number)` for every non-blank line; errors name the line.
fn for_lines<R: Read>(
    input: &mut InputFile<R>,
    need_output: bool,
    mut each: impl FnMut(Line, usize) -> std::result::Result<(), String>,
) -> Result<()> {
    let any = for_each_line(input, |n, line| {
        parse_line(line, need_output).and_then(|l| each(l, n))
    })?;
    if !any {
        return Err(empty_file(input, "one JSON object per line"));
    }
    Ok(())
}

fn parse_line(line: &str, need_output: bool) -> std::result::Result<Line, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(o) = v else {
        return Err("expected a JSON object".into());
    };
    let chat = match (o.get("prompt"), o.get("messages")) {
        (Some(_), Some(_)) => return Err("has both prompt and messages; give one".into()),
        (Some(Value::String(p)), None) => Chat::Prompt(p.clone()),
        (Some(_), None) => return Err("prompt: expected a string".into()),
        (None, Some(m)) => Chat::Messages(messages(m)?),
        (None, None) => return Err("missing field prompt (or messages)".into()),
    };
    let output = match (count(&o, "max_tokens")?, count(&o, "output_tokens")?) {
        (Some(_), Some(_)) => return Err("has both max_tokens and output_tokens; give one".into()),
        (Some(n), None) | (None, Some(n)) => ItemOutput::Tokens(n),
        (None, None) if need_output => {
            return Err(
                "missing field max_tokens (or output_tokens); or give --output-tokens".into(),
            );
        }
        (None, None) => ItemOutput::Missing,
    };
    let timestamp_ms = match o.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(v) => Some(v.as_u64().ok_or_else(|| {
            format!(
                "timestamp: expected integer milliseconds in 0..=18446744073709551615, found {v}"
            )
        })?),
    };
    let session = match o.get("session_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(Ok(format!("s:{s}"))),
        Some(v @ Value::Number(n)) if n.is_u64() || n.is_i64() => Some(Ok(format!("n:{v}"))),
        Some(v) => Some(Err(format!(
            "session_id: expected a string or an integer, found {v}"
        ))),
    };
    Ok(Line {
        chat,
        output,
        timestamp_ms,
        session,
    })
}

fn count(o: &Map<String, Value>, field: &str) -> std::result::Result<Option<u32>, String> {
    match o.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{field}: expected an integer in 0..=4294967295, found {v}")),
    }
}

/// The `{"role", "content"}` list of a line's `messages`.
fn messages(m: &Value) -> std::result::Result<Vec<ChatMessage>, String> {
    let Value::Array(list) = m else {
        return Err("messages: expected a list".into());
    };
    if list.is_empty() {
        return Err("messages: empty list".into());
    }
    let mut out = Vec::with_capacity(list.len());
    for (j, msg) in list.iter().enumerate() {
        let field = |name: &str| match msg.get(name) {
            Some(Value::String(s)) => Ok(s.as_str()),
            Some(_) => Err(format!("messages[{j}].{name}: expected a string")),
            None => Err(format!("messages[{j}]: missing field {name}")),
        };
        out.push(ChatMessage::new(field("role")?, field("content")?));
    }
    Ok(out)
}

/// Imports a JSONL file into the trace file `out`.
pub fn import_jsonl(
    input: &Path,
    opts: &DatasetOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<DatasetReport> {
    crate::import::dataset::check_options(opts)?;
    let mut file = InputFile::open(input, InputKind::PROMPT_JSONL)?;
    let need_output = opts.output_tokens.is_none();
    let from = DatasetFile {
        path: input,
        sha256: String::new(),
    };
    if opts.sessions {
        let convs = jsonl_sessions(&mut file, need_output)?;
        let from = DatasetFile {
            sha256: file.finish()?,
            ..from
        };
        return import_sessions(convs, &from, TraceSpec::Jsonl, opts, source, out);
    }
    let items = jsonl_items(&mut file, need_output)?;
    let from = DatasetFile {
        sha256: file.finish()?,
        ..from
    };
    import_items(items, &from, TraceSpec::Jsonl, opts, source, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<Vec<Item>, String> {
        parse_jsonl(text, Path::new("j.jsonl"), true).map_err(|e| e.to_string())
    }

    #[test]
    fn prompts_messages_and_fields() {
        let items = parse(
            "{\"prompt\":\"hi there\",\"max_tokens\":5,\"timestamp\":10,\"session_id\":\"s\"}\n\n\
             {\"messages\":[{\"role\":\"system\",\"content\":\"Be brief.\"},{\"role\":\"user\",\"content\":\"Hi\"}],\"output_tokens\":0}\n",
        )
        .unwrap();
        assert_eq!(items[0].prompt, "hi there");
        assert_eq!(items[0].output, ItemOutput::Tokens(5));
        assert_eq!(items[0].timestamp_ms, Some(10));
        assert_eq!(items[1].prompt, "system: Be brief.\nuser: Hi");
        assert_eq!(items[1].origin, "line 3");
        assert_eq!(items[1].timestamp_ms, None);
    }

    #[test]
    fn bad_lines_name_line_and_field() {
        let ok = "{\"prompt\":\"a\",\"max_tokens\":1}\n";
        for (text, want) in [
            (String::new(), "j.jsonl:1: empty file"),
            (format!("{ok}[1]\n"), "j.jsonl:2: expected a JSON object"),
            (
                format!("{ok}{{\"max_tokens\":1}}\n"),
                "j.jsonl:2: missing field prompt",
            ),
            (
                format!("{ok}{{\"prompt\":\"a\"}}\n"),
                "j.jsonl:2: missing field max_tokens",
            ),
            (
                format!("{ok}{{\"prompt\":\"a\",\"max_tokens\":4294967296}}\n"),
                "j.jsonl:2: max_tokens: expected an integer",
            ),
            (
                format!("{ok}{{\"prompt\":\"a\",\"max_tokens\":1,\"timestamp\":1e400}}\n"),
                "j.jsonl:2: not JSON",
            ),
            (
                format!("{ok}{{\"prompt\":\"a\",\"max_tokens\":1,\"timestamp\":-1}}\n"),
                "j.jsonl:2: timestamp: expected integer milliseconds",
            ),
            (
                format!("{ok}{{\"messages\":[{{\"role\":\"user\"}}],\"max_tokens\":1}}\n"),
                "j.jsonl:2: messages[0]: missing field content",
            ),
            (format!("{ok}{{\"prompt\":"), "j.jsonl:2: not JSON"),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.contains(want), "{e} / {want}");
        }
    }
}
