//! `llmib trace inspect` on damaged and cut traces, through the real binary: a damaged
//! header or trailer is reported as corrupted, a cut file as truncated, each as one
//! `error:` line with exit status 2.

use std::path::{Path, PathBuf};
use std::process::Command;

const SPEC: &str = r#"
name = "integrity"
seed = 11
requests = 20
prompt_tokens = { dist = "uniform", lo = 1, hi = 40 }
output_tokens = { dist = "fixed", value = 8 }
arrival = { process = "poisson", rate = 4.0 }
"#;

/// Runs `llmib trace inspect [--jsonl] FILE` and returns its stdout on success, or the
/// single error line (exit status 2) on failure.
fn inspect(file: &Path, jsonl: bool) -> Result<String, String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_llmib"));
    cmd.args(["trace", "inspect"]);
    if jsonl {
        cmd.arg("--jsonl");
    }
    let out = cmd.arg(file).output().expect("run llmib");
    if out.status.success() {
        return Ok(String::from_utf8(out.stdout).unwrap());
    }
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    Err(stderr)
}

/// A freshly generated 20-request trace: its path and bytes.
fn trace(dir: &Path) -> (PathBuf, Vec<u8>) {
    let spec = dir.join("spec.toml");
    std::fs::write(&spec, SPEC).unwrap();
    let path = dir.join("good.msgpack");
    let out = Command::new(env!("CARGO_BIN_EXE_llmib"))
        .args([
            "generate",
            spec.to_str().unwrap(),
            "-o",
            path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let bytes = std::fs::read(&path).unwrap();
    (path, bytes)
}

/// Offset of the trailer: the map marker before the last `trailer` key.
fn trailer_start(bytes: &[u8]) -> usize {
    bytes.windows(8).rposition(|w| w == b"\xa7trailer").unwrap() - 1
}

#[test]
fn a_damaged_header_is_reported_as_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let (good, bytes) = trace(dir.path());
    assert!(inspect(&good, false).unwrap().contains("20"));
    // One letter of the trace name in the header: still a well-formed header, so only
    // the header checksum in the trailer can tell.
    let pos = bytes.windows(9).position(|w| w == b"integrity").unwrap();
    let mut bad = bytes.clone();
    bad[pos + 2] = b'T';
    let file = dir.path().join("header.msgpack");
    std::fs::write(&file, &bad).unwrap();
    for jsonl in [false, true] {
        let e = inspect(&file, jsonl).unwrap_err();
        assert!(e.contains("corrupted file: header checksum"), "{e}");
    }
}

#[test]
fn a_flipped_trailer_byte_is_corrupted_not_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = trace(dir.path());
    let file = dir.path().join("trailer.msgpack");
    for pos in trailer_start(&bytes)..bytes.len() {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x01;
        std::fs::write(&file, &bad).unwrap();
        let e = inspect(&file, false).unwrap_err();
        assert!(
            e.contains("corrupted") && !e.contains("truncated"),
            "byte {pos}: {e}"
        );
    }
}

#[test]
fn a_cut_trace_is_reported_as_truncated() {
    let dir = tempfile::tempdir().unwrap();
    let (_, bytes) = trace(dir.path());
    let file = dir.path().join("cut.msgpack");
    let trailer = trailer_start(&bytes);
    for cut in [10, bytes.len() / 2, trailer, trailer + 5, bytes.len() - 1] {
        std::fs::write(&file, &bytes[..cut]).unwrap();
        let e = inspect(&file, false).unwrap_err();
        assert!(e.contains("truncated file"), "cut {cut}: {e}");
    }
}
