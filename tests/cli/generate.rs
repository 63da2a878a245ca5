//! End-to-end tests of `llmib generate`, `llmib import azure` and `llmib trace inspect`
//! through the real binary: outputs, determinism, the committed seed suite, and bad input
//! (exit code 2, one line on stderr, no output file).

use crate::common;

use common::*;
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command that must fail on bad input: exit 2, exactly one `error:` line.
fn fails(args: &[&str]) -> String {
    let out = llmib(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "llmib {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

const SPEC: &str = r#"
name = "cli"
seed = 7
requests = 200

[prompt_tokens]
dist = "uniform"
lo = 1
hi = 300

[output_tokens]
dist = "capped_exponential"
mean = 128.0
cap = 512

[arrival]
process = "poisson"
rate = 4.0
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn generate_is_deterministic_and_inspectable() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "spec.toml", SPEC);
    let (a, b) = (dir.path().join("a.msgpack"), dir.path().join("b.msgpack"));
    let out = ok(&["generate", s(&spec), "-o", s(&a)]);
    assert!(out.contains("200 requests"), "{out}");
    ok(&["generate", s(&spec), "-o", s(&b)]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());

    // Overrides reach the header and the records.
    let c = dir.path().join("c.msgpack");
    ok(&[
        "generate",
        s(&spec),
        "-o",
        s(&c),
        "--seed",
        "8",
        "--requests",
        "50",
        "--name",
        "other",
        "--rate",
        "2",
    ]);
    let (h, reqs) = formats::read_trace(&c).unwrap();
    assert_eq!((h.name.as_str(), h.seed, reqs.len()), ("other", 8, 50));
    assert_eq!(h.spec.rate_per_s(), Some(2.0));

    let summary = ok(&["trace", "inspect", s(&a)]);
    let sha = formats::sha256_file(&a).unwrap();
    for want in [
        "requests           200",
        &sha,
        "prompt tokens",
        "gap (s)",
        "builtin-words",
    ] {
        assert!(summary.contains(want), "missing {want:?} in {summary}");
    }

    let jsonl = ok(&["trace", "inspect", "--jsonl", s(&a)]);
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 201);
    assert_eq!(lines[0]["header"]["name"], "cli");
    let (_, reqs) = formats::read_trace(&a).unwrap();
    for (line, r) in lines[1..].iter().zip(&reqs) {
        assert_eq!(line["id"], r.id);
        assert_eq!(line["arrival_ns"], r.arrival_ns);
        assert_eq!(line["prompt"], r.prompt.as_str());
        assert_eq!(line["prompt_tokens"], r.prompt_tokens);
        assert_eq!(r.prompt.split(' ').count(), r.prompt_tokens as usize);
    }
}

#[test]
fn generate_with_a_tokenizer_records_exact_token_ids() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "spec.toml", SPEC);
    let tok = repo().join("generator/tests/fixtures/tiny-bpe-tokenizer.json");
    let out = dir.path().join("t.msgpack");
    ok(&["generate", s(&spec), "-o", s(&out), "--tokenizer", s(&tok)]);
    let (h, reqs) = formats::read_trace(&out).unwrap();
    assert_eq!(h.tokenizer.kind, "huggingface");
    assert_eq!(h.tokenizer.name, "tiny-bpe-tokenizer.json");
    assert_eq!(
        h.tokenizer.sha256.as_deref(),
        Some(formats::sha256_file(&tok).unwrap().as_str())
    );
    for r in &reqs {
        let ids = r.prompt_token_ids.as_ref().expect("token ids");
        assert_eq!(ids.len(), r.prompt_tokens as usize);
    }
}

#[test]
fn seed_suite_regenerates_the_committed_bytes() {
    let dir = tempfile::tempdir().unwrap();
    ok(&["generate", "--suite", "seed", "-o", s(dir.path())]);
    let committed = repo().join("traces");
    let manifest = std::fs::read_to_string(committed.join("MANIFEST")).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("MANIFEST")).unwrap(),
        manifest
    );
    let mut n = 0;
    for line in manifest.lines() {
        let (hash, rel) = line.split_once("  ").unwrap();
        let fresh = std::fs::read(dir.path().join(rel)).unwrap();
        let old = std::fs::read(committed.join(rel)).unwrap();
        assert!(fresh == old, "{rel} differs from the committed file");
        assert_eq!(
            formats::sha256_bytes(&old),
            hash,
            "{rel} does not match traces/MANIFEST"
        );
        n += 1;
    }
    assert_eq!(n, 16, "8 traces and their 8 specs");
    let total: u64 = manifest
        .lines()
        .map(|l| {
            std::fs::metadata(committed.join(l.split_once("  ").unwrap().1))
                .unwrap()
                .len()
        })
        .sum();
    assert!(total < 25 << 20, "committed suite is {total} bytes");
    // The throughput traces carry exactly 512-token prompts, the latency ones 1..=512.
    let (h, reqs) = formats::read_trace(committed.join("throughput-cap128.msgpack")).unwrap();
    assert_eq!(h.spec.output_cap(), Some(128));
    assert!(
        reqs.iter()
            .all(|r| r.prompt_tokens == 512 && r.max_tokens <= 128 && r.arrival_ns == 0)
    );
    let (h, reqs) = formats::read_trace(committed.join("latency-qps8.msgpack")).unwrap();
    assert_eq!(h.spec.rate_per_s(), Some(8.0));
    assert!(
        reqs.iter()
            .all(|r| (1..=512).contains(&r.prompt_tokens) && r.max_tokens <= 512)
    );
}

#[test]
fn import_azure_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let csv = repo().join("generator/tests/fixtures/azure-sample.csv");
    let out = dir.path().join("az.msgpack");
    ok(&[
        "import",
        "azure",
        s(&csv),
        "-o",
        s(&out),
        "--max-prompt-tokens",
        "1000",
    ]);
    let (h, reqs) = formats::read_trace(&out).unwrap();
    assert_eq!(h.name, "azure-sample");
    let arrivals: Vec<u64> = reqs.iter().map(|r| r.arrival_ns).collect();
    // Sorted stably by timestamp, offsets from the first row, exact to the ns.
    assert_eq!(
        arrivals,
        [
            0,
            4_314_579_000,
            4_541_877_000,
            4_710_427_000,
            4_710_427_000,
            5_219_410_000,
            5_319_410_000,
            8_440_054_000
        ]
    );
    let lens: Vec<(u32, u32)> = reqs
        .iter()
        .map(|r| (r.prompt_tokens, r.max_tokens))
        .collect();
    assert_eq!(
        lens,
        [
            (374, 44),
            (396, 109),
            (879, 55),
            (91, 16),
            (1, 1),
            (1000, 8),
            (1000, 10),
            (110, 27)
        ]
    );

    // Window and time scale: rows in [4 s, 6 s), offsets halved.
    let w = dir.path().join("w.msgpack");
    ok(&[
        "import",
        "azure",
        s(&csv),
        "-o",
        s(&w),
        "--start-s",
        "4",
        "--duration-s",
        "2",
        "--time-scale",
        "2",
        "--max-requests",
        "4",
    ]);
    let (_, reqs) = formats::read_trace(&w).unwrap();
    let arrivals: Vec<u64> = reqs.iter().map(|r| r.arrival_ns).collect();
    assert_eq!(
        arrivals,
        [157_289_500, 270_938_500, 355_213_500, 355_213_500]
    );
}

#[test]
fn bad_input_is_one_line_exit_2_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.msgpack");
    let o = s(&out);
    let e = fails(&["generate", "/nonexistent/spec.toml", "-o", o]);
    assert!(e.contains("/nonexistent/spec.toml"), "{e}");
    let bad = write(
        dir.path(),
        "bad.toml",
        &SPEC.replace("rate = 4.0", "rate = -1.0"),
    );
    assert!(fails(&["generate", s(&bad), "-o", o]).contains("rate"));
    let bad = write(
        dir.path(),
        "nan.toml",
        &SPEC.replace("rate = 4.0", "rate = nan"),
    );
    assert!(fails(&["generate", s(&bad), "-o", o]).contains("NaN"));
    let bad = write(
        dir.path(),
        "floor.toml",
        &SPEC.replace("cap = 512", "cap = 512\nfloor = 600"),
    );
    assert!(fails(&["generate", s(&bad), "-o", o]).contains("floor 600 > cap 512"));
    let bad = write(
        dir.path(),
        "syntax.toml",
        &SPEC.replace("requests = 200", "requests = [1"),
    );
    assert!(fails(&["generate", s(&bad), "-o", o]).contains("syntax.toml:"));
    let good = write(dir.path(), "good.toml", SPEC);
    fails(&["generate", s(&good), "-o", o, "--requests", "0"]);
    let tok = write(dir.path(), "tokenizer.json", "{ not json");
    assert!(fails(&["generate", s(&good), "-o", o, "--tokenizer", s(&tok)]).contains("tokenizer"));
    fails(&[
        "generate",
        s(&good),
        "-o",
        o,
        "--tokenizer",
        "/nonexistent/tokenizer.json",
    ]);

    let csv = write(
        dir.path(),
        "rows.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n2023-11-16 18:15:47,x,3\n",
    );
    let e = fails(&["import", "azure", s(&csv), "-o", o]);
    assert!(e.contains("rows.csv:3:"), "{e}");
    let csv = write(
        dir.path(),
        "ts.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 25:15:46,1,1\n",
    );
    assert!(fails(&["import", "azure", s(&csv), "-o", o]).contains("ts.csv:2:"));
    fails(&["import", "azure", s(&csv), "-o", o, "--time-scale", "0"]);
    assert!(!out.exists(), "no output file on failure");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
        "{names:?}"
    );

    // A truncated or corrupted trace.
    let good_out = dir.path().join("g.msgpack");
    ok(&["generate", s(&good), "-o", s(&good_out)]);
    let bytes = std::fs::read(&good_out).unwrap();
    let cut = write(dir.path(), "cut.msgpack", "");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    assert!(fails(&["trace", "inspect", s(&cut)]).contains("truncated"));
    let mut flipped = bytes.clone();
    let i = bytes.len() / 2;
    flipped[i] = if flipped[i] == b'a' { b'e' } else { b'a' };
    std::fs::write(&cut, &flipped).unwrap();
    fails(&["trace", "inspect", s(&cut)]);
    fails(&["trace", "inspect", "--jsonl", s(&cut)]);
}
