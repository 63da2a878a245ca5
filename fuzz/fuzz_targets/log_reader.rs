//! `LogReader` (what `read_log` and the analyzer use) on arbitrary bytes: records and an
//! end (trailer or truncation) or one error, never a panic; errors are one short line.
#![no_main]

use formats::{LogEnd, LogReader};
use libfuzzer_sys::fuzz_target;
use llmib_fuzz::{MAX_ERROR, assert_one_line};

fuzz_target!(|data: &[u8]| {
    let mut reader = match LogReader::new(data) {
        Ok(r) => r,
        Err(e) => return assert_one_line(&e.to_string(), MAX_ERROR),
    };
    let mut n = 0u64;
    for r in reader.by_ref() {
        match r {
            Ok(_) => n += 1,
            Err(e) => return assert_one_line(&e.to_string(), MAX_ERROR),
        }
    }
    // `read_log` relies on this: a reader exhausted without error knows how it ended.
    match reader
        .end()
        .expect("exhausted without error, so the end is known")
    {
        LogEnd::Trailer(t) => assert_eq!(t.record_count, n),
        LogEnd::Truncated { records, .. } => assert_eq!(*records, n),
    }
});
