//! Property-based fuzzing of the two readers, `TraceReader` (behind `read_trace`) and
//! `LogReader` (behind `read_log`), on byte buffers.
//!
//! Seeds are real files: a slice of a committed trace (`traces/`) rewritten by
//! `TraceWriter`, a trace and run logs written by this crate's writers (every outcome,
//! events, server timing), and version-1 files (still read). They are mutated (bit flips,
//! byte changes, insertions, deletions, splices from the other seeds, duplicated ranges)
//! and truncated at random positions (see `tests/mutate`). Properties: nothing panics;
//! every error is one short line; a trace that reads whole has its header's count and
//! ids in order; a log that reads whole knows how it ended, and a trailer end matches
//! the records read. Longer runs: `fuzz/` (`trace_reader`, `log_reader`).

use crate::mutate;

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;
use std::sync::OnceLock;

use formats::{
    BackendInfo, LogEnd, LogHeader, LogReader, LogRecord, LogWriter, Outcome, ReplayOptions,
    TraceHeader, TraceReader, TraceRef, TraceRequest, TraceWriter, crc32,
};
use proptest::prelude::*;
use serde::Serialize;

/// Cases per property: a case reads one file of a few kilobytes.
const CASES: u32 = 4096;

/// Longest acceptable error line, in bytes: the file's own values (a damaged field name,
/// an unknown format) are shown tidied to 200 characters, up to 4 bytes each in UTF-8
/// (the same bound as in `fuzz/src/lib.rs`).
const MAX_ERROR: usize = 1024;

/// Requests kept from the committed trace.
const SLICE: u64 = 6;

/// The first [`SLICE`] requests of a committed trace, as `TraceWriter` writes them.
fn committed_trace_slice(dir: &Path) -> Vec<u8> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../traces/latency-qps1.msgpack");
    let reader = TraceReader::open(&src).unwrap();
    let mut header = reader.header().clone();
    header.request_count = SLICE;
    let requests: Vec<TraceRequest> = reader.take(SLICE as usize).map(Result::unwrap).collect();
    write_trace(dir, &header, &requests)
}

fn write_trace(dir: &Path, header: &TraceHeader, requests: &[TraceRequest]) -> Vec<u8> {
    let path = dir.join("t.msgpack");
    let _ = std::fs::remove_file(&path);
    let mut w = TraceWriter::create(&path, header).unwrap();
    for r in requests {
        w.write(r).unwrap();
    }
    w.finish().unwrap();
    std::fs::read(&path).unwrap()
}

fn log_header() -> LogHeader {
    LogHeader::new(
        TraceRef {
            name: "latency-qps1".into(),
            sha256: "0f".repeat(32),
            request_count: 4,
            spec: None,
        },
        BackendInfo {
            kind: "openai-chat".into(),
            endpoint: "http://127.0.0.1:8000".into(),
            model: Some("m".into()),
            simulated: None,
        },
        1_764_633_600_000_000_000,
        "0.1.0",
        "host",
        ReplayOptions::default(),
    )
}

/// One record per outcome shape: streamed success with server timing, HTTP error,
/// broken stream with partial events, never sent.
fn log_records() -> Vec<LogRecord> {
    let mut ok = LogRecord::not_sent(0, 0, 12, 8, true);
    ok.outcome = Outcome::Ok;
    ok.dispatched_ns = Some(40);
    ok.first_byte_ns = Some(900);
    for i in 0..8 {
        ok.events.push(1_000 + i * 25_000_000, 1);
    }
    ok.end_ns = Some(200_000_000);
    ok.http_status = Some(200);
    ok.output_tokens = Some(8);
    ok.server_output_tokens = Some(8);
    ok.server_prompt_tokens = Some(12);
    ok.token_count_method = Some("final_usage".into());
    ok.finish_reason = Some("length".into());
    ok.server_timing = BTreeMap::from([("x-queue-time".into(), "3".into())]);
    let mut http = LogRecord::not_sent(1, 1_000_000, 5, 4, false);
    http.outcome = Outcome::HttpError;
    http.dispatched_ns = Some(1_000_050);
    http.end_ns = Some(1_900_000);
    http.http_status = Some(422);
    http.error = Some("HTTP 422: Unexpected fields in the request".into());
    let mut broken = LogRecord::not_sent(2, 2_000_000, 7, 16, false);
    broken.outcome = Outcome::StreamError;
    broken.dispatched_ns = Some(2_000_010);
    broken.events.push(2_500_000, 3);
    broken.end_ns = Some(3_000_000);
    broken.error = Some("malformed event: EOF while parsing".into());
    broken.token_count_method = Some("event_count".into());
    let not_sent = LogRecord::not_sent(3, 3_000_000, 9, 9, false);
    vec![ok, http, broken, not_sent]
}

fn write_log(dir: &Path, records: &[LogRecord], trailer: bool) -> Vec<u8> {
    let path = dir.join("run.msgpack");
    let _ = std::fs::remove_file(&path);
    let mut w = LogWriter::create(&path, &log_header()).unwrap();
    for r in records {
        w.write(r).unwrap();
    }
    if trailer {
        w.finish(true, 4_000_000).unwrap();
    } else {
        w.flush().unwrap();
    }
    std::fs::read(&path).unwrap()
}

/// A version-1 file: header with `version: 1`, records, and a trailer without the header
/// or trailer checksums that version 2 added; `trailer` gives its fields in the v1
/// writers' order from the record count and CRC.
fn version_1<H: Serialize, R: Serialize>(
    header: &H,
    records: &[R],
    trailer: impl Fn(u64, u32) -> Vec<(&'static str, Field)>,
) -> Vec<u8> {
    let mut out = rmp_serde::to_vec_named(header).unwrap();
    let mut body = Vec::new();
    for r in records {
        body.extend(rmp_serde::to_vec_named(r).unwrap());
    }
    out.extend(&body);
    let fields = trailer(records.len() as u64, crc32(&body));
    out.push(0x80 | fields.len() as u8);
    for (k, v) in fields {
        out.extend(rmp_serde::to_vec(k).unwrap());
        out.extend(match v {
            Field::Bool(b) => rmp_serde::to_vec(&b).unwrap(),
            Field::Int(n) => rmp_serde::to_vec(&n).unwrap(),
        });
    }
    out
}

enum Field {
    Bool(bool),
    Int(u64),
}

fn trace_seeds() -> Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(make_trace_seeds).clone()
}

fn log_seeds() -> Vec<Vec<u8>> {
    static SEEDS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    SEEDS.get_or_init(make_log_seeds).clone()
}

fn make_trace_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let slice = committed_trace_slice(dir.path());
    let reader = TraceReader::new(Cursor::new(&slice)).unwrap();
    let mut header = reader.header().clone();
    let requests: Vec<TraceRequest> = reader.map(Result::unwrap).collect();
    header.version = 1;
    let v1 = version_1(&header, &requests, |n, crc| {
        vec![
            ("trailer", Field::Bool(true)),
            ("record_count", Field::Int(n)),
            ("crc32", Field::Int(crc.into())),
        ]
    });
    // Token ids (a tokenizer trace) exercise the optional array field.
    let mut with_ids = requests[..2].to_vec();
    with_ids[1].prompt_token_ids = Some(vec![1, 300, 70_000, u32::MAX]);
    let mut h2 = TraceReader::new(Cursor::new(&slice))
        .unwrap()
        .header()
        .clone();
    h2.request_count = 2;
    let ids = write_trace(dir.path(), &h2, &with_ids);
    vec![slice, v1, ids]
}

fn make_log_seeds() -> Vec<Vec<u8>> {
    let dir = tempfile::tempdir().unwrap();
    let records = log_records();
    let mut h1 = log_header();
    h1.version = 1;
    vec![
        write_log(dir.path(), &records, true),
        write_log(dir.path(), &records, false),
        version_1(&h1, &records, |n, crc| {
            vec![
                ("trailer", Field::Bool(true)),
                ("complete", Field::Bool(false)),
                ("record_count", Field::Int(n)),
                ("ended_ns", Field::Int(4_000_000)),
                ("crc32", Field::Int(crc.into())),
            ]
        }),
    ]
}

/// Reads a whole trace the way `read_trace` does; checks what a success promises.
fn read_trace_checked(bytes: &[u8]) {
    let reader = match TraceReader::new(Cursor::new(bytes)) {
        Ok(r) => r,
        Err(e) => return mutate::assert_one_line(&e.to_string(), MAX_ERROR),
    };
    let expected = reader.header().request_count;
    let mut n = 0;
    for r in reader {
        match r {
            Ok(req) => {
                assert_eq!(req.id, n, "ids in file order");
                n += 1;
            }
            Err(e) => return mutate::assert_one_line(&e.to_string(), MAX_ERROR),
        }
    }
    assert_eq!(
        n, expected,
        "a trace that reads whole has its header's count"
    );
}

/// Reads a whole log the way `read_log` does; checks what a success promises.
fn read_log_checked(bytes: &[u8]) -> Option<LogEnd> {
    let mut reader = match LogReader::new(Cursor::new(bytes)) {
        Ok(r) => r,
        Err(e) => {
            mutate::assert_one_line(&e.to_string(), MAX_ERROR);
            return None;
        }
    };
    let mut n = 0;
    for r in reader.by_ref() {
        match r {
            Ok(_) => n += 1,
            Err(e) => {
                mutate::assert_one_line(&e.to_string(), MAX_ERROR);
                return None;
            }
        }
    }
    let end = reader
        .end()
        .cloned()
        .expect("a log read without error knows its end");
    match &end {
        LogEnd::Trailer(t) => assert_eq!(t.record_count, n),
        LogEnd::Truncated { records, .. } => assert_eq!(*records, n),
    }
    Some(end)
}

/// The seeds are what they claim to be. With `LLMIB_FUZZ_CORPUS=DIR` they are also
/// written to `DIR/trace_reader/` and `DIR/log_reader/`, the seed corpora of the
/// `cargo fuzz` targets (`fuzz/seed_corpus.sh`).
#[test]
fn seeds_read_back_whole() {
    for s in trace_seeds() {
        let reader = TraceReader::new(Cursor::new(&s)).unwrap();
        assert!(reader.map(Result::unwrap).count() >= 2);
    }
    let ends: Vec<_> = log_seeds().iter().map(|s| read_log_checked(s)).collect();
    assert!(matches!(ends[0], Some(LogEnd::Trailer(_))));
    assert!(matches!(
        ends[1],
        Some(LogEnd::Truncated { records: 4, .. })
    ));
    assert!(matches!(ends[2], Some(LogEnd::Trailer(_))));
    if let Some(dir) = std::env::var_os("LLMIB_FUZZ_CORPUS") {
        let dir = Path::new(&dir);
        for (target, seeds) in [("trace_reader", trace_seeds()), ("log_reader", log_seeds())] {
            std::fs::create_dir_all(dir.join(target)).unwrap();
            for (i, s) in seeds.iter().enumerate() {
                std::fs::write(dir.join(target).join(format!("seed-{i}.msgpack")), s).unwrap();
            }
        }
    }
}

/// Inputs that made the `cargo fuzz` targets fail (`tests/fuzz_regressions/`), read by
/// both readers. `trace-damaged-header-field-name.msgpack`: a damaged header key shown
/// tidied to 200 characters of U+FFFD, 423 bytes (the byte bound above is sized for it).
#[test]
fn fuzz_target_finds_read_or_fail_on_one_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut n = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let bytes = std::fs::read(f.unwrap().path()).unwrap();
        read_trace_checked(&bytes);
        read_log_checked(&bytes);
        n += 1;
    }
    assert!(n >= 1);
}

/// Regression (found by this fuzz test): the `format` value of a foreign header went
/// verbatim into the error, newlines and any length included.
#[test]
fn foreign_format_names_stay_on_one_short_line() {
    #[derive(Serialize)]
    struct Probe<'a> {
        format: &'a str,
        version: u32,
    }
    let long_ours = "llmib-x".repeat(2000);
    let long_other = "z".repeat(5000);
    for format in ["llmib-l\nog", "other\r\nkind", &long_ours, &long_other] {
        let bytes = rmp_serde::to_vec_named(&Probe { format, version: 2 }).unwrap();
        let trace = TraceReader::new(Cursor::new(&bytes)).err().unwrap();
        let log = LogReader::new(Cursor::new(&bytes)).err().unwrap();
        for e in [trace, log] {
            mutate::assert_one_line(&e.to_string(), MAX_ERROR);
        }
    }
}

proptest! {
    #![proptest_config(mutate::config(CASES))]

    #[test]
    fn mutated_traces_read_or_fail_on_one_line(bytes in mutate::mutated(trace_seeds(), 8)) {
        read_trace_checked(&bytes);
    }

    #[test]
    fn mutated_logs_read_or_fail_on_one_line(bytes in mutate::mutated(log_seeds(), 8)) {
        read_log_checked(&bytes);
    }

    /// A trace is an input and must be whole: any cut is an error.
    #[test]
    fn every_cut_trace_is_an_error(seed in 0usize..3, cut in any::<proptest::sample::Index>()) {
        let s = &trace_seeds()[seed];
        let cut = cut.index(s.len());
        let whole = TraceReader::new(Cursor::new(&s[..cut]))
            .and_then(|r| r.collect::<Result<Vec<_>, _>>());
        prop_assert!(whole.is_err(), "a trace cut at {} of {} bytes read whole", cut, s.len());
    }

    /// A cut log reads as truncated (never as ending with a trailer) or fails.
    #[test]
    fn every_cut_log_is_truncated(seed in 0usize..3, cut in any::<proptest::sample::Index>()) {
        let s = &log_seeds()[seed];
        let cut = cut.index(s.len());
        let end = read_log_checked(&s[..cut]);
        prop_assert!(!matches!(end, Some(LogEnd::Trailer(_))), "cut at {}", cut);
    }
}
