//! Dataset imports (`llmib import sharegpt` and `llmib import jsonl`): items of a chat
//! dataset, counted, filtered, sampled and scheduled into a trace.
//!
//! The parsers ([`crate::import::sharegpt`], [`crate::import::jsonl`]) turn a file into [`Item`]s; this
//! module does the rest the same way for both:
//! 1. **Count.** A prompt's tokens are its exact encoding under `--tokenizer` (no special
//!    tokens; the ids are recorded as `prompt_token_ids` and re-encode exactly), else its
//!    whitespace-separated words (what `llmib sim` counts). A dataset output length is the
//!    answer's token count under the tokenizer (ShareGPT) or the line's
//!    `max_tokens`/`output_tokens` (JSONL), raised to at least 1.
//! 2. **Filter.** Items with a prompt outside `[min_prompt_tokens, max_prompt_tokens]`, or
//!    a dataset output length above `max_output_tokens`, are left out and counted.
//! 3. **Sample.** `--requests N` takes the first N eligible items of a seeded random
//!    order of all items (a forward Fisher-Yates shuffle on the seed's dataset-sampling
//!    stream, drawn lazily so only the items examined are counted: a 90k-conversation
//!    file is not encoded whole for 1,000 requests), in that order: N drawn without
//!    replacement, uniformly among the eligible items. Without it every eligible item is
//!    kept, in file order.
//! 4. **Output lengths** from `--output-tokens` (a spec length distribution), when given,
//!    are drawn on the output-length stream in request order.
//! 5. **Arrivals** from the arrival process on the arrival stream, exactly as
//!    `llmib generate` (see [`crate::dist`]); or, for JSONL whose every line has a
//!    `timestamp` and no process is given, `(timestamp - first) x 1e6` ns with the
//!    requests sorted stably by timestamp.

use std::path::Path;

use formats::{
    Arrival, DatasetImportSpec, LengthDist, ThinkTime, TraceHeader, TraceRequest, TraceSpec,
    TraceWriter,
};

use crate::GENERATOR_VERSION;
use crate::dist::{arrivals, sample_length};
use crate::error::{GenError, Result};
use crate::import::azure::ImportReport;
use crate::limits::MAX_PROMPT_TOKENS;
use crate::prompt::PromptSource;
use crate::rng::{Purpose, SeedKey};

/// One request candidate read from a dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    /// Where it came from, for errors: `conversation 3` or `line 7`.
    pub origin: String,
    pub prompt: String,
    pub output: ItemOutput,
    /// Milliseconds (JSONL `timestamp`).
    pub timestamp_ms: Option<u64>,
}

/// The output length an item carries.
#[derive(Debug, Clone, PartialEq)]
pub enum ItemOutput {
    /// The recorded answer, counted under the tokenizer.
    Text(String),
    /// A length in tokens.
    Tokens(u32),
    /// Nothing: the length must come from `--output-tokens`.
    Missing,
}

/// Import options (the CLI flags).
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// Trace name; defaults to the file stem.
    pub name: Option<String>,
    pub seed: u64,
    pub requests: Option<u64>,
    pub output_tokens: Option<LengthDist>,
    pub min_prompt_tokens: u32,
    pub max_prompt_tokens: Option<u32>,
    pub max_output_tokens: Option<u32>,
    /// `None`: the file's timestamps when every item has one, else a burst.
    pub arrival: Option<Arrival>,
    pub ignore_eos: bool,
    /// `--sessions`: keep conversations as multi-turn sessions ([`crate::import::dataset_session`]).
    pub sessions: bool,
    /// `--think-time` (sessions only): think times drawn from this distribution.
    pub think: Option<ThinkTime>,
}

impl Default for DatasetOptions {
    fn default() -> Self {
        DatasetOptions {
            name: None,
            seed: 0,
            requests: None,
            output_tokens: None,
            min_prompt_tokens: 1,
            max_prompt_tokens: None,
            max_output_tokens: None,
            arrival: None,
            ignore_eos: true,
            sessions: false,
            think: None,
        }
    }
}

/// What an import wrote and what it left out.
#[derive(Debug, Clone)]
pub struct DatasetReport {
    pub import: ImportReport,
    /// Items the length filters left out.
    pub filtered: usize,
    /// Items without a usable prompt or answer (e.g. a conversation with no human turn).
    pub unusable: usize,
    /// With `--sessions`: later turns of kept sessions left out because a turn at or
    /// before them failed the filters or had no answer (a session ends at such a turn).
    pub cut_turns: usize,
    /// With `--sessions`: sessions written (0 without).
    pub sessions: usize,
}

/// An item that passed the filters.
struct Candidate {
    prompt: String,
    ids: Option<Vec<u32>>,
    prompt_tokens: u32,
    output: Option<u32>,
    timestamp_ms: Option<u64>,
}

pub(crate) fn check_options(o: &DatasetOptions) -> Result<()> {
    crate::spec::check_name_flag(o.name.as_deref())?;
    let bad = |m: &str| Err(GenError::InvalidSpec(m.into()));
    if o.requests == Some(0) {
        return bad("--requests must be at least 1");
    }
    if o.min_prompt_tokens == 0 {
        return bad("--min-prompt-tokens must be at least 1 (servers reject empty prompts)");
    }
    if o.max_prompt_tokens.is_some_and(|m| m < o.min_prompt_tokens) {
        return bad("--max-prompt-tokens is below --min-prompt-tokens");
    }
    if o.max_output_tokens.is_some() && o.output_tokens.is_some() {
        return bad(
            "--max-output-tokens filters the dataset's output lengths; with --output-tokens set the distribution's cap instead",
        );
    }
    if let Some(d) = &o.output_tokens {
        crate::spec::validate_dist("--output-tokens", d)?;
    }
    if let Some(a) = &o.arrival {
        crate::spec::validate_arrival(a)?;
    }
    match (&o.think, o.sessions) {
        (Some(_), false) => bad("--think-time applies with --sessions only"),
        (Some(t), true) => crate::session::validate_think("--think-time", t),
        (None, _) => Ok(()),
    }
}

/// Counts a text: exact ids under a tokenizer, else whitespace-separated words.
fn count(source: &PromptSource, text: &str, origin: &str) -> Result<(u32, Option<Vec<u32>>)> {
    source.count(text, origin)
}

/// The dataset output length of an item's `output`, `Ok(None)` when it has none to
/// give (or `--output-tokens` gives it); `origin` names the item in errors.
pub(crate) fn output_len(
    source: &PromptSource,
    output: &ItemOutput,
    origin: &str,
    opts: &DatasetOptions,
) -> Result<Option<u32>> {
    if opts.output_tokens.is_some() {
        return Ok(None);
    }
    match output {
        ItemOutput::Tokens(n) => Ok(Some((*n).max(1))),
        ItemOutput::Text(t) if source.tokenizer().is_some() => {
            Ok(Some(count(source, t, origin)?.0.max(1)))
        }
        ItemOutput::Text(_) => Err(GenError::InvalidSpec(
            "output lengths from the recorded answers need --tokenizer; or give --output-tokens"
                .into(),
        )),
        ItemOutput::Missing => Ok(None),
    }
}

/// A filtered item's candidate, `Ok(None)` when it has no output length or the filters
/// leave it out (`unusable` / `filtered` count which).
fn candidate(
    item: Item,
    opts: &DatasetOptions,
    source: &PromptSource,
    filtered: &mut usize,
    unusable: &mut usize,
) -> Result<Option<Candidate>> {
    let output = output_len(source, &item.output, &item.origin, opts)?;
    if output.is_none() && opts.output_tokens.is_none() {
        *unusable += 1;
        return Ok(None);
    }
    let (prompt_tokens, ids) = count(source, &item.prompt, &item.origin)?;
    if !passes(opts, prompt_tokens, output) {
        *filtered += 1;
        return Ok(None);
    }
    Ok(Some(Candidate {
        prompt: item.prompt,
        ids,
        prompt_tokens,
        output,
        timestamp_ms: item.timestamp_ms,
    }))
}

/// Whether a prompt count and dataset output length pass the length filters.
pub(crate) fn passes(opts: &DatasetOptions, prompt_tokens: u32, output: Option<u32>) -> bool {
    prompt_tokens >= opts.min_prompt_tokens
        && prompt_tokens <= opts.max_prompt_tokens.unwrap_or(MAX_PROMPT_TOKENS)
        && output.is_none_or(|o| o <= opts.max_output_tokens.unwrap_or(u32::MAX))
}

/// Visits `items` in a seeded random order, a forward Fisher-Yates shuffle on the
/// dataset-sampling stream drawn lazily (one draw per item visited), until `visit`
/// says it has enough.
pub(crate) fn visit_shuffled<T>(
    items: Vec<T>,
    key: &SeedKey,
    mut visit: impl FnMut(T) -> Result<bool>,
) -> Result<()> {
    let len = items.len() as u64;
    let mut items: Vec<Option<T>> = items.into_iter().map(Some).collect();
    let mut order: Vec<u64> = (0..len).collect();
    let mut rng = key.stream(Purpose::DatasetSample);
    for i in 0..len {
        let j = i + rng.below(len - i);
        order.swap(i as usize, j as usize);
        let item = items[order[i as usize] as usize]
            .take()
            .expect("each index once");
        if visit(item)? {
            break;
        }
    }
    Ok(())
}

/// The requests: without `--requests`, every eligible item in file order; with it, the
/// first `n` eligible items of a seeded random order of all items, drawn lazily (a
/// forward Fisher-Yates shuffle on the dataset-sampling stream), so only the items
/// examined are encoded. Returns them with the filtered and unusable counts.
fn choose(
    items: Vec<Item>,
    opts: &DatasetOptions,
    source: &PromptSource,
    key: &SeedKey,
) -> Result<(Vec<Candidate>, usize, usize)> {
    let (mut out, mut filtered, mut unusable) = (Vec::new(), 0, 0);
    let Some(n) = opts.requests else {
        for item in items {
            out.extend(candidate(item, opts, source, &mut filtered, &mut unusable)?);
        }
        return Ok((out, filtered, unusable));
    };
    visit_shuffled(items, key, |item| {
        out.extend(candidate(item, opts, source, &mut filtered, &mut unusable)?);
        Ok(out.len() as u64 == n)
    })?;
    if (out.len() as u64) < n {
        return Err(GenError::Invalid(format!(
            "--requests {n} exceeds the {} items that pass the filters",
            out.len()
        )));
    }
    Ok((out, filtered, unusable))
}

/// The header spec of a dataset import of `input` (`sessions`: `--sessions`, which also
/// records the think time).
pub(crate) fn import_spec(
    opts: &DatasetOptions,
    input: &DatasetFile,
    arrival: Option<Arrival>,
    sessions: bool,
) -> Result<DatasetImportSpec> {
    Ok(DatasetImportSpec {
        name: opts
            .name
            .clone()
            .unwrap_or_else(|| default_name(input.path)),
        seed: opts.seed,
        source_file: crate::import::azure::file_name(input.path),
        source_sha256: input.sha256.clone(),
        requests: opts.requests,
        output_tokens: opts.output_tokens.clone(),
        min_prompt_tokens: opts.min_prompt_tokens,
        max_prompt_tokens: opts.max_prompt_tokens,
        max_output_tokens: opts.max_output_tokens,
        arrival,
        ignore_eos: opts.ignore_eos,
        sessions,
        think: if sessions { opts.think.clone() } else { None },
    })
}

/// The source file's name for the trace name, when `--name` is not given.
pub(crate) fn default_name(input: &Path) -> String {
    input
        .file_stem()
        .map_or_else(|| "dataset".into(), |s| s.to_string_lossy().into_owned())
}

/// Arrival offsets; sorts `chosen` by timestamp when they come from the file.
fn schedule(
    chosen: &mut [Candidate],
    arrival: Option<&Arrival>,
    key: &SeedKey,
) -> Result<Vec<u64>> {
    if let Some(a) = arrival {
        return arrivals(a, chosen.len() as u64, &mut key.stream(Purpose::Arrivals));
    }
    chosen.sort_by_key(|c| c.timestamp_ms); // stable
    let t0 = chosen.first().and_then(|c| c.timestamp_ms).unwrap_or(0);
    chosen
        .iter()
        .map(|c| {
            let ms = c.timestamp_ms.unwrap_or(t0) - t0;
            ms.checked_mul(1_000_000).ok_or_else(|| {
                GenError::Invalid(format!(
                    "timestamp offset of {ms} ms exceeds 64-bit nanoseconds"
                ))
            })
        })
        .collect()
}

/// Imports parsed `items` of the dataset file `input` into the trace file `out`;
/// `kind` wraps the recorded spec (`TraceSpec::ShareGpt` or `TraceSpec::Jsonl`).
pub fn import_items(
    items: Vec<Item>,
    input: &DatasetFile,
    kind: fn(DatasetImportSpec) -> TraceSpec,
    opts: &DatasetOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<DatasetReport> {
    check_options(opts)?;
    if opts.sessions {
        return Err(GenError::InvalidSpec(
            "--sessions needs the conversations, not single items".into(),
        ));
    }
    let rows = items.len();
    let all_timed = rows > 0 && items.iter().all(|i| i.timestamp_ms.is_some());
    let arrival = match (&opts.arrival, all_timed) {
        (Some(a), _) => Some(a.clone()),
        (None, true) => None,
        (None, false) => Some(Arrival::Burst),
    };
    let key = SeedKey::new(opts.seed);
    let (mut chosen, filtered, unusable) = choose(items, opts, source, &key)?;
    if chosen.is_empty() {
        return Err(GenError::Invalid(format!(
            "{}: no items to import ({rows} read, {filtered} left out by the length filters, {unusable} without a prompt and answer)",
            input.path.display()
        )));
    }
    let arrival_ns = schedule(&mut chosen, arrival.as_ref(), &key).map_err(|e| input.name_in(e))?;
    let spec = import_spec(opts, input, arrival, false)?;
    let n = chosen.len() as u64;
    let header = TraceHeader::new(kind(spec), source.info().clone(), n, GENERATOR_VERSION);
    let mut writer = TraceWriter::create(out, &header)?;
    let mut lengths = key.stream(Purpose::OutputLengths);
    let (mut pt, mut ot) = (0u64, 0u64);
    for (id, (c, at)) in chosen.into_iter().zip(arrival_ns).enumerate() {
        let max_tokens = match (&opts.output_tokens, c.output) {
            (Some(d), _) => sample_length(d, &mut lengths),
            (None, Some(o)) => o,
            (None, None) => unreachable!("candidate() keeps only items with an output length"),
        };
        pt += u64::from(c.prompt_tokens);
        ot += u64::from(max_tokens);
        writer.write(&TraceRequest {
            id: id as u64,
            arrival_ns: at,
            prompt: c.prompt,
            prompt_token_ids: c.ids,
            prompt_tokens: c.prompt_tokens,
            max_tokens,
            ignore_eos: opts.ignore_eos,
            ..Default::default()
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
        filtered,
        unusable,
        cut_turns: 0,
        sessions: 0,
    })
}

/// The dataset file an import read: its path (which labels errors and names the trace)
/// and the sha256 of the bytes read (recorded in the header).
#[derive(Debug, Clone)]
pub struct DatasetFile<'a> {
    pub path: &'a Path,
    pub sha256: String,
}

impl DatasetFile<'_> {
    /// `e` naming this file: the timestamp checks run after parsing, on items that only
    /// know their line or conversation.
    pub(crate) fn name_in(&self, e: GenError) -> GenError {
        match e {
            GenError::Invalid(m) => GenError::Invalid(format!("{}: {m}", self.path.display())),
            e => e,
        }
    }
}

/// Parses a length distribution written as in a spec file, an inline TOML table such as
/// `{ dist = "capped_exponential", mean = 128, cap = 512 }` (`--output-tokens`).
pub fn parse_length_dist(text: &str) -> Result<LengthDist> {
    #[derive(serde::Deserialize)]
    struct Wrap {
        d: LengthDist,
    }
    let w: Wrap = toml::from_str(&format!("d = {text}")).map_err(|e| {
        GenError::InvalidSpec(format!(
            "--output-tokens {text:?}: {}",
            e.message()
                .lines()
                .next()
                .unwrap_or("not a length distribution")
        ))
    })?;
    crate::spec::validate_dist("--output-tokens", &w.d)?;
    Ok(w.d)
}

/// The arrival process named by `--arrival`/`--rate`/`--burstiness`: `--rate` alone is
/// Poisson, with `--burstiness` gamma; nothing at all is `None`.
pub fn arrival_from_flags(
    kind: Option<crate::spec::ArrivalKind>,
    rate: Option<f64>,
    burstiness: Option<f64>,
) -> Result<Option<Arrival>> {
    use crate::spec::ArrivalKind as K;
    let kind = match (kind, rate, burstiness) {
        (Some(k), _, _) => k,
        (None, None, None) => return Ok(None),
        (None, _, Some(_)) => K::Gamma,
        (None, Some(_), None) => K::Poisson,
    };
    let bad = |m: &str| Err(GenError::InvalidSpec(m.into()));
    if burstiness.is_some() && kind != K::Gamma {
        return bad("--burstiness applies to gamma arrivals only");
    }
    let need = || GenError::InvalidSpec("this arrival process needs a rate (--rate)".into());
    let a = match kind {
        K::Burst if rate.is_some() => return bad("--rate does not apply to burst arrivals"),
        K::Burst => Arrival::Burst,
        K::Constant => Arrival::Constant {
            rate: rate.ok_or_else(need)?,
        },
        K::Poisson => Arrival::Poisson {
            rate: rate.ok_or_else(need)?,
        },
        K::Gamma => Arrival::Gamma {
            rate: rate.ok_or_else(need)?,
            burstiness: burstiness.unwrap_or(1.0),
        },
    };
    crate::spec::validate_arrival(&a)?;
    Ok(Some(a))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(n: usize) -> Vec<Item> {
        (0..n)
            .map(|i| Item {
                origin: format!("line {}", i + 1),
                prompt: vec!["w"; 1 + i % 10].join(" ") + &format!(" {i}"),
                output: ItemOutput::Tokens(i as u32),
                timestamp_ms: None,
            })
            .collect()
    }

    fn pick(n: usize, opts: &DatasetOptions) -> Result<(Vec<String>, usize, usize)> {
        let src = PromptSource::builtin();
        let (c, f, u) = choose(items(n), opts, &src, &SeedKey::new(opts.seed))?;
        Ok((c.into_iter().map(|c| c.prompt).collect(), f, u))
    }

    #[test]
    fn sampling_is_seeded_without_replacement_and_filtered() {
        let opts = DatasetOptions {
            requests: Some(20),
            seed: 1,
            max_prompt_tokens: Some(6),
            ..DatasetOptions::default()
        };
        let (a, filtered, _) = pick(100, &opts).unwrap();
        assert_eq!(a, pick(100, &opts).unwrap().0);
        let mut uniq = a.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), 20);
        // 1 + i % 10 words plus the index: at most 6 tokens means i % 10 <= 4.
        assert!(a.iter().all(|p| p.split_whitespace().count() <= 6));
        // Lazy: only the items examined are counted, well under the 50 ineligible.
        assert!(filtered < 50, "{filtered}");
        let other = DatasetOptions {
            seed: 2,
            ..opts.clone()
        };
        assert_ne!(a, pick(100, &other).unwrap().0);
        // Not in file order: a shuffle.
        assert_ne!(a, {
            let mut s = a.clone();
            s.sort_by_key(|p| p.rsplit(' ').next().unwrap().parse::<u32>().unwrap());
            s
        });
        let too_many = DatasetOptions {
            requests: Some(51),
            ..opts
        };
        let e = pick(100, &too_many).unwrap_err().to_string();
        assert!(e.contains("--requests 51 exceeds the 50 items"), "{e}");
    }

    #[test]
    fn without_requests_every_eligible_item_in_file_order() {
        let opts = DatasetOptions {
            min_prompt_tokens: 3,
            ..DatasetOptions::default()
        };
        let (a, filtered, unusable) = pick(20, &opts).unwrap();
        assert_eq!((a.len(), filtered, unusable), (18, 2, 0));
        let idx: Vec<u32> = a
            .iter()
            .map(|p| p.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(idx.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn flags_make_arrival_processes() {
        use crate::spec::ArrivalKind as K;
        assert_eq!(arrival_from_flags(None, None, None).unwrap(), None);
        assert_eq!(
            arrival_from_flags(None, Some(2.0), None).unwrap(),
            Some(Arrival::Poisson { rate: 2.0 })
        );
        assert_eq!(
            arrival_from_flags(None, Some(2.0), Some(0.5)).unwrap(),
            Some(Arrival::Gamma {
                rate: 2.0,
                burstiness: 0.5
            })
        );
        assert!(arrival_from_flags(Some(K::Burst), Some(1.0), None).is_err());
        assert!(arrival_from_flags(Some(K::Constant), None, None).is_err());
        assert!(arrival_from_flags(Some(K::Poisson), Some(1.0), Some(2.0)).is_err());
        assert!(arrival_from_flags(None, Some(-1.0), None).is_err());
        assert_eq!(
            parse_length_dist("{ dist = \"fixed\", value = 8 }").unwrap(),
            LengthDist::Fixed { value: 8, floor: 1 }
        );
        assert!(parse_length_dist("{ dist = \"fixed\" }").is_err());
        assert!(parse_length_dist("{ dist = \"uniform\", lo = 9, hi = 1 }").is_err());
    }
}
