//! The client's connects, counted where they are made (by the connector layer of
//! `connect.rs`): started, established, settled. And a gate that holds connects back,
//! which the warm-up needs to open exactly N connections.
//!
//! Why the gate: the warm-up sends N requests at once on an empty pool, so that each
//! starts a connect of its own. But the requests are first polled one after the other,
//! and on a loaded machine the first answers come back before the last requests are
//! polled (measured in a debug build on two busy cores: first polls spread over up to
//! 2 ms, answers 0.1 to 3 ms after a request's first poll); those last requests then
//! reuse a returned connection and fewer than N are opened (as few as 1 for 4). With the gate closed for N connects, no
//! connection exists until every request has started its connect, so none can be
//! reused, and exactly N are opened.
//!
//! And a guard against spare connects during the run ([`ConnCount::returning`]): hyper
//! returns a connection to its idle pool from a task of its own, woken when the
//! previous response ended, some microseconds after the request task saw that end. A
//! request that takes the freed concurrency slot in that gap finds the pool empty and
//! starts a connect; hyper sends it on whichever is ready first and keeps the other
//! connection as a spare. Against a real vLLM on two busy cores, 2 of 100 streamed
//! requests opened connections that way although every one had an idle connection
//! coming. So when a kept-alive response ended within [`RETURN_WINDOW`] and no other
//! connect has claimed it, a connect waits up to [`SPARE_GRACE`] for its request to go
//! out on the returning connection, and is not made if it does (`connect.rs`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// How recent a kept-alive response's end must be for a connect to wait for its
/// connection (the race above lasts microseconds; milliseconds on a loaded machine).
pub(crate) const RETURN_WINDOW: Duration = Duration::from_millis(5);

/// The longest a connect waits for a returning connection before it is made (its
/// request's `connect_start_ns` .. `connect_ns` then includes the wait).
pub(crate) const SPARE_GRACE: Duration = Duration::from_millis(2);

/// Connects started, established and settled, and the gate. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnCount(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    /// The spare guard is on (the run, after the warm-up, unless every request opens
    /// its own connection).
    guard: AtomicBool,
    /// Kept-alive responses ended and not yet claimed by a connect, and when the last
    /// ended (ns since `epoch`).
    returning: AtomicU64,
    last_end_ns: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
    started: AtomicU64,
    opened: AtomicU64,
    settled: AtomicU64,
    /// Connects wait until `started` reaches this; 0: open.
    gate: AtomicU64,
    /// Signalled when a connect settles or the gate opens.
    changed: Notify,
}

impl ConnCount {
    /// Connections established so far.
    pub fn opened(&self) -> u64 {
        self.0.opened.load(Ordering::Relaxed)
    }

    /// Connects started so far.
    pub fn started(&self) -> u64 {
        self.0.started.load(Ordering::Acquire)
    }

    /// Holds every connect back until `n` more have started (or [`Self::open_gate`]).
    pub fn close_gate_for(&self, n: u64) {
        let target = self.started() + n;
        self.0.gate.store(target, Ordering::Release);
    }

    /// Lets every held connect go.
    pub fn open_gate(&self) {
        self.0.gate.store(0, Ordering::Release);
        self.0.changed.notify_waiters();
    }

    /// Returns once every connect started so far has settled.
    pub async fn settled(&self) {
        self.wait_until(|c| c.settled.load(Ordering::Acquire) >= c.started.load(Ordering::Acquire))
            .await
    }

    /// Counts a connect as started (opening the gate if it was the last one held for).
    pub fn start(&self) -> Connect {
        let started = self.0.started.fetch_add(1, Ordering::AcqRel) + 1;
        let gate = self.0.gate.load(Ordering::Acquire);
        if gate != 0 && started >= gate {
            self.open_gate();
        }
        Connect(self.clone())
    }

    /// Turns the spare guard on or off (off by default).
    pub fn guard_spares(&self, on: bool) {
        self.0.guard.store(on, Ordering::Release);
        self.0.returning.store(0, Ordering::Release);
    }

    fn since_epoch_ns(&self) -> u64 {
        let epoch = self.0.epoch.get_or_init(Instant::now);
        epoch.elapsed().as_nanos() as u64
    }

    /// A response ended on a connection the server keeps: it is on its way back to the
    /// idle pool.
    pub fn returning(&self) {
        if self.0.guard.load(Ordering::Acquire) {
            self.0
                .last_end_ns
                .store(self.since_epoch_ns(), Ordering::Release);
            self.0.returning.fetch_add(1, Ordering::AcqRel);
        }
    }

    /// Whether a connect should first wait for a returning connection: the guard is on,
    /// a kept-alive response ended within [`RETURN_WINDOW`], and no other connect has
    /// claimed its connection (this one claims it).
    pub fn claim_returning(&self) -> bool {
        let c = &self.0;
        if !c.guard.load(Ordering::Acquire) {
            return false;
        }
        let age = self
            .since_epoch_ns()
            .saturating_sub(c.last_end_ns.load(Ordering::Acquire));
        if age > RETURN_WINDOW.as_nanos() as u64 {
            c.returning.store(0, Ordering::Release);
            return false;
        }
        c.returning
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }

    async fn wait_until(&self, done: impl Fn(&Counts) -> bool) {
        loop {
            let changed = self.0.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if done(&self.0) {
                return;
            }
            changed.await;
        }
    }
}

/// One connect in progress: settles when dropped (established, failed, or its future
/// dropped before it finished).
pub(crate) struct Connect(ConnCount);

impl Connect {
    /// Waits while the gate is closed.
    pub async fn pass_gate(&self) {
        self.0
            .wait_until(|c| {
                let gate = c.gate.load(Ordering::Acquire);
                gate == 0 || c.started.load(Ordering::Acquire) >= gate
            })
            .await
    }

    pub fn opened(&self) {
        (self.0).0.opened.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Connect {
    fn drop(&mut self) {
        let c = &(self.0).0;
        c.settled.fetch_add(1, Ordering::AcqRel);
        c.changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use super::*;

    fn poll<F: Future>(f: Pin<&mut F>) -> Poll<F::Output> {
        f.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[tokio::test]
    async fn the_gate_holds_connects_until_enough_have_started() {
        let count = ConnCount::default();
        count.close_gate_for(2);
        let first = count.start();
        let mut pass = std::pin::pin!(first.pass_gate());
        assert!(poll(pass.as_mut()).is_pending());
        let second = count.start();
        assert!(poll(pass.as_mut()).is_ready());
        second.pass_gate().await;
        // Open: later connects pass at once.
        count.start().pass_gate().await;
        assert_eq!((count.started(), count.opened()), (3, 0));
    }

    #[tokio::test]
    async fn settled_waits_for_every_started_connect() {
        let count = ConnCount::default();
        let a = count.start();
        let b = count.start();
        a.opened();
        drop(a);
        let mut settled = std::pin::pin!(count.settled());
        assert!(poll(settled.as_mut()).is_pending());
        drop(b); // a connect that failed or was dropped settles too
        assert!(poll(settled.as_mut()).is_ready());
        assert_eq!(count.opened(), 1);
    }

    #[test]
    fn a_connect_claims_a_returning_connection_only_when_the_guard_is_on_and_one_is_due() {
        let count = ConnCount::default();
        count.returning(); // guard off: not counted
        assert!(!count.claim_returning());
        count.guard_spares(true);
        assert!(!count.claim_returning(), "nothing ended yet");
        count.returning();
        count.returning();
        assert!(count.claim_returning());
        assert!(count.claim_returning());
        assert!(!count.claim_returning(), "two ended, two claimed");
        count.returning();
        count.guard_spares(false);
        assert!(!count.claim_returning());
    }

    #[test]
    fn an_end_older_than_the_window_is_not_waited_for() {
        let count = ConnCount::default();
        let second_ago = Instant::now().checked_sub(Duration::from_secs(1)).unwrap();
        count.0.epoch.set(second_ago).unwrap();
        count.guard_spares(true);
        count.returning();
        // As if the end were RETURN_WINDOW + 1 ms ago.
        let old = count
            .since_epoch_ns()
            .saturating_sub(RETURN_WINDOW.as_nanos() as u64 + 1_000_000);
        count.0.last_end_ns.store(old, Ordering::Release);
        assert!(!count.claim_returning());
        // And the stale count is gone: a fresh end is one, not two.
        count.returning();
        assert!(count.claim_returning());
        assert!(!count.claim_returning());
    }

    #[tokio::test]
    async fn opening_the_gate_by_hand_releases_held_connects() {
        let count = ConnCount::default();
        count.close_gate_for(5);
        let c = count.start();
        let mut pass = std::pin::pin!(c.pass_gate());
        assert!(poll(pass.as_mut()).is_pending());
        count.open_gate();
        assert!(poll(pass.as_mut()).is_ready());
    }
}
