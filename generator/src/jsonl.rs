//! Import of a prompt JSONL file: one JSON object per line with
//! * `prompt` (string) or `messages` (a list of `{"role", "content"}` strings): exactly
//!   one of them. For now `messages` is rendered to one prompt string, each message as
//!   `role: content` and the messages joined by a newline (`"system: Be brief.\nuser:
//!   Hi"`); the prompt token count is that rendering's. Chat requests with `messages` in
//!   the trace come with the multi-turn trace version.
//! * `max_tokens` or `output_tokens` (optional, not both): the output length, an integer
//!   in `0..=4294967295` (0 is raised to 1). Without it `--output-tokens` must be given.
//! * `timestamp` (optional): integer milliseconds; when every line has one and no
//!   `--arrival` is given, arrivals follow them (see [`crate::dataset`]).
//! * `session_id` (optional, any value): ignored for now (sessions come with the
//!   multi-turn trace version). Other keys are ignored too.
//!
//! Blank lines are skipped. Errors name the file, the 1-based line and the field.

use std::path::Path;

use formats::TraceSpec;
use serde_json::{Map, Value};

use crate::dataset::{DatasetOptions, DatasetReport, Item, ItemOutput, import_items, read_utf8};
use crate::error::{GenError, Result};
use crate::prompt::PromptSource;

/// Parses JSONL text; `need_output` makes a line without an output length an error.
/// `path` only labels errors.
pub fn parse_jsonl(text: &str, path: &Path, need_output: bool) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.is_empty() {
            continue;
        }
        let item = parse_line(line, i + 1, need_output).map_err(|message| GenError::BadRow {
            path: path.to_path_buf(),
            line: i + 1,
            message,
        })?;
        items.push(item);
    }
    if items.is_empty() {
        return Err(GenError::BadRow {
            path: path.to_path_buf(),
            line: 1,
            message: "empty file: expected one JSON object per line".into(),
        });
    }
    Ok(items)
}

fn parse_line(line: &str, n: usize, need_output: bool) -> std::result::Result<Item, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(o) = v else {
        return Err("expected a JSON object".into());
    };
    let prompt = match (o.get("prompt"), o.get("messages")) {
        (Some(_), Some(_)) => return Err("has both prompt and messages; give one".into()),
        (Some(Value::String(p)), None) => p.clone(),
        (Some(_), None) => return Err("prompt: expected a string".into()),
        (None, Some(m)) => render_messages(m)?,
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
    Ok(Item {
        origin: format!("line {n}"),
        prompt,
        output,
        timestamp_ms,
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

/// `role: content` lines joined by `\n`.
fn render_messages(m: &Value) -> std::result::Result<String, String> {
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
        out.push(format!("{}: {}", field("role")?, field("content")?));
    }
    Ok(out.join("\n"))
}

/// Imports a JSONL file into the trace file `out`.
pub fn import_jsonl(
    input: &Path,
    opts: &DatasetOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<DatasetReport> {
    let text = read_utf8(input)?;
    let items = parse_jsonl(&text, input, opts.output_tokens.is_none())?;
    import_items(items, input, TraceSpec::Jsonl, opts, source, out)
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
