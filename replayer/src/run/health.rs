//! The client's health check at the end of a run: was it late, CPU-bound, without a
//! real-time dispatcher; were requests left unsent or records fixed. Each a warning
//! in the summary, so a run that did not measure what it asked says so.

use std::time::Duration;

use crate::run::dispatch::DispatchReport;
use crate::run::stats::{fmt_ns, percentile};
use crate::run::sys;
use crate::run::writer::WriterReport;

/// The process's CPU time over the run, without the dispatcher thread's spinning.
pub(super) struct CpuUse {
    pub(super) time: Duration,
    pub(super) cores: f64,
    /// Nearly all the machine's CPU was used: timings may include client delay.
    pub(super) bound: bool,
}

impl CpuUse {
    pub(super) fn measure(before: Duration, dispatcher: Duration, wall: Duration) -> Self {
        let time = sys::cpu_time(false)
            .saturating_sub(before)
            .saturating_sub(dispatcher);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let bound = wall > Duration::from_millis(500)
            && time.as_secs_f64() > 0.85 * cores * wall.as_secs_f64();
        CpuUse { time, cores, bound }
    }
}

/// Dispatch lateness as the health check reads it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Lateness {
    pub(super) p99: u64,
    /// Every request was due at once (see [`crate::run::prepare::Plan::burst`]).
    pub(super) burst: bool,
}

/// Warnings about the client itself: late dispatch, no real-time dispatcher, CPU-bound.
pub(super) fn warn_client_health(
    warnings: &mut Vec<String>,
    lateness: Lateness,
    handoff_sorted: &[u64],
    realtime: bool,
    cpu: &CpuUse,
    wall: Duration,
) {
    if let Some(w) = lateness_warning(lateness, wall) {
        warnings.push(w);
    }
    if !realtime && percentile(handoff_sorted, 0.99) > 100_000 {
        warnings.push(
            "the dispatcher thread could not get real-time priority (needs CAP_SYS_NICE or \
             RLIMIT_RTPRIO): its wake-ups were delayed by other processes"
                .to_string(),
        );
    }
    if cpu.bound {
        warnings.push(format!(
            "the client was CPU-bound ({:.0}% of {} cores): latencies include client delay; \
             run the client on its own machine or lower the load",
            100.0 * cpu.time.as_secs_f64() / wall.as_secs_f64(),
            cpu.cores
        ));
    }
}

/// The late-dispatch warning, if the lateness distorts what the run measures. A trace
/// with arrival times asks for each request at its instant: p99 over 1 ms means the
/// arrivals were not the trace's. A burst asks for every request at once, which no
/// client does (1,000 requests take tens of milliseconds to hand out on two cores):
/// its lateness is the time the burst took to send, and it matters only when that is a
/// noticeable part of the run (over 1% of it: the server's first answers then overlap
/// a ramp of arrivals, and throughput includes it).
fn lateness_warning(lateness: Lateness, wall: Duration) -> Option<String> {
    let wall_ns = wall.as_nanos().min(u64::MAX as u128) as u64;
    if lateness.burst {
        return (lateness.p99 > wall_ns / 100).then(|| {
            format!(
                "sending the burst took {} at p99, {:.1}% of the run: the first requests \
                 were served before the last were sent, and throughput includes that ramp",
                fmt_ns(lateness.p99),
                100.0 * lateness.p99 as f64 / wall_ns.max(1) as f64
            )
        });
    }
    (lateness.p99 > 1_000_000).then(|| {
        format!(
            "dispatch lateness p99 is {} (> 1 ms): the client fell behind the trace; \
             arrival times in this run are not what the trace asked for",
            fmt_ns(lateness.p99)
        )
    })
}

/// Warnings about the run: requests not sent, records the writer had to fix.
pub(super) fn warn_run(warnings: &mut Vec<String>, dreport: &DispatchReport, w: &WriterReport) {
    if dreport.by_duration {
        warnings.push(format!(
            "--duration reached: {} requests were not sent",
            dreport.not_sent
        ));
    } else if dreport.not_sent > 0 {
        warnings.push(format!(
            "interrupted: {} requests were not sent",
            dreport.not_sent
        ));
    }
    if w.duplicates_dropped + w.missing_filled > 0 {
        warnings.push(format!(
            "internal error: {} duplicate and {} missing records were fixed by the writer",
            w.duplicates_dropped, w.missing_filled
        ));
    }
}

#[cfg(test)]
mod lateness_tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_trace_with_arrival_times_warns_above_one_millisecond() {
        let wall = Duration::from_secs(100);
        let late = |p99| lateness_warning(Lateness { p99, burst: false }, wall);
        assert!(late(MS).is_none());
        assert!(late(MS + 1).unwrap().contains("fell behind"));
    }

    #[test]
    fn a_burst_warns_only_when_sending_it_is_over_one_percent_of_the_run() {
        // 200 ms to send 1,000 requests at once in a 100 s run: 0.2%, no distortion.
        let late =
            |p99, secs| lateness_warning(Lateness { p99, burst: true }, Duration::from_secs(secs));
        assert!(late(200 * MS, 100).is_none());
        assert!(late(1000 * MS, 100).is_none());
        let w = late(200 * MS, 10).unwrap();
        assert!(w.contains("2.0% of the run"), "{w}");
    }
}
