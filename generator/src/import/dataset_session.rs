//! Dataset imports with `--sessions`: each conversation of a ShareGPT file, or each
//! `session_id` of a JSONL file, becomes a multi-turn session, one request per user turn
//! whose `messages` are the recorded conversation up to and including that turn.
//!
//! Steps, as for single-shot imports ([`crate::import::dataset`]) but per session:
//! 1. **Turns.** Turn `k` is counted as its rendered chat ([`formats::render_messages`];
//!    exact ids under `--tokenizer`, else whitespace-separated words); its output
//!    length is its recorded answer's count (ShareGPT), the line's `max_tokens` (JSONL),
//!    or a draw of `--output-tokens`.
//! 2. **Filters, per turn.** A turn outside the length filters, or without an output
//!    length, ends its session there: the turns before it are kept (`cut_turns` counts
//!    the turns left out after them); a conversation whose first turn fails is left out
//!    (`filtered`, or `unusable` with no user turn or answer).
//! 3. **Sampling.** `--requests N` counts requests (turns), as `requests` does in a spec:
//!    whole conversations are taken in the seeded random order of [`visit_shuffled`]
//!    until their turns reach `N`, and the last one is cut short at `N`. Without it,
//!    every eligible conversation, in file order.
//! 4. **Starts.** Sessions start on the arrival process (stream 3, one per session); or,
//!    for JSONL whose every line has a `timestamp` and no process given, at their first
//!    turn's `(timestamp - first) x 10^6` ns, sessions sorted stably by it.
//! 5. **Think times.** `--think-time`: drawn on stream 8, one per turn after the first,
//!    session by session; else, when every line has a `timestamp` (JSONL), the gap to
//!    the previous turn's timestamp (which includes that turn's recorded service time:
//!    an upper bound of the user's think time); else 0.
//! 6. **Output lengths** from `--output-tokens` are drawn on stream 2, session by session.
//! 7. **File order** as [`crate::session::schedule`] says (nominal arrival, then turn,
//!    then session).

use std::path::Path;
use std::rc::Rc;

use formats::{
    Arrival, ChatMessage, DatasetImportSpec, TraceHeader, TraceRequest, TraceSpec, TraceWriter,
    render_messages,
};

use crate::GENERATOR_VERSION;
use crate::dist::{arrivals, sample_length};
use crate::error::{GenError, Result};
use crate::import::azure::ImportReport;
use crate::import::dataset::{
    DatasetFile, DatasetOptions, DatasetReport, ItemOutput, check_options, output_len, passes,
    visit_shuffled,
};
use crate::prompt::PromptSource;
use crate::rng::{Purpose, SeedKey};
use crate::session::{ThinkSampler, schedule};

/// One conversation of a dataset, to become a session.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    /// Where it came from, for errors: `conversation 3` or `line 7`.
    pub origin: String,
    /// Its user turns, in order.
    pub turns: Vec<TurnItem>,
}

/// One user turn of a conversation.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnItem {
    /// `conversation 3 turn 1` or `line 7`.
    pub origin: String,
    /// The turn's chat is `chat[..upto]`; it ends with the turn's user message. Turns of
    /// one ShareGPT conversation share one list.
    pub chat: Rc<Vec<ChatMessage>>,
    pub upto: usize,
    pub output: ItemOutput,
    pub timestamp_ms: Option<u64>,
}

impl TurnItem {
    fn messages(&self) -> &[ChatMessage] {
        &self.chat[..self.upto]
    }
}

/// A turn that passed the filters.
struct Turn {
    item: TurnItem,
    ids: Option<Vec<u32>>,
    prompt_tokens: u32,
    output: Option<u32>,
}

/// A conversation's turns up to its first failing one, or why it has none.
enum Outcome {
    Kept(Vec<Turn>, usize),
    Filtered,
    Unusable,
}

fn session(conv: Conversation, opts: &DatasetOptions, source: &PromptSource) -> Result<Outcome> {
    let n = conv.turns.len();
    let mut kept = Vec::new();
    for item in conv.turns {
        let output = output_len(source, &item.output, &item.origin, opts)?;
        let usable = output.is_some() || opts.output_tokens.is_some();
        let counted = if usable {
            let (tokens, ids) = source.count(&render_messages(item.messages()), &item.origin)?;
            passes(opts, tokens, output).then_some((tokens, ids))
        } else {
            None
        };
        let Some((prompt_tokens, ids)) = counted else {
            return Ok(match (kept.is_empty(), usable) {
                (true, false) => Outcome::Unusable,
                (true, true) => Outcome::Filtered,
                (false, _) => {
                    let cut = n - kept.len();
                    Outcome::Kept(kept, cut)
                }
            });
        };
        kept.push(Turn {
            item,
            ids,
            prompt_tokens,
            output,
        });
    }
    Ok(if kept.is_empty() {
        Outcome::Unusable
    } else {
        Outcome::Kept(kept, 0)
    })
}

/// What [`choose`] found: the sessions, and the filtered, unusable and cut counts.
#[derive(Default)]
struct Chosen {
    sessions: Vec<Vec<Turn>>,
    filtered: usize,
    unusable: usize,
    cut_turns: usize,
    turns: u64,
}

impl Chosen {
    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Kept(turns, cut) => {
                self.turns += turns.len() as u64;
                self.cut_turns += cut;
                self.sessions.push(turns);
            }
            Outcome::Filtered => self.filtered += 1,
            Outcome::Unusable => self.unusable += 1,
        }
    }
}

/// The sessions: every eligible conversation in file order, or with `--requests N` the
/// first eligible ones of the seeded random order until `N` turns, the last cut short.
fn choose(
    convs: Vec<Conversation>,
    opts: &DatasetOptions,
    source: &PromptSource,
    key: &SeedKey,
) -> Result<Chosen> {
    let mut c = Chosen::default();
    let Some(n) = opts.requests else {
        for conv in convs {
            c.add(session(conv, opts, source)?);
        }
        return Ok(c);
    };
    visit_shuffled(convs, key, |conv| {
        c.add(session(conv, opts, source)?);
        Ok(c.turns >= n)
    })?;
    if c.turns < n {
        return Err(GenError::Invalid(format!(
            "--requests {n} exceeds the {} turns of the conversations that pass the filters",
            c.turns
        )));
    }
    let over = (c.turns - n) as usize;
    let last = c.sessions.last_mut().expect("n >= 1 turns were found");
    last.truncate(last.len() - over);
    c.turns = n;
    Ok(c)
}

/// Session starts; sorts `sessions` by first timestamp when the starts come from them.
fn starts(
    sessions: &mut [Vec<Turn>],
    arrival: Option<&Arrival>,
    key: &SeedKey,
) -> Result<Vec<u64>> {
    if let Some(a) = arrival {
        return arrivals(a, sessions.len() as u64, &mut key.stream(Purpose::Arrivals));
    }
    let first = |s: &Vec<Turn>| s[0].item.timestamp_ms.expect("every line is timed");
    sessions.sort_by_key(first); // stable
    let t0 = first(&sessions[0]);
    sessions.iter().map(|s| ms_to_ns(first(s) - t0)).collect()
}

fn ms_to_ns(ms: u64) -> Result<u64> {
    ms.checked_mul(1_000_000).ok_or_else(|| {
        GenError::Invalid(format!(
            "timestamp offset of {ms} ms exceeds 64-bit nanoseconds"
        ))
    })
}

/// The think time before turn `k > 0` of `session` from the recorded timestamps.
fn recorded_gap(session: &[Turn], k: usize) -> Result<u64> {
    let (prev, this) = (&session[k - 1].item, &session[k].item);
    let (a, b) = (
        prev.timestamp_ms.unwrap_or(0),
        this.timestamp_ms.unwrap_or(0),
    );
    let gap = b.checked_sub(a).ok_or_else(|| {
        GenError::Invalid(format!(
            "{}: timestamp {b} is before the previous turn's ({a}, {}) of the same session",
            this.origin, prev.origin
        ))
    })?;
    ms_to_ns(gap)
}

/// Imports the `convs` of the dataset file `input` as sessions into the trace `out`;
/// `kind` wraps the recorded spec. `all_timed`: every line of the file has a timestamp.
pub fn import_sessions(
    convs: Vec<Conversation>,
    input: &DatasetFile,
    kind: fn(DatasetImportSpec) -> TraceSpec,
    opts: &DatasetOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<DatasetReport> {
    check_options(opts)?;
    let rows = convs.len();
    let all_timed = rows > 0
        && convs
            .iter()
            .all(|c| c.turns.iter().all(|t| t.timestamp_ms.is_some()));
    let arrival = match (&opts.arrival, all_timed) {
        (Some(a), _) => Some(a.clone()),
        (None, true) => None,
        (None, false) => Some(Arrival::Burst),
    };
    let key = SeedKey::new(opts.seed);
    let mut c = choose(convs, opts, source, &key)?;
    if c.sessions.is_empty() {
        return Err(GenError::Invalid(format!(
            "{}: no conversations to import ({rows} read, {} left out by the length filters, {} without a user turn and answer)",
            input.path.display(),
            c.filtered,
            c.unusable
        )));
    }
    let starts = starts(&mut c.sessions, arrival.as_ref(), &key).map_err(|e| input.name_in(e))?;
    let turns: Vec<u32> = c.sessions.iter().map(|s| s.len() as u32).collect();
    let sessions = turns.len();
    let mut think = opts.think.as_ref().map(|t| ThinkSampler::new(t, &key));
    let slots = schedule(&starts, &turns, |s, k| match &mut think {
        Some(t) => t.draw_ns(),
        None if all_timed => recorded_gap(&c.sessions[s as usize], k as usize),
        None => Ok(0),
    })
    .map_err(|e| input.name_in(e))?;
    let mut flat: Vec<Turn> = std::mem::take(&mut c.sessions)
        .into_iter()
        .flatten()
        .collect();
    if let Some(d) = &opts.output_tokens {
        let mut lengths = key.stream(Purpose::OutputLengths);
        for t in &mut flat {
            t.output = Some(sample_length(d, &mut lengths));
        }
    }
    let spec = crate::import::dataset::import_spec(opts, input, arrival, true)?;
    let n = flat.len() as u64;
    let header =
        TraceHeader::new(kind(spec), source.info().clone(), n, GENERATOR_VERSION).with_sessions();
    let mut writer = TraceWriter::create(out, &header)?;
    let (mut pt, mut ot) = (0u64, 0u64);
    for (id, slot) in slots.into_iter().enumerate() {
        let t = &mut flat[slot.index];
        let max_tokens = t.output.expect("kept turns have an output length");
        pt += u64::from(t.prompt_tokens);
        ot += u64::from(max_tokens);
        let messages = t.item.messages().to_vec();
        writer.write(&TraceRequest {
            id: id as u64,
            arrival_ns: slot.arrival_ns,
            prompt: render_messages(&messages),
            prompt_token_ids: t.ids.take(),
            prompt_tokens: t.prompt_tokens,
            max_tokens,
            ignore_eos: opts.ignore_eos,
            session_id: Some(slot.session),
            turn: Some(slot.turn),
            think_ns: (slot.turn > 0).then_some(slot.think_ns),
            messages: Some(messages),
        })?;
    }
    let path = writer.finish()?;
    Ok(DatasetReport {
        import: ImportReport {
            path,
            rows,
            requests: n,
            prompt_tokens: pt,
            output_tokens: ot,
        },
        filtered: c.filtered,
        unusable: c.unusable,
        cut_turns: c.cut_turns,
        sessions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::jsonl::parse_jsonl_sessions;
    use crate::import::sharegpt::parse_sharegpt_sessions;
    use formats::{LengthDist, ThinkTime};

    const SHAREGPT: &str = r#"[
        {"conversations":[{"from":"system","value":"Be kind."},{"from":"human","value":"q one"},{"from":"gpt","value":"a one"},{"from":"human","value":"q two"},{"from":"gpt","value":"a two two"},{"from":"human","value":"q three"},{"from":"gpt","value":"a three"}]},
        {"conversations":[{"from":"gpt","value":"hello"},{"from":"human","value":"h1"},{"from":"tool","value":"x"},{"from":"gpt","value":"g1"},{"from":"human","value":"h2"}]},
        {"conversations":[{"from":"human","value":"first"},{"from":"human","value":"second"},{"from":"gpt","value":"answer"}]},
        {"conversations":[{"from":"gpt","value":"alone"}]}
    ]"#;

    fn convs() -> Vec<Conversation> {
        parse_sharegpt_sessions(SHAREGPT, Path::new("s.json")).unwrap()
    }

    fn roles(t: &TurnItem) -> Vec<&str> {
        t.messages().iter().map(|m| m.role.as_str()).collect()
    }

    #[test]
    fn sharegpt_conversations_become_turns() {
        let c = convs();
        assert_eq!(c.len(), 4);
        assert_eq!(c[0].turns.len(), 3);
        assert_eq!(roles(&c[0].turns[0]), ["system", "user"]);
        assert_eq!(
            roles(&c[0].turns[2]),
            ["system", "user", "assistant", "user", "assistant", "user"]
        );
        assert_eq!(c[0].turns[1].output, ItemOutput::Text("a two two".into()));
        assert_eq!(c[0].turns[2].origin, "conversation 0 turn 2");
        // Leading gpt turns and unknown roles are passed over; the last turn has no answer.
        assert_eq!(roles(&c[1].turns[1]), ["user", "assistant", "user"]);
        assert_eq!(c[1].turns[1].output, ItemOutput::Missing);
        // Two human turns in a row: the first one has no answer.
        assert_eq!(c[2].turns[0].output, ItemOutput::Missing);
        assert_eq!(c[2].turns[1].output, ItemOutput::Text("answer".into()));
        assert!(c[3].turns.is_empty());
    }

    #[test]
    fn jsonl_lines_group_by_session_id() {
        let text = "{\"session_id\":\"a\",\"prompt\":\"p1\",\"max_tokens\":1}\n\
            {\"session_id\":7,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":2}\n\
            {\"prompt\":\"lonely\",\"max_tokens\":3}\n\
            {\"session_id\":\"7\",\"prompt\":\"string seven\",\"max_tokens\":4}\n\
            {\"session_id\":\"a\",\"messages\":[{\"role\":\"user\",\"content\":\"p1\"},{\"role\":\"assistant\",\"content\":\"r\"},{\"role\":\"user\",\"content\":\"p2\"}],\"max_tokens\":5}\n";
        let c = parse_jsonl_sessions(text, Path::new("j.jsonl"), true).unwrap();
        let shape: Vec<(String, usize)> = c
            .iter()
            .map(|c| (c.origin.clone(), c.turns.len()))
            .collect();
        assert_eq!(
            shape,
            [
                ("line 1".to_string(), 2),
                ("line 2".into(), 1),
                ("line 3".into(), 1),
                ("line 4".into(), 1)
            ]
        );
        assert_eq!(roles(&c[0].turns[0]), ["user"]);
        assert_eq!(c[0].turns[1].origin, "line 5");
        assert_eq!(c[0].turns[1].output, ItemOutput::Tokens(5));
        for (line, want) in [
            (
                "{\"session_id\":1.5,\"prompt\":\"p\",\"max_tokens\":1}",
                "j.jsonl:1: session_id: expected a string or an integer, found 1.5",
            ),
            (
                "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"},{\"role\":\"assistant\",\"content\":\"y\"}],\"max_tokens\":1}",
                "j.jsonl:1: messages: with --sessions the last message must be a user message",
            ),
        ] {
            let e = parse_jsonl_sessions(line, Path::new("j.jsonl"), true)
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{e}");
        }
        // Without --sessions a session_id of any kind is ignored.
        crate::import::jsonl::parse_jsonl(
            "{\"session_id\":[1],\"prompt\":\"p\",\"max_tokens\":1}",
            Path::new("j.jsonl"),
            true,
        )
        .unwrap();
    }

    fn opts() -> DatasetOptions {
        DatasetOptions {
            sessions: true,
            output_tokens: Some(LengthDist::Fixed { value: 3, floor: 1 }),
            ..DatasetOptions::default()
        }
    }

    fn pick(convs: Vec<Conversation>, o: &DatasetOptions) -> Result<Chosen> {
        choose(convs, o, &PromptSource::builtin(), &SeedKey::new(o.seed))
    }

    fn lens(c: &Chosen) -> Vec<usize> {
        c.sessions.iter().map(Vec::len).collect()
    }

    #[test]
    fn a_turn_outside_the_filters_ends_its_session() {
        // Rendered words: conversation 0's turns 6, 12 and 19 (role labels count), 1's
        // 2 and 6, 2's 2 and 4.
        let mut o = opts();
        o.max_prompt_tokens = Some(12);
        let c = pick(convs(), &o).unwrap();
        assert_eq!(lens(&c), [2, 2, 2]);
        assert_eq!((c.cut_turns, c.filtered, c.unusable), (1, 0, 1));
        o.min_prompt_tokens = 4;
        let c = pick(convs(), &o).unwrap();
        assert_eq!(lens(&c), [2]);
        assert_eq!((c.cut_turns, c.filtered, c.unusable), (1, 2, 1));
    }

    #[test]
    fn missing_answers_end_sessions_when_lengths_come_from_them() {
        let o = DatasetOptions {
            sessions: true,
            ..DatasetOptions::default()
        };
        let mut c = convs();
        for conv in &mut c {
            for t in &mut conv.turns {
                if let ItemOutput::Text(a) = &t.output {
                    t.output = ItemOutput::Tokens(a.split_whitespace().count() as u32);
                }
            }
        }
        let c = pick(c, &o).unwrap();
        assert_eq!(lens(&c), [3, 1]);
        assert_eq!((c.cut_turns, c.unusable), (1, 2));
    }

    #[test]
    fn requests_count_turns_and_cut_the_last_session() {
        let mut o = opts();
        o.requests = Some(4);
        o.seed = 3;
        let c = pick(convs(), &o).unwrap();
        assert_eq!(c.turns, 4);
        assert_eq!(lens(&c).iter().sum::<usize>(), 4);
        let again = pick(convs(), &o).unwrap();
        assert_eq!(lens(&c), lens(&again));
        o.requests = Some(8);
        let e = pick(convs(), &o).err().unwrap().to_string();
        assert!(e.contains("--requests 8 exceeds the 7 turns"), "{e}");
    }

    #[test]
    fn recorded_gaps_are_think_times_and_may_not_go_back() {
        let text = "{\"session_id\":1,\"prompt\":\"a\",\"max_tokens\":1,\"timestamp\":5000}\n\
            {\"session_id\":2,\"prompt\":\"b\",\"max_tokens\":1,\"timestamp\":1000}\n\
            {\"session_id\":1,\"prompt\":\"c\",\"max_tokens\":1,\"timestamp\":5250}\n\
            {\"session_id\":2,\"prompt\":\"d\",\"max_tokens\":1,\"timestamp\":8000}\n";
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("t.jsonl");
        std::fs::write(&input, text).unwrap();
        let out = dir.path().join("t.msgpack");
        let o = DatasetOptions {
            sessions: true,
            ..DatasetOptions::default()
        };
        let src = PromptSource::builtin();
        crate::import_jsonl(&input, &o, &src, &out).unwrap();
        let (h, reqs) = formats::read_trace(&out).unwrap();
        assert_eq!(h.version, formats::TRACE_VERSION_SESSIONS);
        let got: Vec<(u64, &str, Option<u64>)> = reqs
            .iter()
            .map(|r| (r.arrival_ns / 1_000_000, r.prompt.as_str(), r.think_ns))
            .collect();
        assert_eq!(
            got,
            [
                (0, "user: b", None),
                (4000, "user: a", None),
                (4250, "user: c", Some(250_000_000)),
                (7000, "user: d", Some(7_000_000_000)),
            ]
        );
        // --think-time replaces the gaps, and the timestamps still start the sessions.
        let o2 = DatasetOptions {
            think: Some(ThinkTime::Fixed { value_s: 1.0 }),
            ..o.clone()
        };
        crate::import_jsonl(&input, &o2, &src, &out).unwrap();
        let (_, reqs) = formats::read_trace(&out).unwrap();
        let at: Vec<u64> = reqs.iter().map(|r| r.arrival_ns / 1_000_000).collect();
        assert_eq!(at, [0, 1000, 4000, 5000]);
        std::fs::write(&input, text.replace("5250", "4999")).unwrap();
        let e = crate::import_jsonl(&input, &o, &src, &out)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3: timestamp 4999 is before the previous turn's (5000, line 1)"),
            "{e}"
        );
    }

    #[test]
    fn think_time_needs_sessions() {
        let o = DatasetOptions {
            think: Some(ThinkTime::Fixed { value_s: 1.0 }),
            ..DatasetOptions::default()
        };
        let e = check_options(&o).unwrap_err().to_string();
        assert!(
            e.contains("--think-time applies with --sessions only"),
            "{e}"
        );
    }
}
