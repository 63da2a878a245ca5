//! Mooncake import on the repository's sample (`tests/data/mooncake-sample.jsonl`, which
//! repeats hash ids): exact arrivals and lengths, byte-identical regeneration, prefix
//! reuse kept block for block, and exact counts under a real tokenizer (the repo's small
//! BPE fixture; any other file through `LLMIB_TOKENIZER=path/to/tokenizer.json`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use formats::{TraceRequest, TraceSpec, read_trace};
use generator::mooncake::read_mooncake;
use generator::{MooncakeOptions, PromptSource, import_mooncake};
use tokenizers::Tokenizer;

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/mooncake-sample.jsonl")
}

fn tokenizer() -> PathBuf {
    match std::env::var_os("LLMIB_TOKENIZER") {
        Some(p) => PathBuf::from(p),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-bpe-tokenizer.json")
        }
    }
}

fn import(source: &PromptSource, opts: &MooncakeOptions, out: &Path) -> Vec<TraceRequest> {
    import_mooncake(&sample(), opts, source, out).unwrap();
    read_trace(out).unwrap().1
}

#[test]
fn arrivals_lengths_and_spec_are_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.msgpack");
    let reqs = import(&PromptSource::builtin(), &MooncakeOptions::default(), &out);
    let arrivals: Vec<u64> = reqs.iter().map(|r| r.arrival_ns / 1_000_000).collect();
    assert_eq!(
        arrivals,
        [0, 0, 1530, 2871, 2871, 4102, 5733, 6050, 7999, 9100]
    );
    assert!(reqs.iter().all(|r| r.arrival_ns % 1_000_000 == 0));
    let lens: Vec<(u32, u32)> = reqs
        .iter()
        .map(|r| (r.prompt_tokens, r.max_tokens))
        .collect();
    assert_eq!(lens[4], (300, 1), "output_length 0 is raised to 1");
    assert_eq!(lens[9], (2600, 300));
    for r in &reqs {
        assert_eq!(r.prompt.split(' ').count(), r.prompt_tokens as usize);
    }
    let (h, _) = read_trace(&out).unwrap();
    let TraceSpec::Mooncake(spec) = &h.spec else {
        panic!("{:?}", h.spec)
    };
    assert_eq!(spec.source_file, "mooncake-sample.jsonl");
    assert_eq!(spec.block_tokens, 512);
    assert_eq!(h.name, "mooncake-sample");

    let scaled = dir.path().join("s.msgpack");
    let opts = MooncakeOptions {
        time_scale: 4.0,
        max_requests: Some(4),
        ..MooncakeOptions::default()
    };
    let reqs = import(&PromptSource::builtin(), &opts, &scaled);
    let arrivals: Vec<u64> = reqs.iter().map(|r| r.arrival_ns).collect();
    assert_eq!(arrivals, [0, 0, 382_500_000, 717_750_000]);
}

#[test]
fn same_inputs_same_bytes_other_seed_other_text() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b, c) = (
        dir.path().join("a"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let source = PromptSource::builtin();
    let opts = MooncakeOptions::default();
    import(&source, &opts, &a);
    import(&source, &opts, &b);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let other = MooncakeOptions {
        seed: 1,
        ..MooncakeOptions::default()
    };
    let ra = read_trace(&a).unwrap().1;
    let rc = import(&source, &other, &c);
    assert!(ra.iter().zip(&rc).all(|(x, y)| x.prompt != y.prompt));
}

/// Splits every prompt into its blocks' texts (one word per token) and checks that a
/// hash id always has the same text and different ids never do.
#[test]
fn identical_hash_ids_identical_blocks_different_ids_different_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.msgpack");
    let reqs = import(&PromptSource::builtin(), &MooncakeOptions::default(), &out);
    let records = read_mooncake(&sample(), 512).unwrap();
    let mut texts: BTreeMap<u64, String> = BTreeMap::new();
    let mut reused = 0;
    for (r, rec) in reqs.iter().zip(&records) {
        let words: Vec<&str> = r.prompt.split(' ').collect();
        for (h, chunk) in rec.hash_ids.iter().zip(words.chunks(512)) {
            let text = chunk.join(" ");
            match texts.get(h) {
                Some(t) => {
                    assert_eq!(t, &text, "hash id {h}");
                    reused += 1;
                }
                None => {
                    texts.insert(*h, text);
                }
            }
        }
    }
    assert_eq!(reused, 14, "the sample reuses 14 blocks");
    let distinct: std::collections::BTreeSet<&String> = texts.values().collect();
    assert_eq!(distinct.len(), texts.len());
    // Shared leading blocks are shared byte prefixes of the prompts.
    assert!(reqs[3].prompt.starts_with(&reqs[0].prompt));
    assert!(reqs[9].prompt.starts_with(&reqs[3].prompt));
}

#[test]
fn with_a_tokenizer_prompts_and_blocks_re_encode_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("t.msgpack");
    let source = PromptSource::from_tokenizer_file(&tokenizer(), None).unwrap();
    let reqs = import(&source, &MooncakeOptions::default(), &out);
    let tok = Tokenizer::from_file(tokenizer()).unwrap();
    let records = read_mooncake(&sample(), 512).unwrap();
    let mut blocks: BTreeMap<u64, Vec<u32>> = BTreeMap::new();
    for (r, rec) in reqs.iter().zip(&records) {
        let ids = r.prompt_token_ids.as_deref().unwrap();
        assert_eq!(ids.len(), r.prompt_tokens as usize);
        assert_eq!(tok.encode(r.prompt.as_str(), false).unwrap().get_ids(), ids);
        // Block by block, the token ids of a hash id are the same in every prompt.
        for (h, chunk) in rec.hash_ids.iter().zip(ids.chunks(512)) {
            let prev = blocks.entry(*h).or_insert_with(|| chunk.to_vec());
            assert_eq!(prev, chunk, "hash id {h}");
        }
    }
    // Regeneration with the tokenizer is byte-identical too.
    let again = dir.path().join("t2.msgpack");
    import(&source, &MooncakeOptions::default(), &again);
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
}
