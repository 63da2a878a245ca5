//! Reasoning models: which part of a response was reasoning, and when the answer began.
//!
//! Why: a reasoning model (DeepSeek-R1, Qwen3, gpt-oss...) served with a reasoning parser
//! streams its chain of thought in `delta.reasoning` (vLLM >= 0.11; some versions also
//! copy it into `reasoning_content`), or `delta.reasoning_content` (SGLang, llama.cpp,
//! vLLM before 0.11), before the answer in `delta.content`. The first token of any kind
//! (TTFT) then says how soon the server started, not how soon the user saw an answer;
//! the time to first *answer* token can be seconds later. A dialect decoder that tells
//! the two apart reports, per event it pushed, how many text bytes were reasoning and
//! how many answer; this module keeps the two first times and turns the events' token
//! counts into a reasoning-token count when the record is written.
//!
//! Reasoning inline in the answer text (a server started without a reasoning parser
//! sends `<think>...</think>` inside `content`) cannot be told apart here: it counts as
//! answer.

use std::ops::Range;

use formats::Events;

/// An event that carried both reasoning and answer text (rare: the one where the answer
/// begins, when the server puts both in one delta).
#[derive(Debug, Clone, Copy)]
struct Mixed {
    /// Index of the event in the response's events.
    event: usize,
    /// Reasoning text bytes of the event.
    reasoning: u64,
    /// All its text bytes (reasoning and answer).
    text: u64,
}

/// What a response said about reasoning, so far.
#[derive(Debug, Default)]
pub struct Reasoning {
    /// Receive time of the first event with reasoning text.
    pub first_reasoning_ns: Option<u64>,
    /// Receive time of the first event with answer text.
    pub first_answer_ns: Option<u64>,
    /// Reasoning tokens the server reported.
    pub server_tokens: Option<u32>,
    /// Events that carried reasoning text only, as runs of consecutive indices: the
    /// reasoning is one run in the usual stream, so a long chain of thought costs no
    /// memory per event.
    runs: Vec<Range<usize>>,
    mixed: Vec<Mixed>,
}

/// The record fields this module fills.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReasoningFields {
    pub first_reasoning_ns: Option<u64>,
    pub first_answer_ns: Option<u64>,
    pub reasoning_tokens: Option<u32>,
    pub server_reasoning_tokens: Option<u32>,
}

impl Reasoning {
    /// The streamed event at index `event`, received at `t_ns`, carried `reasoning` and
    /// `answer` text bytes.
    pub fn event(&mut self, event: usize, t_ns: u64, reasoning: usize, answer: usize) {
        if reasoning > 0 {
            self.first_reasoning_ns.get_or_insert(t_ns);
            self.mark(event, reasoning, answer);
        }
        if answer > 0 {
            self.first_answer_ns.get_or_insert(t_ns);
        }
    }

    /// A non-streamed answer (its one event, index 0) carried `reasoning` and `answer`
    /// text bytes; it has no first times (nothing was seen before the whole body).
    pub fn whole_answer(&mut self, reasoning: usize, answer: usize) {
        if reasoning > 0 {
            self.mark(0, reasoning, answer);
        }
    }

    fn mark(&mut self, event: usize, reasoning: usize, answer: usize) {
        if answer > 0 {
            self.mixed.push(Mixed {
                event,
                reasoning: reasoning as u64,
                text: (reasoning + answer) as u64,
            });
        } else {
            match self.runs.last_mut() {
                Some(run) if run.end == event => run.end += 1,
                _ => self.runs.push(event..event + 1),
            }
        }
    }

    /// Reasoning tokens among the events' final counts: all of a reasoning-only event's
    /// tokens, and of an event carrying both its share by text bytes (rounded). `None`
    /// without reasoning text, or when the output was not counted (`counted` false).
    pub fn tokens(&self, events: &Events, counted: bool) -> Option<u32> {
        if (self.runs.is_empty() && self.mixed.is_empty()) || !counted {
            return None;
        }
        let k = |i: usize| events.tokens.get(i).copied().unwrap_or(0) as u64;
        let mut sum: u64 = self.runs.iter().flat_map(Range::clone).map(k).sum();
        for m in &self.mixed {
            sum += (2 * k(m.event) * m.reasoning + m.text) / (2 * m.text);
        }
        Some(sum.min(u32::MAX as u64) as u32)
    }

    /// The record's fields, once the events' counts are final.
    pub fn fields(&self, events: &Events, counted: bool) -> ReasoningFields {
        ReasoningFields {
            first_reasoning_ns: self.first_reasoning_ns,
            first_answer_ns: self.first_answer_ns,
            reasoning_tokens: self.tokens(events, counted),
            server_reasoning_tokens: self.server_tokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(tokens: &[u32]) -> Events {
        let mut e = Events::default();
        for (i, k) in tokens.iter().enumerate() {
            e.push(i as u64, *k);
        }
        e
    }

    #[test]
    fn first_times_and_counts() {
        let mut r = Reasoning::default();
        r.event(0, 10, 5, 0);
        r.event(1, 20, 3, 0);
        r.event(2, 30, 2, 6); // the transition: 2 of 8 bytes reasoning
        r.event(3, 40, 0, 4);
        let f = r.fields(&events(&[1, 2, 4, 1]), true);
        assert_eq!(f.first_reasoning_ns, Some(10));
        assert_eq!(f.first_answer_ns, Some(30));
        assert_eq!(f.reasoning_tokens, Some(1 + 2 + 1));
        assert_eq!(
            r.fields(&events(&[1, 2, 4, 1]), false).reasoning_tokens,
            None
        );
    }

    #[test]
    fn reasoning_events_are_kept_as_runs() {
        let mut r = Reasoning::default();
        for i in 0..1000 {
            r.event(i, i as u64, 4, 0);
        }
        r.event(1000, 1000, 0, 0); // no text (a usage increment): not pushed here
        r.event(1001, 1001, 4, 0);
        assert_eq!(r.runs, vec![0..1000, 1001..1002]);
        let tokens: Vec<u32> = (0..1002).map(|i| 1 + (i % 2)).collect();
        let f = r.fields(&events(&tokens), true);
        assert_eq!(f.reasoning_tokens, Some(1500 + 2));
    }

    #[test]
    fn no_reasoning_no_count() {
        let mut r = Reasoning::default();
        r.event(0, 10, 0, 4);
        let f = r.fields(&events(&[1]), true);
        assert_eq!(f.reasoning_tokens, None);
        assert_eq!((f.first_reasoning_ns, f.first_answer_ns), (None, Some(10)));
    }

    #[test]
    fn whole_answer_splits_by_bytes() {
        let mut r = Reasoning::default();
        r.whole_answer(30, 10);
        let f = r.fields(&events(&[8]), true);
        assert_eq!(f.reasoning_tokens, Some(6));
        assert_eq!((f.first_reasoning_ns, f.first_answer_ns), (None, None));
    }
}
