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
//! Sessions (`crate::run::schedule`): a session's later turn is due when the previous turn
//! of its session has ended plus its think time, which only the request task of that
//! turn knows. The task sends a [`Release`] on a channel; while the dispatcher sleeps
//! toward its next deadline it blocks on that channel (with the same timeout it would
//! sleep), so a release wakes it at once, goes on a timer heap merged with the trace's
//! schedule, and is dispatched like any request (same sleep-then-spin, same hand-off
//! lead, same concurrency cap). A trace without sessions has no channel: the thread
//! sleeps exactly as before. With sessions the dispatcher runs until every later turn
//! was released and handed out (or written off as `not_sent`), not just to the end of
//! the trace's open-loop schedule.
//!
//! Where allowed (CAP_SYS_NICE or RLIMIT_RTPRIO) the thread runs SCHED_FIFO at the lowest
//! real-time level: it sleeps almost all the time and does little when awake (a spawn),
//! but its wake-ups are then not queued behind ordinary processes, which on a busy
//! machine is the difference between sub-microsecond and millisecond precision. Request
//! tasks run on the ordinary runtime threads, never at real-time priority, so a
//! co-located server is not starved. The summary reports the dispatcher's own lateness
//! (hand-off) apart from the runtime's task start delay.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio_util::task::TaskTracker;

use crate::run::prepared::{Prepared, Release};
use crate::run::request::Shared;
use crate::run::schedule::Schedule;
use crate::run::writer::WriterMsg;

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

/// Hands every request of `schedule` to the runtime at its time (open-loop requests at
/// their trace time, session turns as `inbox` releases them), writes off what is left
/// when the run stops or `duration_ns` ends, and reports.
pub(crate) fn run(
    mut schedule: Schedule,
    inbox: Option<Receiver<Release>>,
    shared: Arc<Shared>,
    handle: Handle,
    tracker: TaskTracker,
    duration_ns: Option<u64>,
) -> DispatchReport {
    crate::run::sys::precise_timers();
    let mut report = DispatchReport {
        realtime: crate::run::sys::realtime_thread(),
        ..DispatchReport::default()
    };
    let mut previous_ns = 0;
    while let Some(step) = next_step(&schedule, duration_ns) {
        let (until, lead) = match step {
            Step::Send(due) => {
                let lead = handoff_lead(due.saturating_sub(previous_ns));
                (Some(due.saturating_sub(lead)), lead)
            }
            Step::End(d) => (Some(d), 0),
            Step::Idle => (None, 0),
        };
        match wait(&shared, until, inbox.as_ref()) {
            Wake::Released(r) => schedule.release(r, |p| write_off(&shared, &mut report, p)),
            Wake::Reached if matches!(step, Step::Send(_)) => {
                let Some(mut p) = schedule.pop() else { break };
                p.lead_ns = lead;
                previous_ns = p.scheduled_ns;
                p.handoff_ns = shared.clock.now_ns();
                tracker.spawn_on(crate::run::request::run(shared.clone(), p), &handle);
                report.dispatched += 1;
            }
            wake => {
                // The end of `--duration` (requests already in flight run on), or a stop.
                report.by_duration = matches!(wake, Wake::Reached) && !shared.stop.is_cancelled();
                report.cut_short = true;
                shared.stop.cancel();
                schedule.drain(|p| write_off(&shared, &mut report, p));
                break;
            }
        }
    }
    report.cpu = crate::run::sys::cpu_time(true);
    report
}

/// What the dispatcher waits for next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The hand-off of the request due at this time.
    Send(u64),
    /// The end of `--duration`: nothing due before it.
    End(u64),
    /// Nothing due: only turns waiting for their predecessors (a release wakes it).
    Idle,
}

/// The next step, `None` once every request was handed out or written off.
fn next_step(schedule: &Schedule, duration_ns: Option<u64>) -> Option<Step> {
    match (schedule.next_due(), duration_ns) {
        (Some(due), Some(d)) if due >= d => Some(Step::End(d)),
        (Some(due), _) => Some(Step::Send(due)),
        (None, _) if schedule.is_done() => None,
        (None, Some(d)) => Some(Step::End(d)),
        (None, None) => Some(Step::Idle),
    }
}

/// A request that will not be sent: its `not_sent` record.
fn write_off(shared: &Shared, report: &mut DispatchReport, p: Prepared) {
    report.not_sent += 1;
    let _ = shared.tx.send(WriterMsg::Record {
        record: Box::new(p.not_sent()),
        lateness_ns: None,
    });
    shared
        .live
        .done
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// Why [`wait`] returned.
#[derive(Debug)]
enum Wake {
    /// The run clock reached the time waited for.
    Reached,
    Stopped,
    /// A request task released its session's next turn.
    Released(Release),
}

/// Waits until `until` on the run clock (forever when `None`), a stop, or a release on
/// `inbox` (only traces with sessions have one; without, the thread sleeps as it always
/// did). A release wakes the thread at once (the channel's blocking receive); it is
/// looked for during the sleep, never during the final spin nor once the time is
/// reached, so the schedule already known keeps its precision and a release that
/// comes in the last [`SPIN_NS`] before a hand-off is taken right after it.
fn wait(shared: &Shared, until: Option<u64>, inbox: Option<&Receiver<Release>>) -> Wake {
    let deadline: Option<Instant> = until.map(|ns| shared.clock.instant_at(ns));
    loop {
        if shared.stop.is_cancelled() {
            return Wake::Stopped;
        }
        let now = Instant::now();
        if deadline.is_some_and(|d| now >= d) {
            return Wake::Reached;
        }
        if let Some(r) = inbox.and_then(|rx| rx.try_recv().ok()) {
            return Wake::Released(r);
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(now),
            None => MAX_SLEEP + Duration::from_nanos(SPIN_NS),
        };
        if left > Duration::from_nanos(SPIN_NS) {
            let nap = (left - Duration::from_nanos(SPIN_NS)).min(MAX_SLEEP);
            match inbox.map(|rx| rx.recv_timeout(nap)) {
                Some(Ok(r)) => return Wake::Released(r),
                Some(Err(RecvTimeoutError::Timeout)) => {}
                Some(Err(RecvTimeoutError::Disconnected)) | None => std::thread::sleep(nap),
            }
        } else {
            let d = deadline.unwrap_or(now);
            while Instant::now() < d {
                std::hint::spin_loop();
            }
            return if shared.stop.is_cancelled() {
                Wake::Stopped
            } else {
                Wake::Reached
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn turn(id: u64, due: u64, session: u64, turn: u32) -> Prepared {
        let mut p = Prepared::for_tests(id, due);
        p.session_id = Some(session);
        p.turn = Some(turn);
        p.think_ns = (turn > 0).then_some(10);
        p
    }

    #[test]
    fn steps_merge_the_schedule_with_the_duration() {
        let mut s = Schedule::new(vec![turn(0, 0, 0, 0), turn(1, 5, 0, 1)]);
        assert_eq!(next_step(&s, None), Some(Step::Send(0)));
        assert_eq!(next_step(&s, Some(0)), Some(Step::End(0)));
        s.pop();
        // Turn 1 waits for its release: idle, or the end of the duration.
        assert_eq!(next_step(&s, None), Some(Step::Idle));
        assert_eq!(next_step(&s, Some(1_000)), Some(Step::End(1_000)));
        s.release(
            Release {
                slot: 0,
                ended_ns: Some(100),
            },
            |_| {},
        );
        assert_eq!(next_step(&s, Some(1_000)), Some(Step::Send(110)));
        assert_eq!(next_step(&s, Some(110)), Some(Step::End(110)));
        s.pop();
        assert_eq!(next_step(&s, None), None);
        assert_eq!(
            next_step(&s, Some(1_000)),
            None,
            "done: no wait for the end"
        );
    }
}
