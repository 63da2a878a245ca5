//! The real-time driver of the engine model: one OS thread owns the [`Core`], takes
//! requests over a channel, sleeps each step's duration and, when a step ends, sends each
//! token to its request's channel (the HTTP handler writes it to the client).
//!
//! Why a thread and not a tokio task: the tokio timer fires on 1 ms ticks. Sped up `K`
//! times ([`crate::Profile::sped_up`]) a 25 ms decode step lasts 25/K ms, 0.25 ms at
//! K = 100, so a task sleeping on that timer ran about four steps per tick back to back.
//! Their tokens left in clumps, up to 1 ms x K of profile time away from where they
//! belong, and a LightLLM stream, which keeps only the latest undelivered token, lost the
//! others: the demo's LightLLM runs counted most records "by contract after lost events",
//! an artifact of the timer, not of the modelled server. A thread sleeping with a 1 ns
//! timer slack wakes within tens of microseconds of its deadline; it costs one wake-up per
//! step and no spinning.
//!
//! Deadlines are chained while busy: a step starts when the previous one was due to end,
//! not when the thread woke, so wake-up latency never accumulates into drift. Only when
//! the thread is more than [`CATCH_UP`] behind (suspended, or starved of CPU) does it
//! start over from the present, and that time is lost to the run, as it would be to a
//! stalled GPU server.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::engine::clock::Clock;
use crate::engine::scheduler::{Core, Emit, EngineRequest, Step};
use crate::metrics::EngineGauges;

/// Furthest the engine may run behind its chained deadlines before it starts over.
pub const CATCH_UP: Duration = Duration::from_millis(5);

/// Messages from the engine to one request's handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineEvent {
    /// First admission (start of its first prefill step), ns on the server clock;
    /// `cached`: its prompt tokens found in the prefix cache then.
    Admitted { at_ns: u64, cached: u32 },
    /// Evicted, to be recomputed.
    Preempted,
    /// A token at the end of a step.
    Token { index: u32, last: bool, at_ns: u64 },
}

/// A request sent to the real-time engine (this module).
pub struct Submission {
    pub req: EngineRequest,
    /// Its prompt's block hashes, for the prefix cache (may be empty).
    pub hashes: Vec<u64>,
    pub events: mpsc::UnboundedSender<EngineEvent>,
}

/// What the engine thread receives.
pub enum EngineInput {
    Submit(Submission),
    /// Drop the prefix cache (see [`Core::reset_prefix_cache`]); the answer goes back
    /// on the channel.
    ResetPrefixCache {
        require_idle: bool,
        answer: tokio::sync::oneshot::Sender<Option<bool>>,
    },
    /// Stop now: every open token channel closes, so responses still streaming end.
    Stop,
}

/// The running engine thread.
pub struct EngineThread {
    tx: mpsc::UnboundedSender<EngineInput>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl EngineThread {
    /// Starts the thread. It runs until [`EngineThread::stop`], or until every sender of
    /// the channel is gone and nothing is left to run.
    pub fn spawn(
        core: Core,
        clock: Clock,
        gauges: Arc<EngineGauges>,
    ) -> std::io::Result<(EngineThread, mpsc::UnboundedSender<EngineInput>)> {
        let (tx, rx) = mpsc::unbounded_channel();
        let handle = std::thread::Builder::new()
            .name("llmib-sim-engine".into())
            .spawn(move || run(core, clock, rx, gauges))?;
        let thread = EngineThread {
            tx: tx.clone(),
            handle: Some(handle),
        };
        Ok((thread, tx))
    }

    /// Stops the thread and waits for it.
    pub async fn stop(mut self) {
        let _ = self.tx.send(EngineInput::Stop);
        if let Some(h) = self.handle.take() {
            let _ = tokio::task::spawn_blocking(move || h.join()).await;
        }
    }
}

impl Drop for EngineThread {
    fn drop(&mut self) {
        // Not joined: the thread ends at the message, promptly, on its own.
        let _ = self.tx.send(EngineInput::Stop);
    }
}

/// Token channels of the requests in the core, by key.
type Chans = HashMap<u64, mpsc::UnboundedSender<EngineEvent>>;

/// The thread's loop. The core's state is published into `gauges` (for `/metrics`)
/// whenever it changes: after new submissions, at a step's start (admissions,
/// preemptions) and at its end.
fn run(
    mut core: Core,
    clock: Clock,
    mut rx: mpsc::UnboundedReceiver<EngineInput>,
    gauges: Arc<EngineGauges>,
) {
    precise_sleeps();
    let mut chans = Chans::new();
    let mut emits = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        loop {
            match rx.try_recv() {
                Ok(EngineInput::Submit(sub)) => submit(&mut core, &mut chans, sub),
                Ok(EngineInput::ResetPrefixCache {
                    require_idle,
                    answer,
                }) => {
                    let _ = answer.send(core.reset_prefix_cache(require_idle));
                }
                Ok(EngineInput::Stop) => return,
                Err(mpsc::error::TryRecvError::Empty) => break,
                Err(mpsc::error::TryRecvError::Disconnected) if core.is_idle() => return,
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            }
        }
        let planned = core.plan();
        gauges.publish(&core);
        let Some(step) = planned else {
            // Idle: wait for the next request.
            deadline = None;
            match rx.blocking_recv() {
                Some(EngineInput::Submit(sub)) => submit(&mut core, &mut chans, sub),
                Some(EngineInput::ResetPrefixCache {
                    require_idle,
                    answer,
                }) => {
                    let _ = answer.send(core.reset_prefix_cache(require_idle));
                }
                Some(EngineInput::Stop) | None => return,
            }
            continue;
        };
        let start = step_start(deadline, Instant::now());
        announce(&clock, &chans, &step, start);
        let end = start + Duration::from_nanos(step.duration_ns);
        sleep_until(end);
        deadline = Some(end);
        let at_ns = clock.now_ns();
        emits.clear();
        core.finish_step(&mut emits);
        gauges.publish(&core);
        deliver(&mut core, &mut chans, &emits, at_ns);
    }
}

fn submit(core: &mut Core, chans: &mut Chans, sub: Submission) {
    chans.insert(sub.req.key, sub.events);
    core.submit_prefixed(sub.req, sub.hashes);
}

/// When a step planned at `now` starts: where the previous one was due to end, unless
/// that is more than [`CATCH_UP`] ago.
fn step_start(deadline: Option<Instant>, now: Instant) -> Instant {
    match deadline {
        Some(d) if now.saturating_duration_since(d) <= CATCH_UP => d.min(now),
        _ => now,
    }
}

/// Tells the step's newly admitted and preempted requests.
fn announce(clock: &Clock, chans: &Chans, step: &Step, start: Instant) {
    let start_ns = clock.ns_at(start);
    for &(key, cached) in &step.cached {
        if let Some(tx) = chans.get(&key) {
            let _ = tx.send(EngineEvent::Admitted {
                at_ns: start_ns,
                cached,
            });
        }
    }
    for key in &step.preempted {
        if let Some(tx) = chans.get(key) {
            let _ = tx.send(EngineEvent::Preempted);
        }
    }
}

/// Sends the step's tokens; frees the requests whose handler is gone (client
/// disconnected). Waiting ones are found when their channel is closed.
fn deliver(core: &mut Core, chans: &mut Chans, emits: &[Emit], at_ns: u64) {
    let mut gone = Vec::new();
    for e in emits {
        let ok = match chans.get(&e.key) {
            Some(tx) => tx
                .send(EngineEvent::Token {
                    index: e.index,
                    last: e.last,
                    at_ns,
                })
                .is_ok(),
            None => false,
        };
        if e.last {
            chans.remove(&e.key);
        } else if !ok {
            gone.push(e.key);
        }
    }
    chans.retain(|key, tx| {
        if tx.is_closed() {
            gone.push(*key);
            false
        } else {
            true
        }
    });
    for key in gone {
        chans.remove(&key);
        core.cancel(key);
    }
}

/// Sleeps until `t` (returns at once when it has passed).
fn sleep_until(t: Instant) {
    let now = Instant::now();
    if t > now {
        std::thread::sleep(t - now);
    }
}

/// Sets this thread's timer slack to 1 ns (Linux; 50 us by default), so a sleep ends
/// within the kernel's wake-up latency instead of up to 50 us late.
fn precise_sleeps() {
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_TIMERSLACK takes an integer argument.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_starts_at_the_chained_deadline_unless_too_far_behind() {
        let now = Instant::now();
        assert_eq!(step_start(None, now), now);
        let d = now - Duration::from_millis(2);
        assert_eq!(step_start(Some(d), now), d);
        let far = now - Duration::from_millis(6);
        assert_eq!(step_start(Some(far), now), now);
        // A deadline in the future (planned early) starts now.
        let ahead = now + Duration::from_millis(1);
        assert_eq!(step_start(Some(ahead), now), now);
    }
}
