//! Outputs a command must never destroy, and numbers it must print readably: the cases
//! of issue 9 for `llmib generate`, `llmib import` and `llmib sim`, through the real
//! binary. (`replay` cases are in `cli_replay.rs`, `analyze`/`export` in
//! `cli_analyze.rs`.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const LLMIB: &str = env!("CARGO_BIN_EXE_llmib");

fn llmib(args: &[&str]) -> Output {
    Command::new(LLMIB).args(args).output().expect("run llmib")
}

/// Exit 2 and exactly one `error:` line; returns it.
fn fails(args: &[&str]) -> String {
    let out = llmib(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "llmib {args:?}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line expected: {stderr:?}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    stderr
}

fn ok(args: &[&str]) {
    let out = llmib(args);
    assert!(
        out.status.success(),
        "llmib {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const SPEC: &str = r#"
name = "safety"
seed = 3
requests = 20

[prompt_tokens]
dist = "fixed"
value = 8

[output_tokens]
dist = "fixed"
value = 4

[arrival]
process = "constant"
rate = 1000.0
"#;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn temporaries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect()
}

#[test]
fn generate_never_writes_over_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "spec.toml", SPEC);
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec!["generate", s(&spec), "-o", s(&spec)];
        args.extend(extra);
        let e = fails(&args);
        assert!(e.contains("the spec file"), "{e}");
    }
    assert_eq!(std::fs::read_to_string(&spec).unwrap(), SPEC);
}

#[test]
fn generate_replaces_an_existing_trace_only_with_force() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "spec.toml", SPEC);
    let out = write(dir.path(), "t.msgpack", "precious");
    let e = fails(&["generate", s(&spec), "-o", s(&out)]);
    assert!(e.contains("already exists (use --force"), "{e}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "precious");
    ok(&["generate", s(&spec), "-o", s(&out), "--force"]);
    assert_eq!(formats::read_trace(&out).unwrap().1.len(), 20);
}

#[test]
fn generate_refuses_devices_directories_and_missing_parents_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "spec.toml", SPEC);
    for force in [false, true] {
        let mut args = vec!["generate", s(&spec), "-o", "/dev/null"];
        if force {
            args.push("--force");
        }
        fails(&args);
    }
    assert!(!std::fs::metadata("/dev/null").unwrap().is_file());
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let e = fails(&["generate", s(&spec), "-o", s(&sub), "--force"]);
    assert!(e.contains("a directory"), "{e}");
    assert!(
        temporaries(dir.path()).is_empty(),
        "{:?}",
        temporaries(dir.path())
    );
    let missing = dir.path().join("no/such/t.msgpack");
    let e = fails(&["generate", s(&spec), "-o", s(&missing)]);
    assert!(e.contains(s(&missing)) && !e.contains(".tmp-"), "{e}");
}

#[test]
fn generate_suite_refuses_existing_files_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("traces");
    std::fs::create_dir(&out).unwrap();
    write(&out, "MANIFEST", "mine");
    let e = fails(&["generate", "--suite", "seed", "-o", s(&out)]);
    assert!(e.contains("MANIFEST") && e.contains("--force"), "{e}");
    assert_eq!(
        std::fs::read_to_string(out.join("MANIFEST")).unwrap(),
        "mine"
    );
    assert!(
        !out.join("latency-qps1.msgpack").exists(),
        "checked before writing"
    );
}

#[test]
fn import_never_writes_over_its_csv() {
    let dir = tempfile::tempdir().unwrap();
    let text = "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46.6805900,374,44\n";
    let csv = write(dir.path(), "in.csv", text);
    for force in [false, true] {
        let mut args = vec!["import", "azure", s(&csv), "-o", s(&csv)];
        if force {
            args.push("--force");
        }
        assert!(fails(&args).contains("the CSV being imported"));
    }
    assert_eq!(std::fs::read_to_string(&csv).unwrap(), text);
}

#[test]
fn numbers_in_errors_are_readable() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("o.msgpack");
    let spec = write(
        dir.path(),
        "huge.toml",
        &SPEC.replace(
            "dist = \"fixed\"\nvalue = 4",
            "dist = \"capped_exponential\"\nmean = 1e300\ncap = 10",
        ),
    );
    let e = fails(&["generate", s(&spec), "-o", s(&out)]);
    assert!(e.contains("1e300") && e.len() < 300, "{e}");
    let csv = write(
        dir.path(),
        "big.csv",
        "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,99999999999,1\n",
    );
    let e = fails(&["import", "azure", s(&csv), "-o", s(&out)]);
    assert!(e.contains("exceeds the maximum of 4294967295"), "{e}");
    assert!(!out.exists());
}

/// `llmib sim` with a truth log, stopped by SIGTERM right after a replay: the records of
/// the last requests (still in the writer's buffer) must reach the file.
#[test]
fn sim_sigterm_completes_the_truth_log() {
    let dir = tempfile::tempdir().unwrap();
    let spec = write(dir.path(), "spec.toml", SPEC);
    let trace = dir.path().join("t.msgpack");
    ok(&["generate", s(&spec), "-o", s(&trace)]);
    let truth = dir.path().join("truth.jsonl");
    let mut sim = Command::new(LLMIB)
        .args([
            "sim",
            "--dialect",
            "tgi",
            "--profile",
            "null",
            "--port",
            "0",
        ])
        .args(["--truth-log", s(&truth)])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(sim.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line.trim().to_string();
    let run = dir.path().join("run.msgpack");
    let replay = llmib(&[
        "replay",
        s(&trace),
        "--backend",
        "tgi",
        "--endpoint",
        &url,
        "-o",
        s(&run),
        "--quiet",
    ]);
    assert!(
        replay.status.success(),
        "{}",
        String::from_utf8_lossy(&replay.stderr)
    );
    let st = Command::new("kill")
        .args(["-TERM", &sim.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = sim.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let served = simulator::truth::read_truth_log(&truth).unwrap();
    // The replayer's /health probe is not a generation request: 20 trace requests.
    assert_eq!(
        served.len(),
        20,
        "every request the sim answered is in its truth log"
    );
}

#[test]
fn sim_truth_log_is_not_replaced_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let truth = write(dir.path(), "truth.jsonl", "old\n");
    let e = fails(&["sim", "--dialect", "tgi", "--truth-log", s(&truth)]);
    assert!(e.contains("--force"), "{e}");
    assert_eq!(std::fs::read_to_string(&truth).unwrap(), "old\n");
}
