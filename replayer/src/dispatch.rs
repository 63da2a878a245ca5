//! The dispatcher: one OS thread that sends every request at its absolute deadline.
//!
//! Deadlines are `scheduled_ns` after the run's single start instant, never relative to
//! the previous send, so timing errors cannot accumulate. A tokio timer has 1 ms
//! granularity and fires on a busy runtime whenever a worker gets to it; instead this
//! thread (with its timer slack set to 1 ns) sleeps coarsely until [`SPIN_NS`] before the
//! hand-off time and spins for the rest, then hands the request to the runtime as its own
//! task and goes straight on to the next one. The hand-off is a little ahead of the
//! deadline ([`handoff_lead`]): the task wakes a parked runtime worker, which takes tens
//! of microseconds, and then waits out the rest of the lead awake, so it starts on time. It never waits for a response, so a slow server
//! cannot slow the arrivals down (open loop). When it is behind schedule it sends at once,
//! in trace order, and the lateness (`dispatched_ns - scheduled_ns`) shows in the log and
//! in the summary. A burst (all deadlines 0) becomes a tight loop of task spawns: requests
//! go out as fast as the runtime opens connections.
//!
//! Where allowed (CAP_SYS_NICE or RLIMIT_RTPRIO) the thread runs SCHED_FIFO at the lowest
//! real-time level: it sleeps almost all the time and does little when awake (a spawn),
//! but its wake-ups are then not queued behind ordinary processes, which on a busy
//! machine is the difference between sub-microsecond and millisecond precision. Request
//! tasks run on the ordinary runtime threads, never at real-time priority, so a
//! co-located server is not starved. The summary reports the dispatcher's own lateness
//! (hand-off) apart from the runtime's task start delay.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

use crate::request::{Prepared, Shared};
use crate::writer::WriterMsg;

/// Spin (instead of sleeping) for the last stretch before a deadline. Sleeping with 1 ns
/// timer slack usually wakes within ~10-60 us on Linux; the spin absorbs that.
/// CPU cost: `SPIN_NS x rate` (10% of a core at 1,000 req/s).
pub const SPIN_NS: u64 = 100_000;
/// A request task is handed to the runtime up to this long before its deadline and waits
/// out the rest awake (`request::wait_for_deadline`): waking a parked runtime worker is
/// the largest part of dispatch lateness (the dispatcher itself is within a microsecond),
/// and the lead hides it.
pub const HANDOFF_LEAD_NS: u64 = 200_000;

/// The lead of one request: [`HANDOFF_LEAD_NS`], but at most a quarter of the gap since
/// the previous deadline. Waiting awake costs CPU (looks at the clock between the
/// worker's other tasks) for the whole lead, so this bounds it to a quarter of a core at
/// any rate; at high rates the workers are awake anyway and a short lead suffices.
pub(crate) fn handoff_lead(gap_ns: u64) -> u64 {
    HANDOFF_LEAD_NS.min(gap_ns / 4)
}

/// Longest single sleep, so a stop request is noticed promptly.
const MAX_SLEEP: Duration = Duration::from_millis(20);

#[derive(Debug, Default)]
pub(crate) struct DispatchReport {
    pub dispatched: u64,
    pub not_sent: u64,
    /// Dispatching ended early: stopped by the caller or by `--duration`.
    pub cut_short: bool,
    pub by_duration: bool,
    /// CPU time of the dispatcher thread (mostly spinning), excluded from the
    /// CPU-bound check.
    pub cpu: Duration,
    /// The thread got real-time scheduling (precise wake-ups even on a busy machine).
    pub realtime: bool,
}

pub(crate) fn run(
    prepared: Vec<Prepared>,
    shared: Arc<Shared>,
    handle: Handle,
    tracker: TaskTracker,
    duration_ns: Option<u64>,
) -> DispatchReport {
    crate::sys::precise_timers();
    let mut report = DispatchReport {
        realtime: crate::sys::realtime_thread(),
        ..DispatchReport::default()
    };
    let mut iter = prepared.into_iter();
    let mut previous_ns = 0;
    while let Some(mut p) = iter.next() {
        let cut = if duration_ns.is_some_and(|d| p.scheduled_ns >= d) {
            // Wait until the duration is over (requests already in flight run meanwhile),
            // unless stopped first.
            if let Some(d) = duration_ns {
                wait_until(&shared, d);
            }
            report.by_duration = !shared.stop.is_cancelled();
            true
        } else {
            p.lead_ns = handoff_lead(p.scheduled_ns.saturating_sub(previous_ns));
            !wait_until(&shared, p.scheduled_ns.saturating_sub(p.lead_ns))
        };
        previous_ns = p.scheduled_ns;
        if cut {
            report.cut_short = true;
            shared.stop.cancel();
            for q in std::iter::once(p).chain(iter.by_ref()) {
                report.not_sent += 1;
                let _ = shared.tx.send(WriterMsg::Record {
                    record: Box::new(q.not_sent()),
                    lateness_ns: None,
                });
                shared
                    .live
                    .done
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            break;
        }
        p.handoff_ns = shared.clock.now_ns();
        tracker.spawn_on(crate::request::run(shared.clone(), p), &handle);
        report.dispatched += 1;
    }
    report.cpu = crate::sys::cpu_time(true);
    report
}

/// Waits until `ns` on the run clock. `false` when a stop came first.
fn wait_until(shared: &Shared, ns: u64) -> bool {
    let deadline: Instant = shared.clock.instant_at(ns);
    loop {
        if shared.stop.is_cancelled() {
            return false;
        }
        let now = Instant::now();
        if now >= deadline {
            return true;
        }
        let left = deadline - now;
        if left > Duration::from_nanos(SPIN_NS) {
            std::thread::sleep((left - Duration::from_nanos(SPIN_NS)).min(MAX_SLEEP));
        } else {
            while Instant::now() < deadline {
                std::hint::spin_loop();
            }
            return !shared.stop.is_cancelled();
        }
    }
}
