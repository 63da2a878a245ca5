//! The soak's child processes: the real `llmib` binary, run as a user would run it.
//!
//! Why separate processes: the issue asks for the simulator "in another process", and
//! only the real binaries show what a user gets (argument parsing, runtime set-up, the
//! log written to a real file, exit codes). Every child is held by a [`Proc`] that kills
//! it if the soak ends early, so a failed soak never leaves a server behind.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// A running child process, killed on drop unless it was waited for.
pub struct Proc {
    child: Child,
    name: &'static str,
}

impl Proc {
    pub fn spawn(name: &'static str, cmd: &mut Command) -> anyhow::Result<Proc> {
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        Ok(Proc { child, name })
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// The exit status, if the process has ended.
    pub fn try_wait(&mut self) -> anyhow::Result<Option<ExitStatus>> {
        self.child
            .try_wait()
            .with_context(|| format!("cannot wait for {}", self.name))
    }

    /// Sends `signal` (e.g. `libc::SIGINT`, the graceful stop of `llmib sim`/`replay`).
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own, not yet reaped child: the pid cannot be reused.
        unsafe {
            libc::kill(self.pid(), signal);
        }
    }

    /// Sends `signal`, then waits up to `timeout` for the process to end.
    pub fn stop(mut self, signal: i32, timeout: Duration) -> anyhow::Result<ExitStatus> {
        self.signal(signal);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} did not stop within {timeout:?} of a signal", self.name);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The `llmib` binary: `--llmib`, else `$LLMIB_BIN`, else the one cargo built beside
/// this example (`target/<profile>/examples/soak` -> `target/<profile>/llmib`).
pub fn find_llmib(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let path = match given.or_else(|| std::env::var_os("LLMIB_BIN").map(PathBuf::from)) {
        Some(p) => p,
        None => {
            let exe = std::env::current_exe().context("cannot locate the soak executable")?;
            let profile_dir = exe
                .parent()
                .and_then(Path::parent)
                .context("the soak executable has no parent directory")?;
            profile_dir.join("llmib")
        }
    };
    if !path.is_file() {
        bail!(
            "no llmib binary at {}: build it with `cargo build --release -p llm-infer-bench --bins` or pass --llmib",
            path.display()
        );
    }
    Ok(path)
}

/// Runs `llmib ARGS` to completion; fails with its last stderr line.
pub fn run_llmib(llmib: &Path, args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new(llmib)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", llmib.display()))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        bail!(
            "`llmib {}` failed ({}): {}",
            args.first().unwrap_or(&""),
            out.status,
            err.lines().last().unwrap_or("")
        );
    }
    Ok(())
}

/// Starts `llmib sim ARGS --port 0` and reads the base URL it prints.
pub fn start_sim(llmib: &Path, args: &[String]) -> anyhow::Result<(Proc, String)> {
    let mut sim = Proc::spawn(
        "llmib sim",
        Command::new(llmib)
            .arg("sim")
            .args(args)
            .args(["--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    let stdout = sim.child.stdout.take().context("simulator stdout")?;
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .context("reading the simulator's address")?;
    let url = line.trim().to_string();
    if !url.starts_with("http://") {
        let status = sim.child.wait()?;
        bail!("llmib sim printed no address ({status})");
    }
    Ok((sim, url))
}

/// Starts `llmib replay ARGS`; the handle yields its stdout (the end-of-run summary).
pub fn start_replay(llmib: &Path, args: &[String]) -> anyhow::Result<(Proc, JoinHandle<String>)> {
    let mut replay = Proc::spawn(
        "llmib replay",
        Command::new(llmib)
            .arg("replay")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped()),
    )?;
    let mut stdout = replay.child.stdout.take().context("replay stdout")?;
    let summary = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    Ok((replay, summary))
}

/// Resident set size of a process, KiB (`VmRSS` in `/proc/PID/status`); `None` once it
/// has exited.
pub fn rss_kib(pid: i32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Major page faults of a process so far (`majflt` in `/proc/PID/stat`): each one is a
/// wait for the disk, e.g. for code pages the kernel had reclaimed.
pub fn major_faults(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which ends at the last ')': state is field 3,
    // majflt field 12.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(9)?.parse().ok()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
