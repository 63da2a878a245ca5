//! `TraceReader` (what `read_trace` and every trace consumer use) on arbitrary bytes:
//! every request or one error, never a panic; errors are one short line.
#![no_main]

use formats::TraceReader;
use libfuzzer_sys::fuzz_target;
use llmib_fuzz::{MAX_ERROR, assert_one_line};

fuzz_target!(|data: &[u8]| {
    let reader = match TraceReader::new(data) {
        Ok(r) => r,
        Err(e) => return assert_one_line(&e.to_string(), MAX_ERROR),
    };
    let expected = reader.header().request_count;
    let mut n = 0u64;
    for r in reader {
        match r {
            Ok(req) => {
                assert_eq!(req.id, n, "ids in file order");
                n += 1;
            }
            Err(e) => return assert_one_line(&e.to_string(), MAX_ERROR),
        }
    }
    assert_eq!(
        n, expected,
        "a trace that reads whole has its header's count"
    );
});
