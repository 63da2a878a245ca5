//! ShareGPT import rate (not a test): prompt tokens per second on one thread.
//!
//! ```text
//! cargo run --release -p llmib-generator --example bench_dataset -- [TOKENIZER.json] [CONVERSATIONS] [MAX_WORDS] [MAX_TURNS]
//! ```
//! With `MAX_TURNS`, conversation `i` has `1 + i mod MAX_TURNS` human/gpt pairs and is
//! imported with `--sessions` (one request per human turn, the rendered chat counted).
//! Writes a ShareGPT-shaped JSON to a temporary directory (CONVERSATIONS conversations,
//! each a human turn of 1..=MAX_WORDS words and a gpt answer of half as many, as
//! sentences of the built-in vocabulary with capitals, commas and full stops), then times
//! `import_sharegpt`: reading, JSON parsing, encoding every prompt and answer, and
//! writing the trace. Vetting the tokenizer's vocabulary (which a dataset import does
//! not need but `PromptSource` does on load) is reported separately.

use std::path::Path;
use std::time::Instant;

use generator::prompt::BUILTIN_WORDS;
use generator::{DatasetOptions, PromptSource, import_sharegpt};

/// Deterministic sentence-like text of `n` words.
fn text(words: &[&str], n: u64, seed: u64) -> String {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005) | 1;
    let mut out = String::new();
    for i in 0..n {
        x = x
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let w = words[((x >> 33) % words.len() as u64) as usize];
        let start = i == 0 || out.ends_with('.');
        if i > 0 {
            out.push(' ');
        }
        if start {
            let mut c = w.chars();
            out.extend(c.next().map(|f| f.to_ascii_uppercase()));
            out.push_str(c.as_str());
        } else {
            out.push_str(w);
        }
        match (x >> 20) % 16 {
            0 => out.push('.'),
            1 => out.push(','),
            _ => {}
        }
    }
    out.push('.');
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tokenizer = args.first().filter(|a| *a != "-");
    let convs: u64 = args
        .get(1)
        .map_or(2000, |a| a.parse().expect("CONVERSATIONS"));
    let max_words: u64 = args.get(2).map_or(1024, |a| a.parse().expect("MAX_WORDS"));
    let max_turns: Option<u64> = args.get(3).map(|a| a.parse().expect("MAX_TURNS"));

    let t = Instant::now();
    let source = match tokenizer {
        Some(p) => PromptSource::from_tokenizer_file(Path::new(p), None).expect("tokenizer"),
        None => PromptSource::builtin(),
    };
    let setup = t.elapsed();

    let words: Vec<&str> = BUILTIN_WORDS.lines().collect();
    let list: Vec<serde_json::Value> = (0..convs)
        .map(|i| {
            let pairs = max_turns.map_or(1, |t| 1 + i % t);
            let turns: Vec<serde_json::Value> = (0..pairs)
                .flat_map(|k| {
                    // Without sessions, exactly the single-turn workload of the README.
                    let j = if max_turns.is_some() { i * 64 + k } else { i };
                    let n = 1 + (j * 7919) % max_words;
                    [
                        serde_json::json!({"from": "human", "value": text(&words, n, 2 * j)}),
                        serde_json::json!({"from": "gpt", "value": text(&words, n / 2 + 1, 2 * j + 1)}),
                    ]
                })
                .collect();
            serde_json::json!({"id": format!("c{i}"), "conversations": turns})
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("bench.json");
    std::fs::write(&input, serde_json::to_vec(&list).unwrap()).expect("write input");

    let out = dir.path().join("bench.msgpack");
    let opts = DatasetOptions {
        output_tokens: tokenizer.is_none().then(|| {
            generator::dataset::parse_length_dist("{ dist = \"fixed\", value = 100 }").unwrap()
        }),
        sessions: max_turns.is_some(),
        ..DatasetOptions::default()
    };
    let t = Instant::now();
    let r = import_sharegpt(&input, &opts, &source, &out).expect("import");
    let secs = t.elapsed().as_secs_f64();
    let r = r.import;
    println!(
        "tokenizer {}: vetting {:.2} s; {} requests, {} prompt + {} answer tokens in {:.3} s: {:.0} prompt tokens/s",
        source.info().name,
        setup.as_secs_f64(),
        r.requests,
        r.prompt_tokens,
        r.output_tokens,
        secs,
        r.prompt_tokens as f64 / secs
    );
}
