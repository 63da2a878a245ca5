//! `llmib import mooncake|burstgpt` through the real binary on the samples in
//! `tests/data/`: byte-identical regeneration, and bad files (wrong shape, missing
//! fields, non-UTF-8, empty, huge numbers) as one-line errors naming the file, line and
//! field, exit status 2 and no output file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn llmib(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llmib"))
        .args(args)
        .output()
        .expect("run llmib")
}

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn ok(args: &[&str]) -> String {
    let out = llmib(args);
    assert!(
        out.status.success(),
        "llmib {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs an import that must fail: exit 2, exactly one `error:` line, no output file.
fn fails(args: &[&str], out: &Path) -> String {
    let o = llmib(args);
    let stderr = String::from_utf8(o.stderr).unwrap();
    assert_eq!(o.status.code(), Some(2), "llmib {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.exists(), "no output file on failure: {args:?}");
    stderr
}

fn no_temp_files(dir: &Path) {
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        names.iter().all(|n| !n.to_string_lossy().contains(".tmp")),
        "{names:?}"
    );
}

#[test]
fn mooncake_sample_regenerates_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.msgpack"), dir.path().join("b.msgpack"));
    let input = data("mooncake-sample.jsonl");
    let stdout = ok(&["import", "mooncake", s(&input), "-o", s(&a), "--seed", "3"]);
    assert!(stdout.contains("10 of 10 records"), "{stdout}");
    ok(&["import", "mooncake", s(&input), "-o", s(&b), "--seed", "3"]);
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    let (h, reqs) = formats::read_trace(&a).unwrap();
    assert_eq!((h.seed, reqs.len()), (3, 10));
    // The output exists now: refused without --force, replaced with it.
    fails(
        &["import", "mooncake", s(&input), "-o", s(&a)],
        &dir.path().join("never"),
    );
    ok(&["import", "mooncake", s(&input), "-o", s(&a), "--force"]);
}

#[test]
fn bad_mooncake_files_are_one_line_exit_2_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.msgpack");
    let good = r#"{"timestamp": 0, "input_length": 600, "output_length": 5, "hash_ids": [0, 1]}"#;
    let cases: &[(&str, &[u8], &str)] = &[
        ("empty.jsonl", b"", "empty.jsonl:1: empty file"),
        ("shape.jsonl", b"[1, 2]\n", "shape.jsonl:1: expected a JSON object"),
        (
            "missing.jsonl",
            br#"{"timestamp": 0, "input_length": 600, "hash_ids": [0, 1]}"#,
            "missing.jsonl:1: missing field output_length",
        ),
        (
            "huge.jsonl",
            br#"{"timestamp": 99999999999999999999, "input_length": 1, "output_length": 1, "hash_ids": [0]}"#,
            "huge.jsonl:1: field timestamp",
        ),
        (
            "blocks.jsonl",
            br#"{"timestamp": 0, "input_length": 600, "output_length": 1, "hash_ids": [0]}"#,
            "blocks.jsonl:1: field hash_ids",
        ),
        (
            "hash.jsonl",
            br#"{"timestamp": 0, "input_length": 1, "output_length": 1, "hash_ids": [9223372036854775808]}"#,
            "hash.jsonl:1: field hash_ids",
        ),
    ];
    for (name, body, want) in cases {
        // The bad record on line 1, a good one after it.
        let text = if body.is_empty() {
            Vec::new()
        } else {
            [*body, b"\n", good.as_bytes(), b"\n"].concat()
        };
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let e = fails(&["import", "mooncake", s(&path), "-o", s(&out)], &out);
        assert!(e.contains(want), "{e} / {want}");
    }
    let path = dir.path().join("latin1.jsonl");
    std::fs::write(&path, [good.as_bytes(), b"\n{\"x\xe9\": 1}\n"].concat()).unwrap();
    let e = fails(&["import", "mooncake", s(&path), "-o", s(&out)], &out);
    assert!(e.contains("latin1.jsonl:2:"), "{e}");
    let path = data("mooncake-sample.jsonl");
    fails(
        &[
            "import",
            "mooncake",
            s(&path),
            "-o",
            s(&out),
            "--block-tokens",
            "0",
        ],
        &out,
    );
    fails(
        &[
            "import",
            "mooncake",
            s(&path),
            "-o",
            s(&out),
            "--block-tokens",
            "256",
        ],
        &out,
    );
    fails(
        &["import", "mooncake", "/nonexistent/m.jsonl", "-o", s(&out)],
        &out,
    );
    no_temp_files(dir.path());
}
