//! Runs `llmib replay` and watches it from outside: RSS and on-disk records every
//! ~100 ms, the log decoded as it grows (see `tail.rs`).
//!
//! Why from outside: the issue asks for the client's own RSS, and for the log as another
//! process (a user's `tail`, a crash) would see it, not what the writer believes it wrote.

use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::measure::Sample;
use crate::plan::Plan;
use crate::procs::{Proc, major_faults, rss_kib, start_replay};
use crate::tail::{Tail, Tailed};

const SAMPLE_EVERY: Duration = Duration::from_millis(100);

/// A finished replay as observed.
pub struct Observed {
    pub status: ExitStatus,
    /// Its stdout: the end-of-run summary.
    pub summary: String,
    pub tailed: Tailed,
    pub samples: Vec<Sample>,
    pub wall: Duration,
    /// The replay overran its deadline and was interrupted.
    pub overran: bool,
}

/// Runs the replay to its end, sampling it. A replay still running at twice the trace's
/// length plus a minute is interrupted (SIGINT: its log still gets a trailer), and
/// killed 30 s later.
pub fn observe(llmib: &Path, plan: &Plan, args: &[String], log: &Path) -> anyhow::Result<Observed> {
    let deadline = plan.duration() * 2 + Duration::from_secs(60);
    let started = Instant::now();
    let (mut child, summary) = start_replay(llmib, args)?;
    let writer_done = Arc::new(AtomicBool::new(false));
    let tail = Tail::spawn(log.to_path_buf(), writer_done.clone());
    let mut samples = Vec::with_capacity((deadline.as_secs() * 10) as usize);
    let mut watchdog = Watchdog {
        deadline,
        interrupted: false,
        killed: false,
    };
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if let Some(rss_kib) = rss_kib(child.pid()) {
            samples.push(Sample {
                t_s: started.elapsed().as_secs_f64(),
                rss_kib,
                major_faults: major_faults(child.pid()).unwrap_or(0),
                on_disk: tail.on_disk.load(Ordering::Acquire),
            });
        }
        watchdog.check(&child, started.elapsed());
        std::thread::sleep(SAMPLE_EVERY);
    };
    let wall = started.elapsed();
    writer_done.store(true, Ordering::Release);
    Ok(Observed {
        status,
        summary: summary.join().unwrap_or_default(),
        tailed: tail.join(),
        samples,
        wall,
        overran: watchdog.interrupted,
    })
}

/// Interrupts a replay that overran its deadline (SIGINT), kills it 30 s later.
struct Watchdog {
    deadline: Duration,
    interrupted: bool,
    killed: bool,
}

impl Watchdog {
    fn check(&mut self, child: &Proc, elapsed: Duration) {
        if elapsed < self.deadline {
            return;
        }
        if !self.interrupted {
            eprintln!(
                "soak: the replay overran {:?}; interrupting it",
                self.deadline
            );
            child.signal(libc::SIGINT);
            self.interrupted = true;
        } else if !self.killed && elapsed >= self.deadline + Duration::from_secs(30) {
            child.signal(libc::SIGKILL);
            self.killed = true;
        }
    }
}
