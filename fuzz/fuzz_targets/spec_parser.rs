//! The generator's spec parser and validation (what `llmib generate` runs on a spec
//! file): a valid spec, which serialises back to itself, or one short error line.
#![no_main]

use std::path::Path;

use generator::{parse_spec, spec_to_toml, validate};
use libfuzzer_sys::fuzz_target;
use llmib_fuzz::{MAX_ERROR, assert_one_line};

fuzz_target!(|data: &[u8]| {
    // `load_spec` refuses non-UTF-8 files before parsing; keep the text reachable.
    let text = String::from_utf8_lossy(data);
    let spec = match parse_spec(&text, Path::new("spec.toml")) {
        Ok(s) => s,
        Err(e) => return assert_one_line(&e.to_string(), MAX_ERROR),
    };
    if let Err(e) = validate(&spec) {
        return assert_one_line(&e.to_string(), MAX_ERROR);
    }
    let back = parse_spec(&spec_to_toml(&spec), Path::new("again.toml"))
        .expect("a valid spec serialises to TOML that parses");
    assert_eq!(back, spec);
});
