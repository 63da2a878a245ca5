//! Prompt exactness with a real `tokenizer.json` (a small BPE fixture in the repo; any
//! other file through `LLMIB_TOKENIZER=path/to/tokenizer.json`).

use std::path::{Path, PathBuf};

use formats::{Arrival, LengthDist, SyntheticSpec};
use generator::prompt::verify_prompt;
use generator::{PromptSource, Requests};
use tokenizers::Tokenizer;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bpe-tokenizer.json")
}

fn tok_len(text: &str) -> usize {
    Tokenizer::from_file(fixture())
        .unwrap()
        .encode(text, false)
        .unwrap()
        .len()
}

fn spec(requests: u64, hi: u32) -> SyntheticSpec {
    SyntheticSpec {
        name: "tok".into(),
        seed: 3,
        requests,
        prompt_tokens: LengthDist::Uniform {
            lo: 1,
            hi,
            floor: 1,
        },
        output_tokens: LengthDist::Fixed { value: 4, floor: 1 },
        arrival: Arrival::Burst,
        ignore_eos: true,
        prefix: None,
        sessions: None,
    }
}

/// Every prompt re-encodes, without special tokens, to exactly its recorded ids.
fn check_all(source: &PromptSource, tok: &Tokenizer, spec: &SyntheticSpec) -> u64 {
    let mut tokens = 0;
    for r in Requests::new(spec, source).unwrap() {
        let r = r.unwrap();
        let ids = r.prompt_token_ids.as_deref().unwrap();
        assert_eq!(ids.len(), r.prompt_tokens as usize);
        let enc = tok.encode(r.prompt.as_str(), false).unwrap();
        assert_eq!(enc.get_ids(), ids, "request {}", r.id);
        verify_prompt(source, &r.prompt, Some(ids), r.prompt_tokens).unwrap();
        tokens += u64::from(r.prompt_tokens);
    }
    tokens
}

#[test]
fn fixture_prompts_re_encode_exactly() {
    let source = PromptSource::from_tokenizer_file(&fixture(), None).unwrap();
    let info = source.info();
    assert_eq!(info.kind, "huggingface");
    assert_eq!(
        info.sha256.as_deref().unwrap(),
        formats::sha256_file(fixture()).unwrap()
    );
    // Vetting keeps words that encode to one token, and drops the special token and the
    // vocabulary entries that the merges never produce: "zq" (no merge at all) and
    // "tree" (the earlier merge "r e" wins, so "tree" encodes as t|re|e).
    let words = source.words();
    assert!(
        words.iter().any(|w| w == "the") && words.iter().any(|w| w == "hill"),
        "{words:?}"
    );
    for never in ["zq", "tree", "tre", "<s>"] {
        assert!(!words.iter().any(|w| w == never), "{never} in {words:?}");
    }
    assert_eq!(tok_len("tree"), 3);
    let tok = Tokenizer::from_file(fixture()).unwrap();
    assert!(check_all(&source, &tok, &spec(300, 200)) > 0);
}

#[test]
fn verify_prompt_catches_a_wrong_count() {
    let source = PromptSource::from_tokenizer_file(&fixture(), None).unwrap();
    let tok = Tokenizer::from_file(fixture()).unwrap();
    let ids = tok.encode("the cat sat", false).unwrap().get_ids().to_vec();
    verify_prompt(&source, "the cat sat", Some(&ids), 3).unwrap();
    assert!(verify_prompt(&source, "the cat sat", Some(&ids), 4).is_err());
    assert!(verify_prompt(&source, "the cat zq", Some(&ids), 3).is_err());
    assert!(verify_prompt(&PromptSource::builtin(), "a  b", None, 2).is_err());
}

#[test]
fn unusable_tokenizers_fail_loudly() {
    let dir = tempfile::tempdir().unwrap();
    // A character-level tokenizer with no whitespace splitting: no word survives vetting.
    let json = r#"{"version":"1.0","truncation":null,"padding":null,"added_tokens":[],
      "normalizer":null,"pre_tokenizer":null,"post_processor":null,"decoder":null,
      "model":{"type":"BPE","dropout":null,"unk_token":null,"continuing_subword_prefix":null,
      "end_of_word_suffix":null,"fuse_unk":false,"byte_fallback":false,"ignore_merges":false,
      "vocab":{"a":0,"b":1," ":2},"merges":[]}}"#;
    let p = dir.path().join("tokenizer.json");
    std::fs::write(&p, json).unwrap();
    let e = PromptSource::from_tokenizer_file(&p, None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("single-token words"), "{e}");
    std::fs::write(&p, "{}").unwrap();
    assert!(PromptSource::from_tokenizer_file(&p, None).is_err());
}

/// `LLMIB_TOKENIZER=/path/to/tokenizer.json cargo test -p llmib-generator --test tokenizer`
/// checks a real tokenizer (Llama, Qwen, GPT-2, ...) the same way.
#[test]
fn external_tokenizer_from_env() {
    let Some(path) = std::env::var_os("LLMIB_TOKENIZER") else {
        eprintln!("LLMIB_TOKENIZER not set: external tokenizer check skipped");
        return;
    };
    let source = PromptSource::from_tokenizer_file(Path::new(&path), None).unwrap();
    let tok = Tokenizer::from_file(&path).unwrap();
    eprintln!(
        "{}: {} vetted words",
        source.info().name,
        source.words().len()
    );
    check_all(&source, &tok, &spec(200, 2048));
}
