//! Shared-prefix synthesis (`prefix = {...}` in a spec): regeneration, prompt layout,
//! group frequencies, exact counts under a tokenizer.

use std::path::{Path, PathBuf};

use formats::{PrefixShare, PrefixSpec, SyntheticSpec, TraceRequest, TraceSpec};
use generator::prefix::{Prefixes, zipf_cumulative};
use generator::prompt::verify_prompt;
use generator::{PromptSource, Requests, generate_trace, parse_spec, spec_to_toml};
use tokenizers::Tokenizer;

const SPEC: &str = r#"
name = "shared"
seed = 11
requests = 2000
prompt_tokens = { dist = "uniform", lo = 1, hi = 96 }
output_tokens = { dist = "fixed", value = 8 }
arrival = { process = "poisson", rate = 10.0 }
prefix = { groups = 8, tokens = 32, share = "zipf", zipf_s = 1.1 }
"#;

fn spec() -> SyntheticSpec {
    parse_spec(SPEC, Path::new("shared.toml")).unwrap()
}

fn all(spec: &SyntheticSpec, source: &PromptSource) -> Vec<TraceRequest> {
    Requests::new(spec, source)
        .unwrap()
        .collect::<generator::Result<Vec<_>>>()
        .unwrap()
}

/// Each request's group: the one prefix (and a space) its prompt starts with.
fn groups_of(reqs: &[TraceRequest], spec: &SyntheticSpec, source: &PromptSource) -> Vec<u32> {
    let p = spec.prefix.as_ref().unwrap();
    let mut pre = Prefixes::new(source, spec.seed, p.tokens);
    let texts: Vec<String> = (0..p.groups)
        .map(|g| format!("{} ", pre.get(g).unwrap().text))
        .collect();
    reqs.iter()
        .map(|r| {
            let hits: Vec<u32> = (0..p.groups)
                .filter(|&g| r.prompt.starts_with(&texts[g as usize]))
                .collect();
            assert_eq!(hits.len(), 1, "request {} starts with {hits:?}", r.id);
            hits[0]
        })
        .collect()
}

#[test]
fn spec_key_round_trips_and_is_omitted_when_absent() {
    let s = spec();
    assert_eq!(
        s.prefix,
        Some(PrefixSpec {
            groups: 8,
            tokens: 32,
            share: PrefixShare::Zipf,
            zipf_s: Some(1.1)
        })
    );
    let toml = spec_to_toml(&s);
    assert_eq!(parse_spec(&toml, Path::new("x")).unwrap(), s);
    let mut plain = s.clone();
    plain.prefix = None;
    assert!(!spec_to_toml(&plain).contains("prefix"));
    let bad = SPEC.replace("zipf_s = 1.1", "zipf_s = 1.1, extra = 1");
    assert!(parse_spec(&bad, Path::new("x")).is_err());
}

#[test]
fn same_spec_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let src = PromptSource::builtin();
    let (a, b) = (dir.path().join("a.msgpack"), dir.path().join("b.msgpack"));
    generate_trace(&spec(), &src, &a).unwrap();
    generate_trace(&spec(), &src, &b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (h, reqs) = formats::read_trace(&a).unwrap();
    assert_eq!(h.spec, TraceSpec::Synthetic(spec()));
    assert_eq!(reqs, all(&spec(), &src));
}

#[test]
fn prompts_start_with_their_group_prefix_and_keep_exact_lengths() {
    let src = PromptSource::builtin();
    let s = spec();
    let reqs = all(&s, &src);
    let groups = groups_of(&reqs, &s, &src);
    // Without the prefix: the same draws; lengths below 33 are raised to 33.
    let mut plain = s.clone();
    plain.prefix = None;
    let unique = all(&plain, &src);
    let mut raised = 0;
    for (r, u) in reqs.iter().zip(&unique) {
        assert_eq!(r.prompt_tokens, u.prompt_tokens.max(33));
        raised += usize::from(u.prompt_tokens < 33);
        assert_eq!((r.arrival_ns, r.max_tokens), (u.arrival_ns, u.max_tokens));
        verify_prompt(&src, &r.prompt, None, r.prompt_tokens).unwrap();
        // The suffix is the request's own prompt of that length.
        let own = r.prompt.split(' ').skip(32).collect::<Vec<_>>().join(" ");
        assert_eq!(own.split(' ').count(), r.prompt_tokens as usize - 32);
    }
    assert!(raised > 400, "{raised}");
    // Suffixes are unique: no two prompts are equal.
    let distinct: std::collections::BTreeSet<&str> =
        reqs.iter().map(|r| r.prompt.as_str()).collect();
    assert_eq!(distinct.len(), reqs.len());
    // Zipf(1.1) over 8 groups, coarsely: each group's share within 5 standard deviations.
    let w = zipf_cumulative(8, 1.1);
    let n = reqs.len() as f64;
    for g in 0..8 {
        let prob = (w[g] - if g == 0 { 0.0 } else { w[g - 1] }) / w[7];
        let got = groups.iter().filter(|&&x| x as usize == g).count() as f64;
        let sd = (n * prob * (1.0 - prob)).sqrt();
        assert!((got - n * prob).abs() < 5.0 * sd, "group {g}: {got} of {n}");
    }
}

#[test]
fn uniform_and_round_robin_shares() {
    let src = PromptSource::builtin();
    let mut s = spec();
    s.prefix = Some(PrefixSpec {
        groups: 4,
        tokens: 8,
        share: PrefixShare::RoundRobin,
        zipf_s: None,
    });
    let reqs = all(&s, &src);
    let g = groups_of(&reqs, &s, &src);
    assert!(g.iter().enumerate().all(|(i, &g)| g as usize == i % 4));
    s.prefix.as_mut().unwrap().share = PrefixShare::Uniform;
    let reqs = all(&s, &src);
    let g = groups_of(&reqs, &s, &src);
    for k in 0..4 {
        let c = g.iter().filter(|&&x| x == k).count();
        assert!((400..600).contains(&c), "group {k}: {c} of 2000");
    }
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bpe-tokenizer.json")
}

/// Under a tokenizer (the fixture, or `LLMIB_TOKENIZER`), every prompt re-encodes to
/// its recorded ids, which start with its group prefix's ids.
#[test]
fn tokenizer_counts_are_exact_and_token_prefixes_shared() {
    let path = std::env::var_os("LLMIB_TOKENIZER")
        .map(PathBuf::from)
        .unwrap_or_else(fixture);
    let src = PromptSource::from_tokenizer_file(&path, None).unwrap();
    let tok = Tokenizer::from_file(&path).unwrap();
    let mut s = spec();
    s.requests = 300;
    let reqs = all(&s, &src);
    let groups = groups_of(&reqs, &s, &src);
    let mut pre = Prefixes::new(&src, s.seed, 32);
    for (r, &g) in reqs.iter().zip(&groups) {
        let ids = r.prompt_token_ids.as_deref().unwrap();
        assert_eq!(ids.len(), r.prompt_tokens as usize);
        assert_eq!(tok.encode(r.prompt.as_str(), false).unwrap().get_ids(), ids);
        let prefix = pre.get(g).unwrap();
        let prefix_ids = prefix.token_ids.as_deref().unwrap();
        assert_eq!(prefix_ids.len(), 32);
        assert_eq!(
            tok.encode(prefix.text.as_str(), false).unwrap().get_ids(),
            prefix_ids
        );
        assert!(ids.starts_with(prefix_ids), "request {}", r.id);
    }
}
