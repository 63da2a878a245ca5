//! The end of a run (phases 6 and 7, see `run/mod.rs`): every request task waited for,
//! the trailer written, and the summary with the client's health check.

use std::path::Path;
use std::time::Duration;

use crate::error::ReplayError;
use crate::run::dispatch::DispatchReport;
use crate::run::health::{CpuUse, Lateness, warn_client_health, warn_run};
use crate::run::launch::Running;
use crate::run::open_log::LogSink;
use crate::run::setup::Connected;
use crate::run::stats::percentile;
use crate::run::stop::StopHandle;
use crate::run::summary::{Connections, ReplaySummary};
use crate::run::writer::{WriterMsg, WriterReport};

/// The run once every request task ended and the trailer is written.
pub(super) struct Drained {
    dispatch: DispatchReport,
    writer: WriterReport,
    wall: Duration,
    cpu: CpuUse,
    interrupted: bool,
}

/// Phase 6: waits for every request task, then has the writer write the trailer and
/// waits for it.
pub(super) async fn drain(
    running: Running,
    log: LogSink,
    dreport: DispatchReport,
    stop: &StopHandle,
    output: &Path,
) -> Result<Drained, ReplayError> {
    let Running {
        shared,
        tracker,
        finished,
        progress,
        cpu_before,
        wall_start,
    } = running;
    tracker.close();
    tracker.wait().await;
    let ended_ns = shared.clock.now_ns();
    let wall = wall_start.elapsed();
    finished.cancel();
    let aborted = shared.abort.clone();
    drop(shared);

    let interrupted = dreport.cut_short || stop.is_stopped();
    let complete = dreport.not_sent == 0 && !aborted.is_cancelled() && !interrupted;
    let cpu = CpuUse::measure(cpu_before, dreport.cpu, wall);
    let client = Some(formats::ClientCpu {
        cpu_ms: cpu.time.as_millis().min(u64::MAX as u128) as u64,
        cores: cpu.cores as u32,
        bound: cpu.bound,
    });
    let LogSink { tx, writer, .. } = log;
    let _ = tx.send(WriterMsg::Finish {
        complete,
        ended_ns,
        client,
    });
    drop(tx);
    let mut wreport = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| ReplayError::Internal(e.to_string()))?
        .map_err(|_| ReplayError::Internal("the log writer panicked".into()))?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    if let Some(e) = wreport.error.take() {
        return Err(ReplayError::Log {
            path: output.to_path_buf(),
            message: e,
        });
    }
    Ok(Drained {
        dispatch: dreport,
        writer: wreport,
        wall,
        cpu,
        interrupted,
    })
}

/// Phase 7: the summary, with the client's health check, the connections and the
/// run's warnings.
pub(super) fn finish(output: &Path, d: Drained, conn: Connected, burst: bool) -> ReplaySummary {
    let connections = Connections {
        opened_during_run: conn.count.opened().saturating_sub(conn.opened_before),
        on_standby: conn.standby.used(),
        warm: conn.warm,
    };
    let mut warnings = conn.warnings;
    let cpu = d.cpu;
    let mut w = d.writer;
    let handoff = sorted(std::mem::take(&mut w.handoff_lateness_ns));
    let lat = sorted(std::mem::take(&mut w.lateness_ns));
    let p99 = percentile(&lat, 0.99);
    let lateness = Lateness { p99, burst };
    warn_client_health(
        &mut warnings,
        lateness,
        &handoff,
        d.dispatch.realtime,
        &cpu,
        d.wall,
    );
    let anomalies = w.duplicates_dropped + w.missing_filled;
    warn_run(&mut warnings, &d.dispatch, &w);
    ReplaySummary {
        log: output.to_path_buf(),
        records: w.records,
        by_outcome: w.by_outcome,
        complete: w.trailer.as_ref().is_some_and(|t| t.complete),
        interrupted: d.interrupted,
        wall: d.wall,
        lateness_p50_ns: percentile(&lat, 0.5),
        lateness_p99_ns: p99,
        lateness_max_ns: lat.last().copied().unwrap_or(0),
        handoff_p99_ns: percentile(&handoff, 0.99),
        handoff_max_ns: handoff.last().copied().unwrap_or(0),
        dispatch_delay_max_ns: w.dispatch_delay_ns.iter().copied().max().unwrap_or(0),
        output_tokens: w.output_tokens,
        cpu_time: cpu.time,
        cpu_bound: cpu.bound,
        internal_anomalies: anomalies,
        connections,
        warnings,
    }
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}
