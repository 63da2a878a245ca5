//! The CSV of the trace imports (Azure, BurstGPT), read by the `csv` crate: fields split
//! on `,`, a field in double quotes may hold commas and `""` for a quote (RFC 4180), and
//! spaces around a field are dropped. As RFC 4180 has it, a quote opens a quoted field
//! only right after the comma; a quote left open is an error.
//!
//! The importers read their file through [`formats::InputFile`] (bounded size and line
//! length, one sha256 of the bytes read, a UTF-8 byte-order mark and `\r\n` line ends
//! dropped, every error naming its line), one line at a time; this module splits one
//! line. So a quoted field spanning lines is not supported (the traces have none), and
//! a `\r` inside a line is data, not a line end. Written once so that every importer
//! reads a file the same way (BurstGPT's quoted `"ChatGPT"` once kept its quotes and
//! fell out of `--model ChatGPT`).

use std::borrow::Cow;

/// The fields of one CSV line, or a one-line reason it is malformed (a quote left open:
/// the line is read with a sentinel line after it, which the crate must return as a
/// record of its own unless the quote swallowed it).
pub fn split_line(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    if line.is_empty() {
        // The crate skips empty lines; one empty field, as for any field.
        return Ok(vec![Cow::Borrowed("")]);
    }
    let text = format!("{line}\n{SENTINEL}");
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(::csv::Trim::All)
        .terminator(::csv::Terminator::Any(b'\n'))
        .buffer_capacity(text.len().clamp(64, 8 << 10))
        .from_reader(text.as_bytes());
    let mut record = ::csv::StringRecord::new();
    let mut sentinel = ::csv::StringRecord::new();
    // Unreachable errors from a `&str` (valid UTF-8, no I/O), kept one line anyway.
    let read = |r: &mut ::csv::Reader<&[u8]>, rec: &mut ::csv::StringRecord| {
        r.read_record(rec).map_err(|e| e.to_string())
    };
    read(&mut reader, &mut record)?;
    if !read(&mut reader, &mut sentinel)? || sentinel.as_slice() != SENTINEL {
        return Err(format!(
            "field {}: unterminated quoted field (a quote must end on its line)",
            record.len()
        ));
    }
    Ok(record.iter().map(|f| Cow::Owned(f.to_owned())).collect())
}

/// The line read after every CSV line (see [`split_line`]).
const SENTINEL: &str = "end";

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::split_line;

    fn split(line: &str) -> Vec<String> {
        split_line(line)
            .unwrap()
            .into_iter()
            .map(|c| c.into_owned())
            .collect()
    }

    #[test]
    fn plain_fields_are_trimmed() {
        assert_eq!(split("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(split(""), [""]);
        assert_eq!(split("a,,"), ["a", "", ""]);
        // A quote inside an unquoted field is data, and so is a lone carriage return.
        assert_eq!(split(r#"a"b,c"#), [r#"a"b"#, "c"]);
        assert_eq!(split("a\rb,c"), ["a\rb", "c"]);
    }

    #[test]
    fn quoted_fields_hold_commas_and_quotes() {
        assert_eq!(split(r#"5,"ChatGPT",1"#), ["5", "ChatGPT", "1"]);
        assert_eq!(
            split(r#""a,b","say ""hi""","""#),
            ["a,b", r#"say "hi""#, ""]
        );
        // A quote opens a quoted field only where the field starts (no space before it).
        assert_eq!(split(r#"1, "x""#), ["1", r#""x""#]);
    }

    #[test]
    fn a_quote_left_open_is_a_one_line_error() {
        assert_eq!(
            split_line(r#"1,"abc"#).unwrap_err(),
            "field 2: unterminated quoted field (a quote must end on its line)"
        );
        assert_eq!(split(r#""Conversation log""#), ["Conversation log"]);
    }

    const AZURE: &str = "TIMESTAMP,ContextTokens,GeneratedTokens";

    fn azure(text: &[u8]) -> Vec<(u32, usize)> {
        crate::import::azure::parse_azure_csv(text, Path::new("a.csv"))
            .unwrap()
            .iter()
            .map(|r| (r.context_tokens, r.line))
            .collect()
    }

    #[test]
    fn a_byte_order_mark_is_dropped() {
        let text = format!("\u{feff}{AZURE}\n2023-11-16 18:15:46.6805900,374,44\n");
        assert_eq!(azure(text.as_bytes()), [(374, 2)]);
    }

    #[test]
    fn crlf_line_ends_are_dropped() {
        let text =
            format!("{AZURE}\r\n2023-11-16 18:15:46,374,44\r\n\r\n2023-11-16 18:15:47,5,1\r\n");
        assert_eq!(azure(text.as_bytes()), [(374, 2), (5, 4)]);
    }

    #[test]
    fn quoted_cells_are_read_as_their_text() {
        let text =
            "\"TIMESTAMP\",\"ContextTokens\",GeneratedTokens\n\"2023-11-16 18:15:46\",\"374\",44\n";
        assert_eq!(azure(text.as_bytes()), [(374, 2)]);
        let opts = crate::import::burstgpt::BurstGptOptions {
            model: Some("ChatGPT".into()),
            log_type: Some("Conversation, log".into()),
            ..Default::default()
        };
        let text = "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\r\n\
                    5,\"ChatGPT\",472,18,490,\"Conversation, log\"\r\n";
        let rows =
            crate::import::burstgpt::parse_burstgpt(text.as_bytes(), Path::new("b.csv"), &opts)
                .unwrap();
        assert_eq!((rows.rows.len(), rows.filtered), (1, 0));
    }
}
