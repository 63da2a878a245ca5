//! What the CLI integration tests share: the `llmib` binary under test, `llmib sim`
//! running in a process of its own, and the lock of the timing-sensitive tests.
// `tests/real_servers.rs` compiles this module too and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// The `llmib` binary Cargo built for these tests.
pub const LLMIB: &str = env!("CARGO_BIN_EXE_llmib");

/// Held by every test whose numbers depend on wall-clock time (capacity searches and
/// sweeps against the simulator, time dilation, shard lateness, which request reaches
/// the prefix cache first) or on this process's memory (a child's peak RSS): all the
/// tests of a crate run in one binary, and two of these side by side would each get half
/// the machine. A test that
/// failed while holding it does not poison it for the others.
pub fn timing_sensitive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Runs `llmib ARGS` to its end.
pub fn llmib(args: &[&str]) -> Output {
    Command::new(LLMIB).args(args).output().expect("run llmib")
}

/// Runs `llmib ARGS`, which must succeed; returns its standard output.
pub fn ok(args: &[&str]) -> String {
    let out = llmib(args);
    assert!(
        out.status.success(),
        "llmib {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A sample file of `tests/data/`.
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// The repository's tiny BPE `tokenizer.json` (a test fixture of the generator).
pub fn fixture_tokenizer() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("generator/tests/fixtures/tiny-bpe-tokenizer.json")
}

/// The tokenizer of the exact-count tests: `LLMIB_TOKENIZER` (a real one, e.g. Llama
/// 3's) when it is set, else [`fixture_tokenizer`]; and whether it is the real one.
pub fn test_tokenizer() -> (PathBuf, bool) {
    match std::env::var_os("LLMIB_TOKENIZER") {
        Some(p) => (PathBuf::from(p), true),
        None => (fixture_tokenizer(), false),
    }
}

/// A capacity command (`search`, `sweep`) whose server dies after its first run: waits
/// for `manifest` (written once the first run is measured; the command's `--pause`
/// follows), stops `sim`, and checks that `command` then ends with exit 2 and one last
/// line `error: COMMAND stopped: ...` naming the rate and the run kept, not an
/// interruption. Returns its stderr.
pub fn dies_after_first_run(
    mut child: Child,
    sim: SimProcess,
    manifest: &Path,
    command: &str,
) -> String {
    let t0 = Instant::now();
    while !manifest.exists() {
        assert!(t0.elapsed().as_secs() < 120, "no first run");
        assert!(child.try_wait().unwrap().is_none(), "{command} ended early");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(sim);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let last = stderr.trim().lines().last().unwrap();
    assert!(
        last.starts_with(&format!("error: {command} stopped: ")),
        "{stderr}"
    );
    assert!(
        last.contains("6 req/s") && last.contains("1 run measured"),
        "{stderr}"
    );
    assert!(!stderr.contains("interrupted"), "{stderr}");
    stderr
}

/// Waits for `child` at most `limit`; kills it and fails past that.
pub fn wait_limited(child: &mut Child, limit: Duration) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running after {limit:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs `cmd` to its end, its output read as it comes; kills it (and fails) after 60 s.
pub fn run_bounded(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let t = std::thread::spawn(move || {
            let _ = err.read_to_end(&mut e);
            e
        });
        let _ = out.read_to_end(&mut o);
        (o, t.join().unwrap())
    });
    let status = wait_limited(&mut child, Duration::from_secs(60));
    let (stdout, stderr) = reader.join().unwrap();
    Output {
        status,
        stdout,
        stderr,
    }
}

/// A four-request trace `DIR/t.msgpack` (1 ms apart, prompt `a b c`, 2 output tokens):
/// enough to replay, for the tests of flags and inputs.
pub fn small_trace(dir: &Path) -> PathBuf {
    let trace = dir.join("t.msgpack");
    write_trace(
        &trace,
        "t",
        4,
        1_000_000,
        "a b c",
        formats::LengthDist::Fixed { value: 2, floor: 1 },
        |_| 2,
    );
    trace
}

/// A path as an argument.
pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `llmib sim` on a free port of 127.0.0.1, killed and reaped on drop.
pub struct SimProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the simulator printed it.
    pub url: String,
}

impl SimProcess {
    /// `llmib sim --dialect DIALECT --profile tiny --port 0 EXTRA...`; returns once it
    /// has printed its address (it listens by then).
    pub fn start(dialect: &str, extra: &[&str]) -> SimProcess {
        Self::start_profile(dialect, "tiny", extra)
    }

    /// [`SimProcess::start`] with another profile (a built-in name or a TOML file).
    pub fn start_profile(dialect: &str, profile: &str, extra: &[&str]) -> SimProcess {
        let mut child = Command::new(LLMIB)
            .args([
                "sim",
                "--dialect",
                dialect,
                "--profile",
                profile,
                "--port",
                "0",
            ])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line.trim().to_string();
        assert!(url.starts_with("http://"), "sim printed {url:?}");
        SimProcess { child, url }
    }

    /// SIGTERM, as a user's Ctrl-C would be: the simulator completes its truth log;
    /// asserts that it then exited 0.
    pub fn stop(mut self) {
        // SAFETY: kill(2) on the pid of a child this test spawned and has not reaped.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0);
        let status = self.child.wait().unwrap();
        assert!(status.success(), "sim exit {status:?}");
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_string()
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes a trace of `n` requests `gap_ns` apart, each with `prompt` (words counted as
/// tokens) and `max_tokens(id)` output tokens; `output` is what the header says of them.
pub fn write_trace(
    path: &std::path::Path,
    name: &str,
    n: u64,
    gap_ns: u64,
    prompt: &str,
    output: formats::LengthDist,
    max_tokens: impl Fn(u64) -> u32,
) {
    use formats::{
        Arrival, LengthDist, SyntheticSpec, TokenizerInfo, TraceHeader, TraceRequest, TraceSpec,
        TraceWriter,
    };
    let words = prompt.split_whitespace().count() as u32;
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: name.into(),
        seed: 1,
        requests: n,
        prompt_tokens: LengthDist::Fixed {
            value: words,
            floor: 1,
        },
        output_tokens: output,
        arrival: Arrival::Constant {
            rate: 1e9 / gap_ns as f64,
        },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let tokenizer = TokenizerInfo {
        kind: "builtin-words".into(),
        name: "cli".into(),
        sha256: None,
    };
    let header = TraceHeader::new(spec, tokenizer, n, "test");
    let mut w = TraceWriter::create(path, &header).unwrap();
    for id in 0..n {
        w.write(&TraceRequest {
            id,
            arrival_ns: id * gap_ns,
            prompt: prompt.into(),
            prompt_token_ids: None,
            prompt_tokens: words,
            max_tokens: max_tokens(id),
            ignore_eos: true,
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
}

/// A simulator profile whose capacity is exact: one request at a time (max_batch_size 1)
/// and every step `step_us` long, so a request of `n` output tokens takes `n` steps (a
/// prefill, then `n - 1` decodes) and the server completes at most
/// `1e6 / (n * step_us)` requests per second.
pub fn one_at_a_time_profile(step_us: f64, description: &str) -> String {
    format!(
        r#"
name = "one-at-a-time"
description = "{description}"
model = "cap"
max_input_length = 64
max_total_tokens = 128
[engine]
kv_capacity_tokens = 65536
max_batch_size = 1
max_prefill_tokens = 4096
prefill_base_us = {step_us:.1}
prefill_per_token_us = 0.0
decode_base_us = {step_us:.1}
decode_per_seq_us = 0.0
decode_per_ctx_token_us = 0.0
"#
    )
}
