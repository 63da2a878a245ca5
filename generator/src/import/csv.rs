//! The CSV of the trace imports (Azure, BurstGPT): one record per line, fields split on
//! `,`, a field in double quotes may hold commas and `""` for a quote (RFC 4180).
//! Spaces around a field (and around its quotes) are dropped. A quoted field spanning
//! lines is not supported: the traces have none, and it is reported as an unterminated
//! quote. Line ends and a byte-order mark are dropped by [`formats::InputFile`].
//!
//! Why here and not a crate: three importers need exactly this much, and every one of
//! them must read the same file the same way (BurstGPT's quoted `"ChatGPT"` once kept
//! its quotes and fell out of `--model ChatGPT`).

use std::borrow::Cow;

/// The fields of one CSV line, or a one-line reason it is malformed.
pub fn split_line(line: &str) -> Result<Vec<Cow<'_, str>>, String> {
    let mut fields = Vec::new();
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start();
        let Some(quoted) = trimmed.strip_prefix('"') else {
            match rest.split_once(',') {
                Some((field, tail)) => {
                    fields.push(Cow::Borrowed(field.trim()));
                    rest = tail;
                    continue;
                }
                None => {
                    fields.push(Cow::Borrowed(rest.trim()));
                    return Ok(fields);
                }
            }
        };
        let (field, after) = unquote(quoted).ok_or_else(|| {
            format!(
                "field {}: unterminated quoted field (a quote must end on its line)",
                fields.len() + 1
            )
        })?;
        fields.push(field);
        let after = after.trim_start();
        match after.strip_prefix(',') {
            Some(tail) => rest = tail,
            None if after.is_empty() => return Ok(fields),
            None => {
                return Err(format!(
                    "field {}: text after the closing quote",
                    fields.len()
                ));
            }
        }
    }
}

/// A quoted field's text (`s` starts after the opening quote) and what follows its
/// closing quote; `None` when it has none.
fn unquote(s: &str) -> Option<(Cow<'_, str>, &str)> {
    let mut owned: Option<String> = None;
    let mut start = 0;
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            if bytes.get(i + 1) == Some(&b'"') {
                owned
                    .get_or_insert_with(String::new)
                    .push_str(&s[start..=i]);
                i += 2;
                start = i;
                continue;
            }
            let field = match owned {
                Some(mut o) => {
                    o.push_str(&s[start..i]);
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(&s[..i]),
            };
            return Some((field, &s[i + 1..]));
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::split_line;

    fn split(line: &str) -> Vec<String> {
        split_line(line)
            .unwrap()
            .into_iter()
            .map(|c| c.into_owned())
            .collect()
    }

    #[test]
    fn plain_and_quoted_fields() {
        assert_eq!(split("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(split(""), [""]);
        assert_eq!(split("a,,"), ["a", "", ""]);
        assert_eq!(split(r#"5,"ChatGPT",1"#), ["5", "ChatGPT", "1"]);
        assert_eq!(
            split(r#" "a,b" , "say ""hi""","""#),
            ["a,b", r#"say "hi""#, ""]
        );
        assert_eq!(split(r#""Conversation log""#), ["Conversation log"]);
        // A quote inside an unquoted field is data.
        assert_eq!(split(r#"a"b,c"#), [r#"a"b"#, "c"]);
    }

    #[test]
    fn malformed_quotes_are_one_line_errors() {
        assert_eq!(
            split_line(r#"1,"abc"#).unwrap_err(),
            "field 2: unterminated quoted field (a quote must end on its line)"
        );
        assert_eq!(
            split_line(r#""ab"c,1"#).unwrap_err(),
            "field 1: text after the closing quote"
        );
    }
}
