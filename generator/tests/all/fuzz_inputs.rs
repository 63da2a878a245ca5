//! Property-based fuzzing of the generator's inputs: the spec parser (TOML, then
//! validation) and the Azure CSV importer (row parser, then the whole import).
//!
//! Inputs are the committed spec files and the Azure sample, mutated and truncated at
//! random positions (see `formats/tests/mutate`). Properties: nothing panics; every
//! error is one bounded line; a spec that parses and validates serialises back to the
//! same spec; parsed CSV rows are sorted stably; an import that succeeds writes a trace
//! that reads back whole. Longer runs: `fuzz/` (`spec_parser`, `azure_import`).

use crate::mutate;

use std::io::Cursor;
use std::path::Path;

use formats::read_trace;
use generator::azure::parse_azure_csv;
use generator::{AzureOptions, PromptSource, import_azure, parse_spec, spec_to_toml, validate};
use proptest::prelude::*;

/// Spec cases are cheap (a TOML parse); import cases write two small files.
const SPEC_CASES: u32 = 8192;
const CSV_CASES: u32 = 4096;
const IMPORT_CASES: u32 = 512;

/// Longest acceptable error line, in bytes: the path, a line number and a reason that
/// quotes the input's own values cut to 200 characters (40 for CSV cells), up to 4 bytes
/// each in UTF-8 (the same bound as in `fuzz/src/lib.rs`).
const MAX_ERROR: usize = 1024;

macro_rules! repo_file {
    ($p:literal) => {
        include_bytes!(concat!("../../../", $p)).to_vec()
    };
}

fn spec_seeds() -> Vec<Vec<u8>> {
    vec![
        repo_file!("traces/specs/latency-qps1.toml"),
        repo_file!("traces/specs/throughput-cap128.toml"),
        repo_file!("benchmark_configs/specs/bursty-gamma.toml"),
        repo_file!("benchmark_configs/specs/fixed-smoke.toml"),
        repo_file!("benchmark_configs/specs/steady-chat.toml"),
        // Every length distribution and arrival process not in the files above.
        b"name = \"x\"\nseed = 3\nrequests = 5\nignore_eos = false\n\n[prompt_tokens]\ndist = \"exponential\"\nmean = 12.5\ncap = 100\nfloor = 1\n\n[output_tokens]\ndist = \"fixed\"\nvalue = 7\n\n[arrival]\nprocess = \"constant\"\nrate = 2.5\n".to_vec(),
        b"name = \"b\"\nseed = 18446744073709551615\nrequests = 1\n\n[prompt_tokens]\ndist = \"fixed\"\nvalue = 1\n\n[output_tokens]\ndist = \"uniform\"\nlo = 0\nhi = 4294967295\n\n[arrival]\nprocess = \"burst\"\n".to_vec(),
    ]
}

fn csv_seeds() -> Vec<Vec<u8>> {
    vec![
        repo_file!("generator/tests/fixtures/azure-sample.csv"),
        // BOM, CRLF, blank lines, out-of-order rows, 9 fractional digits, `T`, leap day.
        b"\xef\xbb\xbfTIMESTAMP,ContextTokens,GeneratedTokens\r\n2024-02-29T23:59:59.123456789,1,0\r\n\r\n2024-02-29 23:59:58,4294967295,12\r\n2024-02-29 23:59:58,0,3\r\n".to_vec(),
    ]
}

/// Inputs that made the `cargo fuzz` targets fail (`tests/fuzz_regressions/`):
/// `spec-garbage-variant.toml` (an unknown `process` variant of 100+ replacement
/// characters was quoted in full) and `azure-garbage-header.csv` (a damaged header line
/// was quoted in full: 808 bytes). Each goes through both parsers.
#[test]
fn fuzz_target_finds_parse_or_fail_on_one_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        if let Err(e) = parse_spec(&String::from_utf8_lossy(&bytes), Path::new("spec.toml")) {
            spec_error_ok(&e);
        }
        if let Err(e) = parse_azure_csv(Cursor::new(&bytes[..]), Path::new("in.csv")) {
            mutate::assert_one_line(&e.to_string(), MAX_ERROR);
        }
        n += 1;
    }
    assert!(n >= 2);
    // The same defects at a length the bound catches: a 10 kB variant and header.
    let long = "\u{fffd}x".repeat(2500);
    let spec = include_str!("../../../traces/specs/latency-qps1.toml")
        .replace("process = \"poisson\"", &format!("process = \"{long}\""));
    spec_error_ok(&parse_spec(&spec, Path::new("spec.toml")).unwrap_err());
    let csv = format!("TIMESTAMP,{}\n", "\u{fffd}\u{1d}".repeat(2500));
    let e = parse_azure_csv(Cursor::new(csv.as_bytes()), Path::new("in.csv")).unwrap_err();
    mutate::assert_one_line(&e.to_string(), MAX_ERROR);
}

fn spec_error_ok(e: &generator::GenError) {
    mutate::assert_one_line(&e.to_string(), MAX_ERROR);
}

proptest! {
    #![proptest_config(mutate::config(SPEC_CASES))]

    #[test]
    fn spec_files_parse_or_fail_on_one_line(bytes in mutate::mutated(spec_seeds(), 8)) {
        let text = String::from_utf8_lossy(&bytes);
        match parse_spec(&text, Path::new("spec.toml")) {
            Err(e) => spec_error_ok(&e),
            Ok(spec) => match validate(&spec) {
                Err(e) => spec_error_ok(&e),
                Ok(()) => {
                    let back = parse_spec(&spec_to_toml(&spec), Path::new("again.toml"))
                        .expect("a valid spec serialises to TOML that parses");
                    prop_assert_eq!(back, spec);
                }
            },
        }
    }
}

proptest! {
    #![proptest_config(mutate::config(CSV_CASES))]

    #[test]
    fn azure_rows_parse_or_fail_on_one_line(bytes in mutate::mutated(csv_seeds(), 8)) {
        match parse_azure_csv(Cursor::new(&bytes[..]), Path::new("in.csv")) {
            Err(e) => mutate::assert_one_line(&e.to_string(), MAX_ERROR),
            Ok(rows) => {
                for w in rows.windows(2) {
                    prop_assert!(w[0].timestamp_ns <= w[1].timestamp_ns);
                    if w[0].timestamp_ns == w[1].timestamp_ns {
                        prop_assert!(w[0].line < w[1].line, "sort is not stable");
                    }
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(mutate::config(IMPORT_CASES))]

    #[test]
    fn azure_import_writes_a_whole_trace_or_fails_on_one_line(
        bytes in mutate::mutated(csv_seeds(), 6),
        start_s in prop_oneof![Just(0.0), 0.0f64..10.0],
        time_scale in prop_oneof![Just(1.0), 0.1f64..10.0],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("in.csv");
        std::fs::write(&csv, &bytes[..]).unwrap();
        let out = dir.path().join("out.msgpack");
        let opts = AzureOptions {
            start_s,
            time_scale,
            // Small prompts keep a case fast; clamping is part of what is tested.
            max_prompt_tokens: Some(32),
            max_output_tokens: Some(64),
            max_requests: Some(64),
            ..AzureOptions::default()
        };
        match import_azure(&csv, &opts, &PromptSource::builtin(), &out) {
            Err(e) => {
                mutate::assert_one_line(&e.to_string(), MAX_ERROR + csv.as_os_str().len());
                prop_assert!(!out.exists(), "a failed import left its output");
            }
            Ok(report) => {
                let (header, requests) = read_trace(&out).expect("imported trace reads back");
                prop_assert_eq!(header.request_count, report.requests);
                prop_assert_eq!(requests.len() as u64, report.requests);
                prop_assert!(requests.windows(2).all(|w| w[0].arrival_ns <= w[1].arrival_ns));
                for r in &requests {
                    prop_assert!((1..=32).contains(&r.prompt_tokens));
                    prop_assert!((1..=64).contains(&r.max_tokens));
                }
            }
        }
    }
}
