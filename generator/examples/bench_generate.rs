//! Generation-rate benchmark (not a test): prompt tokens per second on one thread.
//!
//! ```text
//! cargo run --release -p llmib-generator --example bench_generate -- [TOKENIZER.json] [REQUESTS] [MAX_PROMPT] [MAX_TURNS]
//! ```
//! Without a tokenizer it measures the built-in vocabulary. With `MAX_TURNS` the spec
//! has multi-turn sessions of 1..=MAX_TURNS turns (uniform) and `MAX_PROMPT` bounds each
//! new user message and answer; the prompt tokens counted are the rendered chats, whole
//! history included, and the loop also builds each recorded answer. The timed loop covers
//! everything `llmib generate` does per request: length and arrival draws, prompt
//! assembly, encoding with the tokenizer (the exactness check) and writing the trace.
//! Vetting the tokenizer's vocabulary is a one-off cost, reported separately.

use std::path::Path;
use std::time::Instant;

use formats::{Arrival, LengthDist, SessionSpec, SyntheticSpec, ThinkTime};
use generator::{PromptSource, generate_trace};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let tokenizer = args.first().filter(|a| *a != "-");
    let requests: u64 = args.get(1).map_or(2000, |a| a.parse().expect("REQUESTS"));
    let max_prompt: u32 = args.get(2).map_or(1024, |a| a.parse().expect("MAX_PROMPT"));
    let max_turns: Option<u32> = args.get(3).map(|a| a.parse().expect("MAX_TURNS"));

    let t = Instant::now();
    let source = match tokenizer {
        Some(p) => PromptSource::from_tokenizer_file(Path::new(p), None).expect("tokenizer"),
        None => PromptSource::builtin(),
    };
    let setup = t.elapsed();
    let spec = SyntheticSpec {
        name: "bench".into(),
        seed: 1,
        requests,
        prompt_tokens: LengthDist::Uniform {
            lo: 1,
            hi: max_prompt,
            floor: 1,
        },
        output_tokens: LengthDist::CappedExponential {
            mean: 128.0,
            cap: 512,
            floor: 1,
        },
        arrival: Arrival::Poisson { rate: 8.0 },
        ignore_eos: true,
        prefix: None,
        sessions: max_turns.map(|hi| SessionSpec {
            turns: LengthDist::Uniform {
                lo: 1,
                hi,
                floor: 1,
            },
            think: ThinkTime::Exponential { mean_s: 5.0 },
        }),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("bench.msgpack");
    // Warm-up (tokenizer caches, page cache), then the timed runs.
    generate_trace(&spec, &source, &out).expect("generate");
    let (mut best, mut best_cpu) = (f64::INFINITY, f64::INFINITY);
    let mut tokens = 0;
    for _ in 0..3 {
        let (t, c) = (Instant::now(), thread_cpu_s());
        let r = generate_trace(&spec, &source, &out).expect("generate");
        best = best.min(t.elapsed().as_secs_f64());
        best_cpu = best_cpu.min(thread_cpu_s() - c);
        tokens = r.prompt_tokens;
    }
    println!(
        "{} ({} words, setup {:.2} s): {requests} requests, {tokens} prompt tokens: {:.0} prompt tokens/s wall, {:.0} per CPU-second of the thread (best of 3, one thread)",
        source.info().name,
        source.words().len(),
        setup.as_secs_f64(),
        tokens as f64 / best,
        tokens as f64 / best_cpu
    );
}

/// CPU time of this thread in seconds (Linux `/proc/thread-self/schedstat`, first field
/// in ns): the rate per CPU-second is what one core does when the machine is shared.
fn thread_cpu_s() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}
