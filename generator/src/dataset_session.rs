//! Dataset imports with `--sessions`: each conversation of a ShareGPT file, or each
//! `session_id` of a JSONL file, becomes a multi-turn session, one request per user turn
//! whose `messages` are the recorded conversation up to and including that turn.
//!
//! Steps, as for single-shot imports ([`crate::dataset`]) but per session:
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
    render_messages, sha256_file,
};

use crate::GENERATOR_VERSION;
use crate::azure::ImportReport;
use crate::dataset::{
    DatasetOptions, DatasetReport, ItemOutput, check_options, default_name, output_len, passes,
    visit_shuffled,
};
use crate::dist::{arrivals, sample_length};
use crate::error::{GenError, Result};
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
    input: &Path,
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
            input.display(),
            c.filtered,
            c.unusable
        )));
    }
    let starts = starts(&mut c.sessions, arrival.as_ref(), &key)?;
    let turns: Vec<u32> = c.sessions.iter().map(|s| s.len() as u32).collect();
    let sessions = turns.len();
    let mut think = opts.think.as_ref().map(|t| ThinkSampler::new(t, &key));
    let slots = schedule(&starts, &turns, |s, k| match &mut think {
        Some(t) => t.draw_ns(),
        None if all_timed => recorded_gap(&c.sessions[s as usize], k as usize),
        None => Ok(0),
    })?;
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
    let spec = DatasetImportSpec {
        name: opts.name.clone().unwrap_or_else(|| default_name(input)),
        seed: opts.seed,
        source_file: crate::azure::file_name(input),
        source_sha256: sha256_file(input)?,
        requests: opts.requests,
        output_tokens: opts.output_tokens.clone(),
        min_prompt_tokens: opts.min_prompt_tokens,
        max_prompt_tokens: opts.max_prompt_tokens,
        max_output_tokens: opts.max_output_tokens,
        arrival,
        ignore_eos: opts.ignore_eos,
        sessions: true,
        think: opts.think.clone(),
    };
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
