//! One module per subcommand: flags and wiring only; the work is in the library crates.
//!
//! Shared here: the exit statuses every command reports ([`Exit`]) and the signal
//! handling of the commands that run for a while ([`on_signals`]).

pub mod analyze;
pub mod calibrate;
pub mod compare;
pub mod demo;
pub mod endpoint;
pub mod export;
pub mod generate;
pub mod import;
pub mod merge;
pub mod predict;
pub mod replay;
pub mod run;
pub mod search;
pub mod sim;
pub mod sweep;
pub mod trace;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// How a command that did not fail ended. Failures (bad input, bad flags, unreadable
/// files, an endpoint that is down before the run) are errors: exit status 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exit status 0.
    Success,
    /// Exit status 1: the run finished but no request succeeded, or the analysis found
    /// nothing to analyse.
    NothingSucceeded,
    /// Exit status 130: stopped by SIGINT or SIGTERM; every log is complete and valid.
    Interrupted,
    /// Exit status 1: `llmib compare --fail-if` found a significant regression.
    Regression,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::NothingSucceeded | Exit::Regression => 1,
            Exit::Interrupted => 130,
        }
    }
}

/// The exit statuses, for `--help` and the README.
pub const EXIT_STATUS_HELP: &str = "\
Exit status:
  0    success
  1    the run finished but no request succeeded, or the analysis found nothing to analyse,
       or `compare --fail-if` found a significant regression
  2    bad input or usage (one line on stderr says what)
  130  interrupted by Ctrl-C (SIGINT) or SIGTERM; logs written so far are complete and valid";

/// `--seed`: a whole number, with a one-line reason when it is not.
pub fn seed_arg(s: &str) -> Result<u64, String> {
    s.trim()
        .parse()
        .map_err(|_| format!("expected a whole number from 0 to {}", u64::MAX))
}

/// `--shards N`: a shard count, with a one-line reason when it is not one.
pub fn shard_count_arg(s: &str) -> Result<u32, String> {
    s.trim()
        .parse()
        .ok()
        .filter(|n| (1..=formats::MAX_SHARDS).contains(n))
        .ok_or_else(|| {
            format!(
                "expected a whole number of shards from 1 to {}",
                formats::MAX_SHARDS
            )
        })
}

/// Exit status of a suite run: 1 (with a line per run) when some trace was replayed and
/// none of its requests succeeded.
pub fn exit_for_failed_runs(failed: &[std::path::PathBuf]) -> Exit {
    for log in failed {
        eprintln!("no request succeeded in {}", log.display());
    }
    if failed.is_empty() {
        Exit::Success
    } else {
        Exit::NothingSucceeded
    }
}

/// Analyses a sweep or search directory into `DIR/analysis`, prints its tables and
/// each curve's knee. Exit 1 when no request succeeded in any run.
pub fn capacity_analysis(
    dir: &std::path::Path,
    slo: Option<analyzer::capacity::SloTargets>,
) -> anyhow::Result<Exit> {
    let a = llm_infer_bench::capacity::analyze_dir(dir, slo)?;
    println!("{}", a.tables);
    for c in analyzer::capacity::curves(&a.report) {
        let knee = c
            .knee
            .as_ref()
            .map_or("none (saturated from the first rate)".into(), |k| {
                format!("{} req/s", analyzer::report::fmt_qps(k.offered_rate))
            });
        println!("knee of {} on {}: {knee}", c.label, c.trace_name);
    }
    eprintln!("analysis in {}", dir.join("analysis").display());
    if a.report.runs.iter().all(|r| r.metrics.ok == 0) {
        eprintln!("no request succeeded in any run");
        return Ok(Exit::NothingSucceeded);
    }
    Ok(Exit::Success)
}

/// The multi-threaded tokio runtime the network commands run on.
pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A stop handle driven by signals, and whether one arrived.
pub struct SignalStop {
    pub stop: replayer::StopHandle,
    received: Arc<AtomicBool>,
}

impl SignalStop {
    /// True once SIGINT or SIGTERM was received.
    pub fn interrupted(&self) -> bool {
        self.received.load(Ordering::SeqCst)
    }
}

/// Wires SIGINT (Ctrl-C) and SIGTERM (what `kill`, systemd, Docker and Kubernetes send)
/// to a stop handle: the first of either stops dispatching (in-flight requests get a
/// grace period), the second cancels everything in flight. Logs are completed with
/// their trailers either way.
pub fn on_signals(rt: &tokio::runtime::Runtime) -> anyhow::Result<SignalStop> {
    let stop = replayer::StopHandle::new();
    let received = Arc::new(AtomicBool::new(false));
    let mut signals = rt.block_on(async { Signals::new() })?;
    let (s, r) = (stop.clone(), received.clone());
    rt.spawn(async move {
        let name = signals.next().await;
        r.store(true, Ordering::SeqCst);
        eprintln!(
            "{name}: stopping dispatch; in-flight requests get a grace period (Ctrl-C again to cancel them)"
        );
        s.stop();
        let name = signals.next().await;
        eprintln!("{name}: cancelling in-flight requests");
        s.abort();
    });
    Ok(SignalStop { stop, received })
}

/// SIGINT and SIGTERM as one stream of events.
pub struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers; call inside a tokio runtime.
    #[cfg(unix)]
    pub fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
        })
    }

    #[cfg(not(unix))]
    pub fn new() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    /// Waits for the next signal; returns its name.
    #[cfg(unix)]
    pub async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.int.recv() => "interrupt",
            _ = self.term.recv() => "SIGTERM",
        }
    }

    #[cfg(not(unix))]
    pub async fn next(&mut self) -> &'static str {
        let _ = tokio::signal::ctrl_c().await;
        "interrupt"
    }
}
