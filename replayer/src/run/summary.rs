//! What a replay reports when it ends: counters and the client's health check, printed
//! by `llmib replay` and read by the pipelines. Built by the finish phase
//! ([`crate::run`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use formats::{Outcome, WarmConnections};

use crate::run::stats::fmt_ns;

/// What a replay did, for people and for pipelines. Published metrics come from the
/// analyzer reading the log; these are the run's own counters and its health check.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub log: PathBuf,
    /// Records written (one per replayed trace request).
    pub records: u64,
    pub by_outcome: BTreeMap<Outcome, u64>,
    /// The trailer says complete: every request was sent and none was cancelled by a stop.
    pub complete: bool,
    /// Stopped by the caller (Ctrl-C) or by `duration`.
    pub interrupted: bool,
    pub wall: Duration,
    /// Dispatch lateness (task start minus scheduled time), ns.
    pub lateness_p50_ns: u64,
    pub lateness_p99_ns: u64,
    pub lateness_max_ns: u64,
    /// The dispatcher's own precision: hand-off to the runtime minus scheduled time
    /// (p99, max). The rest of the lateness is the runtime starting the task.
    pub handoff_p99_ns: u64,
    pub handoff_max_ns: u64,
    /// Largest `dispatched_ns - scheduled_ns` (lateness plus concurrency-slot wait).
    pub dispatch_delay_max_ns: u64,
    pub output_tokens: u64,
    /// Process CPU time over the run, without the dispatcher thread's spinning.
    pub cpu_time: Duration,
    /// The client used nearly all the CPU it had: its timings may be inflated.
    pub cpu_bound: bool,
    /// Duplicate or missing records the writer had to fix (always 0 unless a bug).
    pub internal_anomalies: u64,
    /// The connection warm-up and the connections opened during the run.
    pub connections: Connections,
    pub warnings: Vec<String>,
}

/// The run's connections: those opened before the clock started (`--connections`) and
/// those opened by requests during the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connections {
    /// The warm-up, as recorded in the log header.
    pub warm: WarmConnections,
    /// New connections while the clock ran (requests that found no idle connection,
    /// connections the server closed and requests reopened, and standby connections).
    pub opened_during_run: u64,
    /// Requests sent on a standby connection, opened ahead of them against a server that
    /// closes connections after streams (`net/standby.rs`): they paid for no connect.
    pub on_standby: u64,
}

impl std::fmt::Display for Connections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let w = &self.warm;
        if w.requested == 0 {
            f.write_str("connections: no warm-up")?;
        } else {
            let why = match w.basis.as_str() {
                "flag" => "--connections",
                "concurrency" => "the concurrency cap",
                "trace_peak" => "the trace's busiest second",
                other => other,
            };
            write!(
                f,
                "connections: {} of {} opened before the clock in {} ({why}{})",
                w.opened,
                w.requested,
                fmt_ns(w.elapsed_ns),
                if w.bounded { ", bounded" } else { "" },
            )?;
        }
        write!(f, "; {} opened during the run", self.opened_during_run)?;
        if self.on_standby > 0 {
            write!(
                f,
                " ({} requests sent on standby connections opened ahead of them)",
                self.on_standby
            )?;
        }
        Ok(())
    }
}

impl ReplaySummary {
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.by_outcome.get(&outcome).copied().unwrap_or(0)
    }

    /// Lateness p99 under 1 ms and the client not CPU-bound.
    pub fn client_healthy(&self) -> bool {
        self.lateness_p99_ns <= 1_000_000 && !self.cpu_bound
    }
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcomes: Vec<String> = self
            .by_outcome
            .iter()
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        writeln!(
            f,
            "replayed {} requests in {:.2} s{}: {}",
            self.records,
            self.wall.as_secs_f64(),
            if self.complete {
                ""
            } else {
                " (incomplete run)"
            },
            outcomes.join(", ")
        )?;
        let secs = self.wall.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "output tokens {} ({:.0} tok/s); log {}",
            self.output_tokens,
            self.output_tokens as f64 / secs,
            self.log.display()
        )?;
        writeln!(f, "{}", self.connections)?;
        write!(
            f,
            "client health: dispatch lateness p50 {} p99 {} max {} (dispatcher alone p99 {} max {}); cpu {:.0}% of one core",
            fmt_ns(self.lateness_p50_ns),
            fmt_ns(self.lateness_p99_ns),
            fmt_ns(self.lateness_max_ns),
            fmt_ns(self.handoff_p99_ns),
            fmt_ns(self.handoff_max_ns),
            100.0 * self.cpu_time.as_secs_f64() / secs
        )?;
        if self.dispatch_delay_max_ns > self.lateness_max_ns + 1_000_000 {
            write!(
                f,
                "; max wait for a concurrency slot {}",
                fmt_ns(self.dispatch_delay_max_ns)
            )?;
        }
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}
