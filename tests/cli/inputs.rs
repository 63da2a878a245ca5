//! Hostile input files through the real binary: devices (`/dev/zero`), FIFOs and
//! process substitutions, quoted CSV, byte-order marks, bad names, numbers out of range.
//! Each must end quickly with the right result, or exit 2 with one `error:` line, no
//! output and no temporary file: never an unbounded allocation (exit 134), never a hang.
//! A watchdog kills a child that takes more than a minute and fails the test.

use crate::common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn llmib_bounded(args: &[&str]) -> Output {
    let mut cmd = Command::new(LLMIB);
    cmd.args(args)
        .env_remove("JOB_COMPLETION_INDEX")
        .env_remove("SLURM_ARRAY_TASK_ID");
    run_bounded(cmd)
}

/// `llmib ARGS` must exit 2 with one `error:` line containing `want`; returns it.
fn fails_with(args: &[&str], want: &str) -> String {
    let o = llmib_bounded(args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "llmib {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains(want), "llmib {args:?}: {stderr} / {want}");
    stderr
}

/// Nothing but `keep` in `dir`: no output, no temporary file.
fn only(dir: &Path, keep: &[&str]) {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !keep.contains(&n.as_str()))
        .collect();
    names.sort();
    assert!(names.is_empty(), "left behind: {names:?}");
}

#[test]
fn imports_of_dev_zero_are_bounded_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.msgpack");
    for (source, want) in [
        ("mooncake", "/dev/zero:1: line longer than"),
        ("burstgpt", "/dev/zero:1: line longer than 64 KiB"),
        ("azure", "/dev/zero:1: line longer than 64 KiB"),
        ("jsonl", "/dev/zero:1: line longer than"),
        ("sharegpt", "/dev/zero:1: not JSON"),
    ] {
        fails_with(&["import", source, "/dev/zero", "-o", s(&out)], want);
    }
    only(dir.path(), &[]);
}

#[test]
fn a_tokenizer_or_certificate_from_dev_zero_is_refused_by_size() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.msgpack");
    let spec = dir.path().join("s.toml");
    std::fs::write(
        &spec,
        "name = \"s\"\nseed = 1\nrequests = 2\nprompt_tokens = { dist = \"fixed\", value = 4 }\n\
         output_tokens = { dist = \"fixed\", value = 4 }\narrival = { process = \"burst\" }\n",
    )
    .unwrap();
    fails_with(
        &[
            "generate",
            s(&spec),
            "-o",
            s(&out),
            "--tokenizer",
            "/dev/zero",
        ],
        "/dev/zero: more than 128 MiB, the limit for a tokenizer file",
    );
    let input = data("mooncake-sample.jsonl");
    fails_with(
        &[
            "import",
            "mooncake",
            s(&input),
            "-o",
            s(&out),
            "--tokenizer",
            "/dev/zero",
        ],
        "the limit for a tokenizer file",
    );
    ok(&["generate", s(&spec), "-o", s(&out)]);
    let log = dir.path().join("run.msgpack");
    fails_with(
        &[
            "replay",
            s(&out),
            "--backend",
            "openai",
            "--endpoint",
            "https://127.0.0.1:9",
            "--no-check",
            "--cacert",
            "/dev/zero",
            "-o",
            s(&log),
        ],
        "--cacert /dev/zero: more than 16 MiB, the limit for a certificate file",
    );
    only(dir.path(), &["s.toml", "out.msgpack"]);
}

#[test]
fn a_process_substitution_is_read_once_and_hashed_as_read() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("mooncake-sample.jsonl");
    let out = dir.path().join("out.msgpack");
    let script = format!(
        "exec '{}' import mooncake <(cat '{}') -o '{}'",
        LLMIB,
        s(&input),
        s(&out)
    );
    let mut cmd = Command::new("bash");
    cmd.args(["-c", &script]);
    let o = run_bounded(cmd);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (h, reqs) = formats::read_trace(&out).unwrap();
    assert_eq!(reqs.len(), 10);
    let formats::TraceSpec::Mooncake(spec) = &h.spec else {
        panic!("{:?}", h.spec)
    };
    assert_eq!(spec.source_sha256, formats::sha256_file(&input).unwrap());
    // The same bytes from a file give the same trace.
    let direct = dir.path().join("direct.msgpack");
    ok(&[
        "import",
        "mooncake",
        s(&input),
        "-o",
        s(&direct),
        "--name",
        &h.name,
    ]);
    let (hd, _) = formats::read_trace(&direct).unwrap();
    let formats::TraceSpec::Mooncake(d) = &hd.spec else {
        panic!()
    };
    assert_eq!(d.source_sha256, spec.source_sha256);
}

#[test]
fn a_named_fifo_imports_like_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let input = data("burstgpt-sample.csv");
    let fifo = dir.path().join("in.csv");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let bytes = std::fs::read(&input).unwrap();
    let writer_path = fifo.clone();
    let writer = std::thread::spawn(move || std::fs::write(&writer_path, bytes).unwrap());
    let out = dir.path().join("out.msgpack");
    let o = llmib_bounded(&["import", "burstgpt", s(&fifo), "-o", s(&out)]);
    writer.join().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let (h, _) = formats::read_trace(&out).unwrap();
    let formats::TraceSpec::BurstGpt(spec) = &h.spec else {
        panic!()
    };
    assert_eq!(spec.source_sha256, formats::sha256_file(&input).unwrap());
}

#[test]
fn quoted_burstgpt_fields_lose_their_quotes() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("q.csv");
    std::fs::write(
        &csv,
        "\u{feff}Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type\r\n\
         5,\"ChatGPT\",472,18,490,\"Conversation log\"\r\n\
         6,\"GPT-4\",10,5,15,\"API log, batch\"\r\n\
         7,ChatGPT,3,4,7,Conversation log\r\n",
    )
    .unwrap();
    let out = dir.path().join("out.msgpack");
    let stdout = ok(&[
        "import",
        "burstgpt",
        s(&csv),
        "-o",
        s(&out),
        "--model",
        "ChatGPT",
        "--log-type",
        "Conversation log",
    ]);
    assert!(stdout.contains("2 of 3 rows"), "{stdout}");
    let azure = dir.path().join("a.csv");
    std::fs::write(
        &azure,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n\"2023-11-16 18:15:46.6805900\",\"374\",44\n",
    )
    .unwrap();
    let out2 = dir.path().join("out2.msgpack");
    ok(&["import", "azure", s(&azure), "-o", s(&out2)]);
    std::fs::write(
        &azure,
        "TIMESTAMP,ContextTokens,GeneratedTokens\n\"2023,1\n",
    )
    .unwrap();
    fails_with(
        &["import", "azure", s(&azure), "-o", s(&out2), "--force"],
        "a.csv:2: field 1: unterminated quoted field",
    );
}

#[test]
fn a_sharegpt_file_with_a_byte_order_mark_imports() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bom.json");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(std::fs::read(data("sharegpt-sample.json")).unwrap());
    std::fs::write(&json, &bytes).unwrap();
    let out = dir.path().join("out.msgpack");
    ok(&[
        "import",
        "sharegpt",
        s(&json),
        "-o",
        s(&out),
        "--output-tokens",
        "{ dist = \"fixed\", value = 4 }",
    ]);
    let (h, _) = formats::read_trace(&out).unwrap();
    let formats::TraceSpec::ShareGpt(spec) = &h.spec else {
        panic!()
    };
    assert_eq!(spec.source_sha256, formats::sha256_bytes(&bytes));
}

#[test]
fn jsonl_timestamp_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("t.jsonl");
    std::fs::write(
        &jsonl,
        "{\"session_id\":\"a\",\"prompt\":\"hi\",\"max_tokens\":4,\"timestamp\":10}\n\
         {\"session_id\":\"a\",\"prompt\":\"later\",\"max_tokens\":1,\"timestamp\":5}\n",
    )
    .unwrap();
    let out = dir.path().join("out.msgpack");
    let e = fails_with(
        &["import", "jsonl", s(&jsonl), "-o", s(&out), "--sessions"],
        "line 2: timestamp 5 is before the previous turn's",
    );
    assert!(e.contains(&format!("{}: line 2", jsonl.display())), "{e}");
    std::fs::write(
        &jsonl,
        "{\"prompt\":\"a\",\"max_tokens\":1,\"timestamp\":0}\n\
         {\"prompt\":\"b\",\"max_tokens\":1,\"timestamp\":18446744073709551615}\n",
    )
    .unwrap();
    let e = fails_with(
        &["import", "jsonl", s(&jsonl), "-o", s(&out)],
        "exceeds 64-bit nanoseconds",
    );
    assert!(e.contains(s(&jsonl)), "{e}");
    only(dir.path(), &["t.jsonl"]);
}

#[test]
fn import_names_follow_the_generate_rule() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.msgpack");
    let input = data("mooncake-sample.jsonl");
    let jsonl = data("jsonl-sample.jsonl");
    let csv = data("burstgpt-sample.csv");
    for (name, want) in [
        ("../../evil", "must not contain path separators"),
        ("a\nb", "control characters"),
        ("", "name is empty"),
        ("a\\b", "must not contain path separators"),
    ] {
        for (source, file) in [("mooncake", &input), ("jsonl", &jsonl), ("burstgpt", &csv)] {
            fails_with(
                &["import", source, s(file), "-o", s(&out), "--name", name],
                want,
            );
        }
    }
    only(dir.path(), &[]);
}

#[test]
fn bad_flag_values_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = common::small_trace(dir.path());
    let log = dir.path().join("run.msgpack");
    let base = [
        "replay",
        s(&trace),
        "--backend",
        "openai",
        "--endpoint",
        "http://127.0.0.1:9",
        "--no-check",
        "--model",
        "m",
        "-o",
        s(&log),
    ];
    for (extra, want) in [
        (&["--shard", "x"][..], "expected I/N"),
        (&["--shard", "0/4294967295"], "expected I/N"),
        (
            &["--shards", "0"],
            "expected a whole number of shards from 1 to 65536",
        ),
        (&["--shards", "99999999999"], "from 1 to 65536"),
        (
            &["--time-scale", "1e-300"],
            "more than 146 years after the start",
        ),
    ] {
        let args: Vec<&str> = base.iter().copied().chain(extra.iter().copied()).collect();
        fails_with(&args, want);
    }
    let input = data("mooncake-sample.jsonl");
    let out = dir.path().join("out.msgpack");
    fails_with(
        &[
            "import",
            "mooncake",
            s(&input),
            "-o",
            s(&out),
            "--seed",
            "abc",
        ],
        "expected a whole number from 0 to",
    );
    fails_with(
        &["generate", "x.toml", "-o", s(&out), "--seed", "1e3"],
        "expected a whole number from 0 to",
    );
    // Unknown flags and missing arguments: one line too.
    fails_with(&["import", "mooncake", s(&input)], "--output");
    fails_with(
        &[
            "search",
            s(&trace),
            "--backend",
            "openai",
            "--endpoint",
            "http://127.0.0.1:9",
            "--slo",
            "ttft_p99=1",
            "-o",
            s(&dir.path().join("search")),
            "--run-duration",
            "1e400s",
        ],
        "out of range",
    );
    assert!(!log.exists() && !out.exists());
}

#[test]
fn time_scales_that_overflow_arrivals_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.msgpack");
    let input = data("mooncake-sample.jsonl");
    fails_with(
        &[
            "import",
            "mooncake",
            s(&input),
            "-o",
            s(&out),
            "--time-scale",
            "1e-300",
        ],
        "--time-scale 1e-300 puts this arrival beyond 64-bit nanoseconds",
    );
    let csv = data("burstgpt-sample.csv");
    fails_with(
        &[
            "import",
            "burstgpt",
            s(&csv),
            "-o",
            s(&out),
            "--time-scale",
            "1e-300",
        ],
        "beyond 64-bit nanoseconds",
    );
    only(dir.path(), &[]);
}

#[test]
fn a_sessions_spec_with_huge_answers_is_refused_without_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let spec = dir.path().join("s.toml");
    std::fs::write(
        &spec,
        "name = \"s\"\nseed = 1\nrequests = 4\nprompt_tokens = { dist = \"fixed\", value = 4 }\n\
         output_tokens = { dist = \"fixed\", value = 4000000000 }\narrival = { process = \"burst\" }\n\
         sessions = { turns = { dist = \"fixed\", value = 2 }, think = { dist = \"fixed\", value_s = 0.0 } }\n",
    )
    .unwrap();
    let out = dir.path().join("out.msgpack");
    fails_with(
        &["generate", s(&spec), "-o", s(&out)],
        "output_tokens can reach 4000000000",
    );
    only(dir.path(), &["s.toml"]);
}

#[test]
fn a_shard_header_claiming_four_billion_shards_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let trace = common::small_trace(dir.path());
    let sim = SimProcess::start("openai", &[]);
    let shard = dir.path().join("shard-0.msgpack");
    ok(&[
        "replay",
        s(&trace),
        "--backend",
        "openai",
        "--endpoint",
        &sim.url,
        "--shard",
        "0/2",
        "-q",
        "-o",
        s(&shard),
    ]);
    sim.stop();
    let log = formats::read_log(&shard).unwrap();
    let mut header = log.header.clone();
    header.options.shard.as_mut().unwrap().count = u32::MAX;
    let evil = dir.path().join("evil-0.msgpack");
    let mut w = formats::LogWriter::create(&evil, &header).unwrap();
    for r in &log.records {
        w.write(r).unwrap();
    }
    w.finish(true, 0).unwrap();
    let merged = dir.path().join("merged.msgpack");
    for args in [
        vec!["merge", s(&evil), "-o", s(&merged)],
        vec!["analyze", s(&evil)],
    ] {
        fails_with(&args, "the header says shard 0 of 4294967295");
    }
    assert!(!merged.exists());
}
