//! Standby connections: connections opened ahead of the requests that will use them, for
//! servers that close every connection after a streamed answer.
//!
//! Why: llama.cpp's `llama-server` closes a kept-alive connection once a streamed answer
//! is written (its stream callback ends the exchange with an error, so cpp-httplib drops
//! the connection; proven on raw sockets in issue 21), so against it every streamed
//! request says `Connection: close` (`run/setup.rs`) and would open its own connection
//! inside its timings: the TCP (and TLS) handshake lands in `sent − dispatched` and in
//! TTFT. No client can keep such a connection alive; it can open the next one before the
//! next request needs it. [`keep`] holds up to [`TARGET`] connections ready; the
//! connector layer (`connect.rs`) hands one to a request that finds no idle connection in
//! the pool, and the keeper opens a replacement at once.
//!
//! How, since reqwest exposes no way to open a connection without a request: the keeper
//! sends a `GET` (the warm-up's probe URL) inside [`filling`]; the connector layer sees
//! the scope, opens the connection, puts it here and fails the `GET` with
//! [`StandbyStored`] (nothing is sent). When the pool holds an idle connection (the
//! warm-up's), hyper sends the `GET` on it instead: harmless, and it tells the keeper
//! that no standby is needed until the pool is empty.
//!
//! Limits: a standby holds one of the server's HTTP threads while it waits, and servers
//! close connections that stay silent (cpp-httplib after 5 s): a standby is kept at most
//! the pool's idle timeout (`--pool-idle-timeout`, 4 s by default) and checked for the
//! server's close before it is handed out. A request that takes one has no connect
//! stamps (it paid for no connect); the run summary counts them.

use std::any::Any;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use reqwest::header::HeaderMap;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

/// Connections kept ready. Each holds a server thread while it waits (llama-server has
/// `--parallel` + 2 of them by default); two cover a request arriving while the
/// replacement of the previous one is still connecting.
pub(crate) const TARGET: usize = 2;

/// After a failed fill (the server refused the connect), the keeper waits this long
/// before it tries again.
const RETRY_AFTER: Duration = Duration::from_millis(100);

tokio::task_local! {
    /// Set while the keeper's `GET` is polled: its connect is a standby's.
    static FILLING: ();
}

/// The connection was put on standby; the `GET` that asked for it is not sent (only
/// the keeper sees this error).
#[derive(Debug, thiserror::Error)]
#[error("connection opened on standby")]
pub(crate) struct StandbyStored;

/// The standby connections of a run, shared by the connector layer and the keeper. Off
/// unless [`keep`] runs.
#[derive(Debug, Default)]
pub(crate) struct Standby {
    on: AtomicBool,
    max_age_ns: AtomicU64,
    conns: Mutex<VecDeque<Ready>>,
    /// Requests that were handed a standby connection.
    used: AtomicU64,
    /// Signalled when a standby was taken or a request had to connect itself.
    wanted: Notify,
}

/// One standby connection (reqwest's connection type, which it does not name).
struct Ready {
    opened: Instant,
    conn: Box<dyn Any + Send>,
}

impl std::fmt::Debug for Ready {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ready")
            .field("opened", &self.opened)
            .finish()
    }
}

impl Standby {
    /// Whether standby connections are kept (by a running [`keep`]).
    pub fn is_on(&self) -> bool {
        self.on.load(Ordering::Acquire)
    }

    /// Requests that were sent on a standby connection so far.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether the connect being made is a standby's (called by the connector layer).
    pub fn is_fill() -> bool {
        FILLING.try_with(|_| ()).is_ok()
    }

    /// Keeps `conn` ready (dropped at once when standbys are off).
    pub fn put<C: Any + Send>(&self, conn: C) {
        if self.is_on() {
            let ready = Ready {
                opened: Instant::now(),
                conn: Box::new(conn),
            };
            self.lock().push_back(ready);
        }
    }

    /// A standby connection for a request that found no idle one: the oldest that is
    /// neither too old nor closed by the server. Either way the keeper is told.
    pub fn take<C: Any + Send + hyper::rt::Read + Unpin>(&self) -> Option<C> {
        if !self.is_on() {
            return None;
        }
        let max_age = Duration::from_nanos(self.max_age_ns.load(Ordering::Relaxed));
        let taken = loop {
            let Some(ready) = self.lock().pop_front() else {
                break None;
            };
            if ready.opened.elapsed() >= max_age {
                continue;
            }
            if let Ok(mut conn) = ready.conn.downcast::<C>()
                && still_open(&mut *conn)
            {
                break Some(*conn);
            }
        };
        if taken.is_some() {
            self.used.fetch_add(1, Ordering::Relaxed);
        }
        self.wanted.notify_one();
        taken
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Ready>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the connections older than the limit; how many are left.
    fn expire(&self) -> usize {
        let max_age = Duration::from_nanos(self.max_age_ns.load(Ordering::Relaxed));
        let mut conns = self.lock();
        conns.retain(|r| r.opened.elapsed() < max_age);
        conns.len()
    }

    pub(crate) fn switch(&self, on: bool, max_age: Duration) {
        self.max_age_ns
            .store(max_age.as_nanos() as u64, Ordering::Relaxed);
        self.on.store(on, Ordering::Release);
        if !on {
            self.lock().clear();
        }
    }
}

/// Whether a connection nobody has used yet is still open: a read that would wait says
/// so; an end of stream (the server closed it), unexpected bytes or an error say not.
fn still_open<C: hyper::rt::Read + Unpin>(conn: &mut C) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = hyper::rt::ReadBuf::new(&mut byte);
    let mut cx = Context::from_waker(Waker::noop());
    matches!(
        std::pin::Pin::new(conn).poll_read(&mut cx, buf.unfilled()),
        Poll::Pending
    )
}

/// The keeper of a run's standby connections; [`Keeper::stop`] ends it.
#[derive(Debug)]
pub(crate) struct Keeper {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
    standby: Arc<Standby>,
}

impl Keeper {
    /// Stops the keeper and closes the connections still on standby.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = self.task.await;
        self.standby.switch(false, Duration::ZERO);
    }
}

/// Starts keeping [`TARGET`] standby connections to the server of `url` (the warm-up's
/// probe), each at most `max_age` old, until [`Keeper::stop`].
pub(crate) fn keep(
    client: reqwest::Client,
    url: reqwest::Url,
    headers: HeaderMap,
    standby: Arc<Standby>,
    max_age: Duration,
) -> Keeper {
    standby.switch(true, max_age);
    let stop = CancellationToken::new();
    let task = tokio::spawn(keep_filled(
        client,
        url,
        headers,
        standby.clone(),
        max_age,
        stop.clone(),
    ));
    Keeper {
        stop,
        task,
        standby,
    }
}

/// The keeper's loop: fills up to [`TARGET`], then waits for a standby to be taken, a
/// request that had to connect itself, or the oldest standby to age out.
async fn keep_filled(
    client: reqwest::Client,
    url: reqwest::Url,
    mut headers: HeaderMap,
    standby: Arc<Standby>,
    max_age: Duration,
    stop: CancellationToken,
) {
    // The fill never reaches the server, but when hyper sends it on an idle pooled
    // connection that connection should stay open.
    headers.remove(reqwest::header::CONNECTION);
    let tick = (max_age / 4).max(Duration::from_millis(10));
    loop {
        let mut backoff = false;
        // At most TARGET fills a round, whatever the age limit.
        for _ in 0..TARGET {
            if standby.expire() >= TARGET {
                break;
            }
            match fill(&client, &url, &headers).await {
                Fill::Stored => {}
                Fill::PoolHadOne => break,
                Fill::Failed => {
                    backoff = true;
                    break;
                }
            }
        }
        let wait = if backoff { RETRY_AFTER } else { tick };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = standby.wanted.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// What one fill did.
#[derive(Debug, PartialEq, Eq)]
enum Fill {
    /// A connection was put on standby.
    Stored,
    /// hyper sent the `GET` on an idle pooled connection: none is needed yet.
    PoolHadOne,
    /// The connect failed.
    Failed,
}

/// Runs `send` (the keeper's request) so that the connector layer puts the connection it
/// opens on standby.
pub(crate) async fn filling<F: std::future::Future>(send: F) -> F::Output {
    FILLING.scope((), send).await
}

/// Sends the keeper's `GET` inside [`filling`] (see the module docs).
async fn fill(client: &reqwest::Client, url: &reqwest::Url, headers: &HeaderMap) -> Fill {
    let send = client.get(url.clone()).headers(headers.clone()).send();
    match filling(send).await {
        Ok(resp) => {
            // Read to its end so that the pooled connection goes back to the pool.
            let _ = crate::net::warm::drain_bounded(resp).await;
            Fill::PoolHadOne
        }
        Err(e) if is_stored(&e) => Fill::Stored,
        Err(_) => Fill::Failed,
    }
}

/// Whether `e` is the connector's [`StandbyStored`] (reqwest wraps it).
fn is_stored(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(err) = source {
        if err.is::<StandbyStored>() {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection that reads as `read` says.
    struct Fake {
        eof: bool,
    }

    impl hyper::rt::Read for Fake {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _cx: &mut Context<'_>,
            _buf: hyper::rt::ReadBufCursor<'_>,
        ) -> Poll<std::io::Result<()>> {
            if self.eof {
                Poll::Ready(Ok(())) // nothing filled: end of stream
            } else {
                Poll::Pending
            }
        }
    }

    fn on(max_age: Duration) -> Standby {
        let s = Standby::default();
        s.switch(true, max_age);
        s
    }

    #[test]
    fn an_open_standby_is_handed_out_once_and_counted() {
        let s = on(Duration::from_secs(4));
        s.put(Fake { eof: false });
        assert!(s.take::<Fake>().is_some());
        assert!(
            s.take::<Fake>().is_none(),
            "each standby serves one request"
        );
        assert_eq!(s.used(), 1);
    }

    #[test]
    fn a_standby_the_server_closed_or_too_old_is_dropped_not_handed_out() {
        let s = on(Duration::from_secs(4));
        s.put(Fake { eof: true });
        s.put(Fake { eof: false });
        // The closed one is skipped, the open one behind it served.
        assert!(s.take::<Fake>().is_some());
        assert_eq!((s.used(), s.expire()), (1, 0));
        let old = on(Duration::ZERO);
        old.put(Fake { eof: false });
        assert!(old.take::<Fake>().is_none());
        assert_eq!(old.used(), 0);
    }

    #[test]
    fn standbys_are_off_unless_kept_and_cleared_when_switched_off() {
        let s = Standby::default();
        s.put(Fake { eof: false });
        assert!(s.take::<Fake>().is_none(), "off: nothing kept");
        let s = on(Duration::from_secs(4));
        s.put(Fake { eof: false });
        s.switch(false, Duration::ZERO);
        assert_eq!(s.expire(), 0);
    }

    /// How reqwest and hyper wrap a connector's error.
    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Wrapped(#[source] Box<dyn std::error::Error + Send + Sync>);

    #[test]
    fn the_stored_marker_is_found_inside_the_client_error() {
        let outer = Wrapped(Box::new(Wrapped(Box::new(StandbyStored))));
        assert!(is_stored(&outer));
        let refused = Wrapped(Box::new(std::io::Error::other("refused")));
        assert!(!is_stored(&refused));
    }
}
