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

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::Notify;

/// Connects started, established and settled, and the gate. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub(crate) struct ConnCount(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
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
