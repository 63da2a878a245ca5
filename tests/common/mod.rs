//! What the CLI integration tests share: the `llmib` binary under test and `llmib sim`
//! running in a process of its own.
// Each test file compiles this module for itself and uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// The `llmib` binary Cargo built for these tests.
pub const LLMIB: &str = env!("CARGO_BIN_EXE_llmib");

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
        let mut child = Command::new(LLMIB)
            .args([
                "sim",
                "--dialect",
                dialect,
                "--profile",
                "tiny",
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
