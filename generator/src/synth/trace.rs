//! Synthetic traces: spec + prompt source -> a stream of requests -> a trace file.

use std::path::{Path, PathBuf};

use formats::{SyntheticSpec, TraceHeader, TraceRequest, TraceSpec, TraceWriter};

use crate::GENERATOR_VERSION;
use crate::dist::{arrivals, sample_length};
use crate::error::Result;
use crate::prompt::{PromptBuilder, PromptSource};
use crate::rng::{Purpose, SeedKey, StreamRng};
use crate::spec::validate;
use crate::synth::prefix::{GroupChooser, Prefixes};
use crate::synth::sessions::SessionRequests;

/// The requests of a synthetic trace, generated lazily in id order.
pub struct Requests<'a>(Inner<'a>);

enum Inner<'a> {
    Single(Box<Single<'a>>),
    Sessions(Box<SessionRequests<'a>>),
}

/// The requests of a spec without `sessions`: one single-shot request per draw.
struct Single<'a> {
    spec: &'a SyntheticSpec,
    prompts: PromptBuilder<'a>,
    arrivals: Vec<u64>,
    prompt_lengths: StreamRng,
    output_lengths: StreamRng,
    shared: Option<Shared<'a>>,
    next: u64,
}

/// The shared-prefix state of a spec with `prefix` (see [`crate::synth::prefix`]).
struct Shared<'a> {
    groups: GroupChooser,
    prefixes: Prefixes<'a>,
    tokens: u32,
}

impl<'a> Requests<'a> {
    /// Validates `spec` and prepares its requests.
    pub fn new(spec: &'a SyntheticSpec, source: &'a PromptSource) -> Result<Self> {
        validate(spec)?;
        Ok(Requests(match spec.sessions {
            None => Inner::Single(Box::new(Single::new(spec, source)?)),
            Some(_) => Inner::Sessions(Box::new(SessionRequests::new(spec, source)?)),
        }))
    }

    /// The trace header these requests belong under (version 3 with `sessions`).
    pub fn header(spec: &SyntheticSpec, source: &PromptSource) -> TraceHeader {
        let header = TraceHeader::new(
            TraceSpec::Synthetic(spec.clone()),
            source.info().clone(),
            spec.requests,
            GENERATOR_VERSION,
        );
        match spec.sessions {
            None => header,
            Some(_) => header.with_sessions(),
        }
    }
}

impl Iterator for Requests<'_> {
    type Item = Result<TraceRequest>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.0 {
            Inner::Single(r) => r.next(),
            Inner::Sessions(r) => r.next(),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.0 {
            Inner::Single(r) => r.size_hint(),
            Inner::Sessions(r) => r.size_hint(),
        }
    }
}

impl<'a> Single<'a> {
    fn new(spec: &'a SyntheticSpec, source: &'a PromptSource) -> Result<Self> {
        let key = SeedKey::new(spec.seed);
        let arrivals = arrivals(
            &spec.arrival,
            spec.requests,
            &mut key.stream(Purpose::Arrivals),
        )?;
        Ok(Single {
            spec,
            prompts: source.builder(spec.seed, spec.requests),
            arrivals,
            prompt_lengths: key.stream(Purpose::PromptLengths),
            output_lengths: key.stream(Purpose::OutputLengths),
            shared: spec.prefix.as_ref().map(|p| Shared {
                groups: GroupChooser::new(p, &key),
                prefixes: Prefixes::new(source, spec.seed, p.tokens),
                tokens: p.tokens,
            }),
            next: 0,
        })
    }
}

impl Iterator for Single<'_> {
    type Item = Result<TraceRequest>;

    fn next(&mut self) -> Option<Self::Item> {
        let id = self.next;
        if id >= self.spec.requests {
            return None;
        }
        self.next += 1;
        let mut prompt_tokens = sample_length(&self.spec.prompt_tokens, &mut self.prompt_lengths);
        let max_tokens = sample_length(&self.spec.output_tokens, &mut self.output_lengths);
        let prompt = match &mut self.shared {
            None => self.prompts.build(id, prompt_tokens),
            Some(shared) => {
                prompt_tokens = prompt_tokens.max(shared.tokens + 1);
                let g = shared.groups.group(id);
                match shared.prefixes.get(g) {
                    Ok(prefix) => self.prompts.build_after(prefix, id, prompt_tokens),
                    Err(e) => Err(e),
                }
            }
        };
        Some(prompt.map(|p| TraceRequest {
            id,
            arrival_ns: self.arrivals[id as usize],
            prompt: p.text,
            prompt_token_ids: p.token_ids,
            prompt_tokens,
            max_tokens,
            ignore_eos: self.spec.ignore_eos,
            ..Default::default()
        }))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = (self.spec.requests - self.next) as usize;
        (left, Some(left))
    }
}

/// What a generation wrote.
#[derive(Debug, Clone)]
pub struct GenerateReport {
    pub path: PathBuf,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub output_tokens: u64,
}

/// Generates `spec` into the trace file `out` (written to a temporary and renamed: a
/// failure leaves no file behind).
pub fn generate_trace(
    spec: &SyntheticSpec,
    source: &PromptSource,
    out: &Path,
) -> Result<GenerateReport> {
    let requests = Requests::new(spec, source)?;
    let mut writer = TraceWriter::create(out, &Requests::header(spec, source))?;
    let (mut prompt_tokens, mut output_tokens) = (0u64, 0u64);
    for r in requests {
        let r = r?;
        prompt_tokens += u64::from(r.prompt_tokens);
        output_tokens += u64::from(r.max_tokens);
        writer.write(&r)?;
    }
    let path = writer.finish()?;
    Ok(GenerateReport {
        path,
        requests: spec.requests,
        prompt_tokens,
        output_tokens,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::{Arrival, LengthDist};

    fn spec() -> SyntheticSpec {
        SyntheticSpec {
            name: "t".into(),
            seed: 42,
            requests: 300,
            prompt_tokens: LengthDist::Uniform {
                lo: 1,
                hi: 64,
                floor: 1,
            },
            output_tokens: LengthDist::CappedExponential {
                mean: 128.0,
                cap: 512,
                floor: 1,
            },
            arrival: Arrival::Poisson { rate: 4.0 },
            ignore_eos: true,
            prefix: None,
            sessions: None,
        }
    }

    fn all(spec: &SyntheticSpec) -> Vec<TraceRequest> {
        let src = PromptSource::builtin();
        Requests::new(spec, &src)
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap()
    }

    #[test]
    fn changing_one_parameter_does_not_reshuffle_the_others() {
        let base = all(&spec());
        // Other output distribution: prompts and arrivals unchanged.
        let mut s = spec();
        s.output_tokens = LengthDist::Uniform {
            lo: 1,
            hi: 7,
            floor: 1,
        };
        let other = all(&s);
        for (a, b) in base.iter().zip(&other) {
            assert_eq!(
                (a.arrival_ns, &a.prompt, a.prompt_tokens),
                (b.arrival_ns, &b.prompt, b.prompt_tokens)
            );
        }
        assert_ne!(
            base.iter().map(|r| r.max_tokens).collect::<Vec<_>>(),
            other.iter().map(|r| r.max_tokens).collect::<Vec<_>>()
        );
        // Other arrival process: lengths and prompts unchanged.
        let mut s = spec();
        s.arrival = Arrival::Gamma {
            rate: 1.0,
            burstiness: 0.3,
        };
        let other = all(&s);
        for (a, b) in base.iter().zip(&other) {
            assert_eq!((&a.prompt, a.max_tokens), (&b.prompt, b.max_tokens));
        }
        assert_ne!(base[5].arrival_ns, other[5].arrival_ns);
        // Other prompt lengths: outputs and arrivals unchanged, and each prompt is a
        // prefix of (or extends) the same word sequence.
        let mut s = spec();
        s.prompt_tokens = LengthDist::Fixed {
            value: 64,
            floor: 1,
        };
        let other = all(&s);
        for (a, b) in base.iter().zip(&other) {
            assert_eq!((a.arrival_ns, a.max_tokens), (b.arrival_ns, b.max_tokens));
            assert!(b.prompt.starts_with(&a.prompt));
        }
        // More requests: the first ones unchanged (same id-digit count).
        let mut s = spec();
        s.requests = 400;
        assert_eq!(&all(&s)[..300], &base[..]);
        // Another seed changes everything.
        let mut s = spec();
        s.seed = 43;
        let other = all(&s);
        assert_ne!(base[1].prompt, other[1].prompt);
        assert_ne!(base[1].arrival_ns, other[1].arrival_ns);
    }

    #[test]
    fn prompts_have_exact_word_counts_and_distinct_first_words() {
        let reqs = all(&spec());
        let mut firsts = std::collections::BTreeSet::new();
        for r in &reqs {
            assert_eq!(r.prompt.split(' ').count(), r.prompt_tokens as usize);
            assert_eq!(
                r.prompt.split_whitespace().count(),
                r.prompt_tokens as usize
            );
            assert!(r.prompt_token_ids.is_none());
            assert!(
                firsts.insert(r.prompt.split(' ').next().unwrap().to_string()),
                "first word repeats"
            );
        }
        assert!(reqs.windows(2).all(|w| w[0].arrival_ns <= w[1].arrival_ns));
        assert!(
            reqs.iter()
                .enumerate()
                .all(|(i, r)| r.id == i as u64 && r.ignore_eos)
        );
    }

    #[test]
    fn many_requests_use_more_id_words_and_stay_distinct() {
        let src = PromptSource::builtin();
        let mut s = spec();
        s.requests = 5000;
        s.prompt_tokens = LengthDist::Fixed { value: 2, floor: 1 };
        let b = src.builder(s.seed, s.requests);
        assert_eq!(b.id_words(), 2);
        let prompts: std::collections::BTreeSet<String> = Requests::new(&s, &src)
            .unwrap()
            .map(|r| r.unwrap().prompt)
            .collect();
        assert_eq!(prompts.len(), 5000);
    }

    #[test]
    fn same_spec_same_bytes_twice() {
        let dir = tempfile::tempdir().unwrap();
        let src = PromptSource::builtin();
        let (a, b) = (dir.path().join("a.msgpack"), dir.path().join("b.msgpack"));
        let ra = generate_trace(&spec(), &src, &a).unwrap();
        generate_trace(&spec(), &src, &b).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        let (h, reqs) = formats::read_trace(&a).unwrap();
        assert_eq!(h.spec, TraceSpec::Synthetic(spec()));
        assert_eq!(h.generator_version, GENERATOR_VERSION);
        assert_eq!(
            reqs.iter().map(|r| u64::from(r.prompt_tokens)).sum::<u64>(),
            ra.prompt_tokens
        );
    }

    #[test]
    fn invalid_spec_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec();
        s.arrival = Arrival::Poisson { rate: -1.0 };
        let out = dir.path().join("x.msgpack");
        assert!(generate_trace(&s, &PromptSource::builtin(), &out).is_err());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
