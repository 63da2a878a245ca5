//! Mooncake import rate (not a test): prompt tokens per second on one thread.
//!
//! ```text
//! cargo run --release -p llmib-generator --example bench_mooncake -- [TOKENIZER.json] [RECORDS] [MAX_BLOCKS]
//! ```
//! Writes a Mooncake-shaped JSONL to a temporary directory (RECORDS records of 1..=MAX_BLOCKS
//! blocks of 512 tokens, the last one partial; every record shares its first block with
//! all others and its second with a quarter of them, the rest new, like the published
//! trace's system prompts and conversations), then times `import_mooncake`: parsing,
//! block text, the tokenizer's checks (each new block alone, then every whole prompt)
//! and writing the trace. Vetting the tokenizer's vocabulary is reported separately.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Instant;

use generator::{MooncakeOptions, PromptSource, import_mooncake};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tokenizer = args.first().filter(|a| *a != "-");
    let records: u64 = args.get(1).map_or(500, |a| a.parse().expect("RECORDS"));
    let max_blocks: u64 = args.get(2).map_or(16, |a| a.parse().expect("MAX_BLOCKS"));

    let t = Instant::now();
    let source = match tokenizer {
        Some(p) => PromptSource::from_tokenizer_file(Path::new(p), None).expect("tokenizer"),
        None => PromptSource::builtin(),
    };
    let setup = t.elapsed();

    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bench.jsonl");
    let mut text = String::new();
    let mut next_id = 4u64;
    for i in 0..records {
        // A deterministic spread of lengths: 1..=max_blocks blocks, last one partial.
        let blocks = 1 + (i * 7919) % max_blocks;
        let tokens = (blocks - 1) * 512 + 1 + (i * 104_729) % 512;
        let mut ids = vec![0u64];
        if blocks > 1 {
            ids.push(1 + i % 4);
        }
        while (ids.len() as u64) < blocks {
            ids.push(next_id);
            next_id += 1;
        }
        let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
        writeln!(
            text,
            "{{\"timestamp\": {}, \"input_length\": {tokens}, \"output_length\": 100, \"hash_ids\": [{}]}}",
            i * 250,
            ids.join(", ")
        )
        .unwrap();
    }
    std::fs::write(&input, text).expect("write input");

    let out = dir.path().join("bench.msgpack");
    let t = Instant::now();
    let r = import_mooncake(&input, &MooncakeOptions::default(), &source, &out).expect("import");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "tokenizer {}: vetting {:.2} s; {} records, {} prompt tokens in {:.3} s: {:.0} prompt tokens/s",
        source.info().name,
        setup.as_secs_f64(),
        r.requests,
        r.prompt_tokens,
        secs,
        r.prompt_tokens as f64 / secs
    );
}
