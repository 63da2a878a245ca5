//! Synthetic multi-turn sessions under a real `tokenizer.json` (the small BPE fixture in
//! the repo; any other file through `LLMIB_TOKENIZER=path/to/tokenizer.json`): every
//! rendered chat re-encodes to exactly its recorded ids, and every recorded answer and
//! shared prefix has exactly its token count.

use std::path::{Path, PathBuf};

use formats::{
    Arrival, LengthDist, PrefixShare, PrefixSpec, SessionSpec, SyntheticSpec, ThinkTime,
    TraceRequest,
};
use generator::prompt::verify_prompt;
use generator::{PromptSource, Requests};
use tokenizers::Tokenizer;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bpe-tokenizer.json")
}

fn spec(requests: u64, hi: u32, prefix: bool) -> SyntheticSpec {
    SyntheticSpec {
        name: "sessions".into(),
        seed: 11,
        requests,
        prompt_tokens: LengthDist::Uniform {
            lo: 1,
            hi,
            floor: 1,
        },
        output_tokens: LengthDist::Uniform {
            lo: 1,
            hi,
            floor: 1,
        },
        arrival: Arrival::Poisson { rate: 4.0 },
        ignore_eos: true,
        prefix: prefix.then_some(PrefixSpec {
            groups: 4,
            tokens: 32,
            share: PrefixShare::Zipf,
            zipf_s: Some(1.1),
        }),
        sessions: Some(SessionSpec {
            turns: LengthDist::Uniform {
                lo: 1,
                hi: 6,
                floor: 1,
            },
            think: ThinkTime::Uniform {
                lo_s: 0.5,
                hi_s: 3.0,
            },
        }),
    }
}

fn count(tok: &Tokenizer, text: &str) -> usize {
    tok.encode(text, false).unwrap().len()
}

/// Checks every request of `spec`; returns how many turns extend their predecessor's ids.
fn check(source: &PromptSource, tok: &Tokenizer, spec: &SyntheticSpec) -> (usize, usize) {
    let reqs: Vec<TraceRequest> = Requests::new(spec, source)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut last: Vec<Option<TraceRequest>> = Vec::new();
    let (mut later, mut extends) = (0, 0);
    for r in &reqs {
        let ids = r
            .prompt_token_ids
            .as_deref()
            .expect("ids under a tokenizer");
        assert_eq!(tok.encode(r.prompt.as_str(), false).unwrap().get_ids(), ids);
        verify_prompt(source, &r.prompt, Some(ids), r.prompt_tokens).unwrap();
        let m = r.messages.as_ref().unwrap();
        assert_eq!(r.prompt, formats::render_messages(m));
        if let Some(p) = &spec.prefix {
            assert_eq!(m[0].role, "system");
            assert_eq!(count(tok, &m[0].content), p.tokens as usize);
        }
        let s = r.session_id.unwrap() as usize;
        if r.turn == Some(0) {
            last.push(Some(r.clone()));
            continue;
        }
        let prev = last[s].replace(r.clone()).unwrap();
        let answer = &m[prev.messages.as_ref().unwrap().len()];
        assert_eq!(answer.role, "assistant");
        assert_eq!(count(tok, &answer.content), prev.max_tokens as usize);
        later += 1;
        extends += usize::from(ids.starts_with(prev.prompt_token_ids.as_deref().unwrap()));
    }
    (later, extends)
}

#[test]
fn fixture_sessions_re_encode_exactly() {
    let source = PromptSource::from_tokenizer_file(&fixture(), None).unwrap();
    let tok = Tokenizer::from_file(fixture()).unwrap();
    let (later, _) = check(&source, &tok, &spec(150, 40, false));
    assert!(later > 50, "{later}");
    check(&source, &tok, &spec(150, 40, true));
}

/// `LLMIB_TOKENIZER=/path/to/tokenizer.json cargo test -p llmib-generator --test sessions`.
#[test]
fn external_tokenizer_sessions_from_env() {
    let Some(path) = std::env::var_os("LLMIB_TOKENIZER") else {
        eprintln!("LLMIB_TOKENIZER not set: external tokenizer check skipped");
        return;
    };
    let source = PromptSource::from_tokenizer_file(Path::new(&path), None).unwrap();
    let tok = Tokenizer::from_file(&path).unwrap();
    let (later, extends) = check(&source, &tok, &spec(200, 400, false));
    check(&source, &tok, &spec(100, 400, true));
    eprintln!(
        "{}: {extends} of {later} later turns' ids start with their previous turn's",
        source.info().name
    );
}
