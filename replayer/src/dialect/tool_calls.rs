//! Tool calls in an answer: how many, whether each one's arguments parse as JSON, when
//! the first argument token came, and how many output tokens the arguments took.
//!
//! Why: agents and extraction pipelines send `tools` and force a call (`tool_choice`),
//! which costs the server grammar-constrained decoding; the time to the first argument
//! token is their TTFT, and a call whose arguments do not parse is a failed request for
//! them even when HTTP said 200. The dialects feed this module (chat `tool_calls`
//! deltas, the Responses API's `function_call` items, Messages' `tool_use` blocks), each
//! call keyed by the index the server gave it.

use std::collections::BTreeMap;

use formats::Events;

/// What a response said about its tool calls, so far.
#[derive(Debug, Default)]
pub struct ToolCalls {
    /// Each call's arguments text, by the server's index for it.
    args: BTreeMap<u64, String>,
    /// Receive time of the first event carrying argument text.
    first_ns: Option<u64>,
    /// Indices of the events that carried argument text.
    events: Vec<usize>,
    /// Calls of a whole (non-streamed) answer whose arguments came as a JSON value
    /// (Messages' `input`): valid by construction.
    whole_valid: u32,
}

/// The record fields this module fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ToolFields {
    pub tool_calls: Option<u32>,
    pub tool_calls_valid: Option<u32>,
    pub first_tool_ns: Option<u64>,
    pub tool_tokens: Option<u32>,
}

impl ToolCalls {
    /// A call begins (its name known, its arguments to come), under the server's `key`.
    pub fn start(&mut self, key: u64) {
        self.args.entry(key).or_default();
    }

    /// `text` of call `key`'s arguments arrived in the streamed event `event` at `t_ns`
    /// (the event is about to be pushed at that index). An empty text is still a token's
    /// (vLLM sends `"arguments": ""` for a token that ends inside a UTF-8 character).
    pub fn arguments(&mut self, key: u64, text: &str, event: usize, t_ns: u64) {
        self.args.entry(key).or_default().push_str(text);
        self.first_ns.get_or_insert(t_ns);
        if self.events.last() != Some(&event) {
            self.events.push(event);
        }
    }

    /// A whole answer's call with its arguments as text.
    pub fn whole_text(&mut self, text: &str) {
        let key = self.args.len() as u64;
        self.args.insert(key, text.to_string());
    }

    /// A whole answer's call whose arguments came as a JSON value (valid).
    pub fn whole_value(&mut self) {
        self.whole_valid += 1;
    }

    /// The record fields; `events` the response's events (their counts settled).
    pub fn fields(&self, events: &Events) -> ToolFields {
        let calls = self.args.len() as u32 + self.whole_valid;
        if calls == 0 {
            return ToolFields::default();
        }
        let valid = self
            .args
            .values()
            .filter(|a| serde_json::from_str::<serde_json::Value>(a).is_ok())
            .count() as u32
            + self.whole_valid;
        let tokens: u64 = self
            .events
            .iter()
            .filter_map(|&i| events.tokens.get(i))
            .map(|&k| k as u64)
            .sum();
        ToolFields {
            tool_calls: Some(calls),
            tool_calls_valid: Some(valid),
            first_tool_ns: self.first_ns,
            tool_tokens: (!self.events.is_empty()).then_some(tokens.min(u32::MAX as u64) as u32),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_counted_validated_and_timed() {
        let mut t = ToolCalls::default();
        assert_eq!(t.fields(&Events::default()), ToolFields::default());
        t.start(0);
        t.arguments(0, "{\"a\":", 0, 10);
        t.arguments(0, "1}", 1, 11);
        t.start(1);
        t.arguments(1, "{\"b\":", 2, 12);
        let mut events = Events::default();
        for (t_ns, k) in [(10, 2), (11, 1), (12, 3), (13, 1)] {
            events.push(t_ns, k);
        }
        let f = t.fields(&events);
        assert_eq!(f.tool_calls, Some(2));
        assert_eq!(f.tool_calls_valid, Some(1), "the second call's JSON is cut");
        assert_eq!(f.first_tool_ns, Some(10));
        assert_eq!(f.tool_tokens, Some(6), "events 0..=2, not the text event 3");
        let mut w = ToolCalls::default();
        w.whole_text("not json");
        w.whole_value();
        let f = w.fields(&Events::default());
        assert_eq!(
            (f.tool_calls, f.tool_calls_valid, f.tool_tokens),
            (Some(2), Some(1), None)
        );
    }
}
