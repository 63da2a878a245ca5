//! The Azure CSV importer (what `llmib import azure` runs): the row parser on the bytes,
//! then the whole import into a trace file, which must read back whole; or one short
//! error line. The input is written to a fixed temporary file per process.
#![no_main]

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use formats::read_trace;
use generator::azure::parse_azure_csv;
use generator::{AzureOptions, PromptSource, import_azure};
use libfuzzer_sys::fuzz_target;
use llmib_fuzz::{MAX_ERROR, assert_one_line};

fn workdir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().expect("temporary directory"))
        .path()
}

fn source() -> &'static PromptSource {
    static SOURCE: OnceLock<PromptSource> = OnceLock::new();
    SOURCE.get_or_init(PromptSource::builtin)
}

fuzz_target!(|data: &[u8]| {
    let rows = match parse_azure_csv(Cursor::new(data), Path::new("in.csv")) {
        Ok(rows) => rows,
        Err(e) => return assert_one_line(&e.to_string(), MAX_ERROR),
    };
    assert!(
        rows.windows(2)
            .all(|w| (w[0].timestamp_ns, w[0].line) < (w[1].timestamp_ns, w[1].line))
    );

    let csv: PathBuf = workdir().join("in.csv");
    let out = workdir().join("out.msgpack");
    std::fs::write(&csv, data).expect("write the input");
    let _ = std::fs::remove_file(&out);
    let opts = AzureOptions {
        // Small prompts keep an execution fast; clamping is part of what is tested.
        max_prompt_tokens: Some(32),
        max_output_tokens: Some(64),
        max_requests: Some(64),
        ..AzureOptions::default()
    };
    match import_azure(&csv, &opts, source(), &out) {
        Err(e) => {
            assert_one_line(&e.to_string(), MAX_ERROR + csv.as_os_str().len());
            assert!(!out.exists(), "a failed import left its output");
        }
        Ok(report) => {
            let (header, requests) = read_trace(&out).expect("imported trace reads back");
            assert_eq!(header.request_count, report.requests);
            assert_eq!(requests.len() as u64, report.requests);
            assert!(
                requests
                    .windows(2)
                    .all(|w| w[0].arrival_ns <= w[1].arrival_ns)
            );
        }
    }
});
