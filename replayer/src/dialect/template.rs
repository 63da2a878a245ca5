//! The previous event as a template for the next one.
//!
//! Within one streamed response, consecutive events of the OpenAI dialects are the same
//! bytes except for one string: `{"id":"chatcmpl-..","object":"chat.completion.chunk",
//! "created":..,"model":..,"choices":[{"index":0,"delta":{"content":"<new text>"},
//! "logprobs":null,"finish_reason":null}]}`. After an event has been decoded in full by
//! the scanner, its bytes before and after that one string (the *hole*) are kept; an event
//! that starts with the same prefix, ends with the same suffix and has a well-formed JSON
//! string body in between is the same document with another string value, so its facts
//! are the template's, with the hole's decoded length in place of the old one. Checking
//! that costs two `memcmp`s and a scan of the new text instead of a walk over the whole
//! event.
//!
//! Exactness: the prefix ends with the hole's opening quote and the suffix starts with its
//! closing quote (both ASCII), and the template's bytes were fully validated by the
//! scanner; so the new event is valid UTF-8 and valid JSON with exactly the template's
//! members whenever the hole's body is a valid string body (no unescaped quote, no
//! control character, valid escapes, valid UTF-8), which [`Template::fill`] checks.
//! Anything else is a miss and the event is decoded in full.

use crate::dialect::scan::{Scanner, Str};

/// A decoded event's bytes around its one variable string, and what the rest of it said.
#[derive(Debug, Clone)]
pub(crate) struct Template<F> {
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    /// The event's facts without the hole's text.
    pub base: F,
}

/// Templates are not kept for events longer than this (a long event is rare and its
/// copy would cost more than it saves).
const MAX_TEMPLATE_BYTES: usize = 4096;

impl<F> Template<F> {
    /// A template from an event decoded in full, `hole` being the raw body of its
    /// variable string (a sub-slice of `data`, quotes excluded).
    pub fn new(data: &[u8], hole: &[u8], base: F) -> Option<Self> {
        if data.len() > MAX_TEMPLATE_BYTES {
            return None;
        }
        let start = (hole.as_ptr() as usize).checked_sub(data.as_ptr() as usize)?;
        let end = start + hole.len();
        if end > data.len() || start == 0 || data[start - 1] != b'"' || data.get(end) != Some(&b'"')
        {
            return None;
        }
        Some(Template {
            prefix: data[..start].to_vec(),
            suffix: data[end..].to_vec(),
            base,
        })
    }

    /// When `data` is this template with another well-formed string in the hole: that
    /// string (its decoded length and raw bytes).
    pub fn fill<'a>(&self, data: &'a [u8]) -> Option<Str<'a>> {
        let fixed = self.prefix.len() + self.suffix.len();
        if data.len() < fixed || !data.starts_with(&self.prefix) || !data.ends_with(&self.suffix) {
            return None;
        }
        let body = &data[self.prefix.len()..data.len() - self.suffix.len()];
        Scanner::string_body(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(text: &str) -> String {
        format!(
            r#"{{"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[{{"index":0,"delta":{{"content":"{text}"}},"finish_reason":null}}]}}"#
        )
    }

    fn template(text: &str) -> (String, Template<u8>) {
        let e = event(text);
        let i = e.find("content\":\"").unwrap() + 10;
        let hole = &e.as_bytes()[i..i + text.len()];
        let t = Template::new(e.as_bytes(), hole, 7).unwrap();
        (e, t)
    }

    #[test]
    fn same_shape_with_another_string_fills_the_hole() {
        let (_, t) = template(" hello");
        let e = event(" w\\u00e9rld\\n");
        let s = t.fill(e.as_bytes()).unwrap();
        assert_eq!(s.decoded_len, " w\u{e9}rld\n".len());
        assert_eq!(t.base, 7);
        let e = event("");
        assert_eq!(t.fill(e.as_bytes()).unwrap().decoded_len, 0);
    }

    #[test]
    fn anything_else_misses() {
        let (_, t) = template("a");
        for other in [
            // The hole holds more than one string.
            event(r#"a","x":"b"#),
            event("a\"b"),
            event("a\u{1}b"),
            event("a\\x"),
            event("\\ud800"),
            // A different prefix or suffix.
            event("a").replace("chatcmpl-1", "chatcmpl-2"),
            event("a").replace("null}", "\"stop\"}"),
            event("a") + " ",
        ] {
            assert!(t.fill(other.as_bytes()).is_none(), "{other}");
        }
        assert!(t.fill(b"\xff").is_none());
        let mut bad = event("é").into_bytes();
        let i = bad.iter().position(|&b| b == 0xc3).unwrap();
        bad[i + 1] = b'x';
        assert!(t.fill(&bad).is_none(), "invalid UTF-8 in the hole");
    }

    #[test]
    fn a_hole_not_between_quotes_is_refused() {
        let e = event("abc");
        let i = e.find("abc").unwrap();
        assert!(Template::new(e.as_bytes(), &e.as_bytes()[i..i + 2], 0).is_none());
        assert!(
            Template::new(e.as_bytes(), b"abc", 0).is_none(),
            "not a sub-slice"
        );
    }
}
