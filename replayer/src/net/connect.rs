//! Request timing on the wire: when a request had to open a new connection, when that
//! connection was up, and when the request's bytes were handed to its connection.
//!
//! Why: a request that opens a connection carries the TCP handshake (and, in a burst,
//! the server's accept backlog) inside its time to first token. Recording these times
//! keeps connection setup visible instead of hidden in TTFT, and gives the analyzer a
//! second origin (`sent_ns`: what the server took) beside `dispatched_ns` (what a user
//! waits).
//!
//! How, since reqwest exposes neither event:
//! * [`ConnectLayer`], a tower layer over reqwest's connector service
//!   (`ClientBuilder::connector_layer`). hyper-util's pool calls the connector from
//!   within the request's own `send()` future when it has no idle connection (it races
//!   the pool checkout against a new connect). The request task runs `send()` inside
//!   [`timed`], which makes its [`Stamps`] reachable through a task-local; the layer's
//!   service picks them up when it is called and stamps the connect's start and end.
//!   Connects made outside any request (the warm-up, the simulator probe) are only
//!   counted ([`ConnCount`], which also holds the warm-up's connects at its gate).
//! * [`SentBody`], the request body: its first `poll_frame` stamps `sent`. hyper polls
//!   the body right after it has encoded the request head into the connection's write
//!   buffer, and writes head and body to the socket in that same step. Its size hint is
//!   exact, so the request still goes out with `Content-Length`, never chunked.
//!
//! Caveat (also in `formats/README.md`): hyper returns a connection to its idle pool
//! from a task of its own, woken when the previous response ended, some microseconds
//! after the request task saw that end. A request sent in that gap (the next request
//! on a freed concurrency slot, or back-to-back requests) finds the pool empty and
//! starts a connect; hyper then uses whichever is ready first, the connection coming
//! back or the new one, and keeps the other idle in the pool as a spare. Such a record
//! has `connect_start_ns` (and usually `connect_ns`) although it may have been sent on
//! the returned connection; when its `connect_ns` is later than its `sent_ns`, it
//! certainly was. The run's idle pool keeps such spares (`run.rs`), so the race fades
//! instead of recurring. And during the run, when a kept-alive response has just ended
//! (`conn_count.rs`'s spare guard), a connect first waits up to 2 ms for its request to
//! go out on the returning connection, and is not made at all if it does: the record
//! then has no connect stamps. A connect made after that wait has it inside
//! `connect_start_ns` .. `connect_ns`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Frame, SizeHint};
use tower_layer::Layer;
use tower_service::Service;

use crate::clock::RunClock;
use crate::net::conn_count::{ConnCount, SPARE_GRACE};
use crate::net::standby::{Standby, StandbyStored};

/// Not stamped yet (run-clock times are far below it).
const UNSET: u64 = u64::MAX;

tokio::task_local! {
    /// The stamps of the request whose `send()` is being polled on this task.
    pub(crate) static STAMPS: Arc<Stamps>;
}

/// One request's wire times, run-clock ns, each stamped at most once (the first time).
/// Shared between the request task, the connector layer and the request body, which
/// hyper polls on the connection's own task.
#[derive(Debug)]
pub(crate) struct Stamps {
    clock: RunClock,
    connect_start: AtomicU64,
    connected: AtomicU64,
    sent: AtomicU64,
    /// Times the HTTP stack resent the request on another connection because the
    /// pooled one closed before any byte of it was written (`resend.rs`).
    resends: AtomicU32,
    /// Woken when `sent` is stamped (a connect may be waiting to be spared).
    sent_now: tokio::sync::Notify,
}

impl Stamps {
    pub fn new(clock: RunClock) -> Arc<Self> {
        Arc::new(Stamps {
            clock,
            connect_start: AtomicU64::new(UNSET),
            connected: AtomicU64::new(UNSET),
            sent: AtomicU64::new(UNSET),
            resends: AtomicU32::new(0),
            sent_now: tokio::sync::Notify::new(),
        })
    }

    /// Stamps `cell` now unless it was stamped; whether this call stamped it.
    fn stamp(&self, cell: &AtomicU64) -> bool {
        let now = self.clock.now_ns();
        cell.compare_exchange(UNSET, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
    }

    fn read(cell: &AtomicU64) -> Option<u64> {
        Some(cell.load(Ordering::Relaxed)).filter(|&t| t != UNSET)
    }

    /// When the request started a new connection (it found no idle one).
    pub fn connect_start_ns(&self) -> Option<u64> {
        Self::read(&self.connect_start)
    }

    /// When that connection was established.
    pub fn connect_ns(&self) -> Option<u64> {
        Self::read(&self.connected)
    }

    /// When the request's bytes were handed to its connection.
    pub fn sent_ns(&self) -> Option<u64> {
        Self::read(&self.sent)
    }

    /// Whether the request's bytes go out within `grace` (or went already).
    async fn sent_within(&self, grace: std::time::Duration) -> bool {
        let notified = self.sent_now.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if self.sent_ns().is_some() {
            return true;
        }
        let _ = tokio::time::timeout(grace, notified).await;
        self.sent_ns().is_some()
    }

    fn stamp_sent(&self) {
        if self.stamp(&self.sent) {
            self.sent_now.notify_waiters();
        }
    }

    /// Counts one resend of the request on another connection.
    pub fn count_resend(&self) {
        self.resends.fetch_add(1, Ordering::Relaxed);
    }

    /// Resends of the request on another connection so far.
    pub fn resends(&self) -> u32 {
        self.resends.load(Ordering::Relaxed)
    }
}

/// Runs `send` (a request's `send()` future) with `stamps` reachable by the connector
/// layer, so a connection it opens is stamped on it.
pub(crate) async fn timed<F: Future>(stamps: Arc<Stamps>, send: F) -> F::Output {
    STAMPS.scope(stamps, send).await
}

/// The connector layer: stamps connects on the request that caused them, counts every
/// established connection, and hands out standby connections when a run keeps them
/// (`standby.rs`).
#[derive(Debug, Clone)]
pub(crate) struct ConnectLayer {
    count: ConnCount,
    standby: Arc<Standby>,
}

impl ConnectLayer {
    pub fn new(count: ConnCount, standby: Arc<Standby>) -> Self {
        ConnectLayer { count, standby }
    }
}

impl<S> Layer<S> for ConnectLayer {
    type Service = ConnectService<S>;

    fn layer(&self, inner: S) -> ConnectService<S> {
        ConnectService {
            inner,
            count: self.count.clone(),
            standby: self.standby.clone(),
        }
    }
}

/// [`ConnectLayer`]'s service around reqwest's connector.
#[derive(Debug, Clone)]
pub(crate) struct ConnectService<S> {
    inner: S,
    count: ConnCount,
    standby: Arc<Standby>,
}

type Connecting<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

/// A connect not made: its request went out on a connection that came back to the pool
/// meanwhile (only hyper's background task sees this error).
#[derive(Debug, thiserror::Error)]
#[error("connect not needed: the request went out on a returning connection")]
pub(crate) struct SpareNotNeeded;

impl<S, R> Service<R> for ConnectService<S>
where
    S: Service<R> + Clone + Send + 'static,
    R: Send + 'static,
    S::Future: Send + 'static,
    S::Response: hyper::rt::Read + Unpin + Send + 'static,
    S::Error: From<SpareNotNeeded> + From<StandbyStored> + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Connecting<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: R) -> Self::Future {
        if Standby::is_fill() {
            return self.fill_standby(dst);
        }
        if let Some(conn) = self.standby.take::<S::Response>() {
            return Box::pin(std::future::ready(Ok(conn)));
        }
        // Taken now, within the request's poll: the connect future itself may go on in
        // another task (hyper spawns it when an idle connection wins the race).
        let stamps = STAMPS.try_with(Arc::clone).ok();
        let stamped_start = stamps.as_ref().is_some_and(|s| s.stamp(&s.connect_start));
        let connect = self.count.start();
        // A request already written once (and resent by hyper) is never spared.
        let unsent = stamps.as_ref().is_some_and(|s| s.sent_ns().is_none());
        let wait_for_return = unsent && self.count.claim_returning();
        // The connector is called only once the wait is over.
        let mut inner = self.readied_inner();
        Box::pin(async move {
            if let Some(s) = stamps.as_ref().filter(|_| wait_for_return)
                && s.sent_within(SPARE_GRACE).await
            {
                if stamped_start {
                    s.connect_start.store(UNSET, Ordering::Relaxed);
                }
                return Err(SpareNotNeeded.into());
            }
            connect.pass_gate().await;
            let conn = inner.call(dst).await;
            if conn.is_ok() {
                connect.opened();
                if let Some(s) = stamps {
                    s.stamp(&s.connected);
                }
            }
            drop(connect);
            conn
        })
    }
}

impl<S> ConnectService<S> {
    /// The inner connector `poll_ready` readied, for a call made later in a future
    /// (tower's clone-and-swap: its clone takes its place).
    fn readied_inner(&mut self) -> S
    where
        S: Clone,
    {
        let clone = self.inner.clone();
        std::mem::replace(&mut self.inner, clone)
    }

    /// The standby keeper's connect: counted, kept on standby, and reported to hyper as
    /// an error so that the keeper's request is never sent.
    fn fill_standby<R>(&mut self, dst: R) -> Connecting<S::Response, S::Error>
    where
        S: Service<R> + Clone + Send + 'static,
        R: Send + 'static,
        S::Future: Send + 'static,
        S::Response: Send + 'static,
        S::Error: From<StandbyStored> + Send + 'static,
    {
        let connect = self.count.start();
        let mut inner = self.readied_inner();
        let standby = self.standby.clone();
        Box::pin(async move {
            connect.pass_gate().await;
            let conn = inner.call(dst).await?;
            connect.opened();
            standby.put(conn);
            drop(connect);
            Err(StandbyStored.into())
        })
    }
}

/// A request body of known bytes that stamps `sent` when hyper first takes it.
#[derive(Debug)]
pub(crate) struct SentBody {
    data: Option<Bytes>,
    stamps: Arc<Stamps>,
}

impl SentBody {
    pub fn new(data: Bytes, stamps: Arc<Stamps>) -> Self {
        SentBody {
            data: Some(data),
            stamps,
        }
    }
}

impl http_body::Body for SentBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.stamps.stamp_sent();
        let data = self.data.take().filter(|d| !d.is_empty());
        Poll::Ready(data.map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::{BackendKind, ReplayConfig};
    use crate::net::test_server::raw_server;

    fn client(count: &ConnCount) -> reqwest::Client {
        let config = ReplayConfig::new(BackendKind::Tgi, "http://x", "unused".into());
        crate::net::http::build_client(
            &config,
            &crate::net::tls::plain(),
            4,
            (count, &Arc::default()),
        )
        .unwrap()
    }

    /// Sends one POST the way request tasks do; returns its stamps.
    async fn post(client: &reqwest::Client, url: &str, body: &'static [u8]) -> Arc<Stamps> {
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        let body = reqwest::Body::wrap(SentBody::new(Bytes::from_static(body), stamps.clone()));
        let send = client.post(format!("{url}/generate")).body(body).send();
        let resp = timed(stamps.clone(), send).await.unwrap();
        assert_eq!(resp.bytes().await.unwrap(), "ok");
        stamps
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_new_connection_is_stamped_on_its_request_and_a_reused_one_is_not() {
        let (url, _seen, _) = raw_server(0).await;
        let count = ConnCount::default();
        let client = client(&count);
        // The pool is empty: the connector runs within the first request's send().
        let first = post(&client, &url, b"{\"a\":1}").await;
        let (start, up, sent) = (
            first
                .connect_start_ns()
                .expect("the first request opened a connection"),
            first.connect_ns().expect("and it was established"),
            first.sent_ns().expect("its bytes were handed over"),
        );
        assert!(start <= up && up <= sent, "{start} {up} {sent}");
        assert_eq!(count.opened(), 1);
        // Sequential requests on the kept-alive connection. Each answer is read to its
        // end, but hyper puts the connection back in the pool from another task a few
        // microseconds later, so a request sent at once may still start a connect (the
        // module's caveat; about 1 in 10 here). Most reuse the connection, and those
        // must carry no connect stamps.
        let mut reused = 0;
        for _ in 0..20 {
            let next = post(&client, &url, b"{\"b\":2}").await;
            assert!(next.sent_ns().is_some());
            if next.connect_start_ns().is_none() {
                assert_eq!(next.connect_ns(), None);
                reused += 1;
            }
        }
        assert!(reused > 0, "no request reused the kept-alive connection");
        assert!(
            count.opened() <= 21 - reused as u64,
            "{} connections",
            count.opened()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_in_flight_together_each_stamp_their_own_connection() {
        // No answer before all three requests are in: each holds its own connection.
        let (url, _seen, _) = raw_server(3).await;
        let count = ConnCount::default();
        let client = client(&count);
        let stamps: Vec<_> = (0..3)
            .map(|_| Stamps::new(RunClock::start_in(Duration::ZERO)))
            .collect();
        // Three sends at once: three connections, one per request.
        let sends = stamps.iter().map(|s| {
            let body = reqwest::Body::wrap(SentBody::new(Bytes::from_static(b"{}"), s.clone()));
            timed(
                s.clone(),
                client.post(format!("{url}/generate")).body(body).send(),
            )
        });
        let answers = futures_util::future::join_all(sends).await;
        assert!(answers.iter().all(|a| a.is_ok()));
        count.settled().await;
        assert_eq!(count.opened(), 3);
        for s in &stamps {
            let (up, sent) = (s.connect_ns().unwrap(), s.sent_ns().unwrap());
            assert!(s.connect_start_ns().unwrap() <= up && up <= sent);
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_body_goes_out_with_content_length_not_chunked() {
        let (url, mut seen, _) = raw_server(0).await;
        let client = client(&ConnCount::default());
        post(&client, &url, b"{\"prompt\":\"hello\"}").await;
        let raw = String::from_utf8(seen.recv().await.unwrap()).unwrap();
        let lower = raw.to_ascii_lowercase();
        assert!(lower.contains("\r\ncontent-length: 18\r\n"), "{raw}");
        assert!(!lower.contains("transfer-encoding"), "{raw}");
        assert!(raw.ends_with("\r\n\r\n{\"prompt\":\"hello\"}"), "{raw}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connects_outside_a_request_are_only_counted() {
        let (url, _seen, _) = raw_server(0).await;
        let count = ConnCount::default();
        let client = client(&count);
        let resp = client.get(format!("{url}/health")).send().await.unwrap();
        assert_eq!(resp.bytes().await.unwrap(), "ok");
        assert_eq!(count.opened(), 1);
    }

    /// Reads one request (head, then a Content-Length body) from a blocking socket.
    fn read_request(sock: &mut std::net::TcpStream) {
        use std::io::Read;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while !buf.ends_with(b"\r\n\r\n") {
            assert_eq!(sock.read(&mut byte).unwrap(), 1, "request cut");
            buf.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |v| v.trim().parse().unwrap());
        sock.read_exact(&mut vec![0; len]).unwrap();
    }

    /// What reqwest does when the server closed a kept-alive connection just before a
    /// request was sent on it (a keep-alive timeout racing the request), measured:
    /// hyper writes the request on the closed connection (its FIN already received),
    /// then reads the end: "connection closed before message completed", with the
    /// request's bytes written and no byte of answer. Neither hyper-util's own resend
    /// (only for requests a connection never took) nor the replayer resends it: the
    /// request was written, so the server may have seen it. Hence the pool idle
    /// timeout below servers' keep-alive timeouts, and the record's error naming the
    /// kept-alive connection (`request.rs`).
    #[test]
    fn a_request_written_on_a_connection_the_server_closed_fails_without_an_answer() {
        use std::io::Write;
        const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (close, closed) = (std::sync::mpsc::channel(), std::sync::mpsc::channel());
        let server = std::thread::spawn(move || {
            // Request A, answered and kept alive; the connection is closed when the
            // test says so, unread.
            let (mut c1, _) = listener.accept().unwrap();
            read_request(&mut c1);
            c1.write_all(OK).unwrap();
            close.1.recv().unwrap();
            drop(c1);
            closed.0.send(()).unwrap();
        });
        // One thread: while it blocks below, no connection task of the client runs, so
        // the closed connection still looks idle and usable to the pool.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let count = ConnCount::default();
            let client = client(&count);
            let a = post(&client, &url, b"{}").await;
            assert!(a.connect_start_ns().is_some());
            // Let hyper put the connection back in the pool (its own task).
            for _ in 0..8 {
                tokio::task::yield_now().await;
            }
            close.0.send(()).unwrap();
            // The server has closed it; its FIN is in the client's socket (loopback).
            closed.1.recv().unwrap();
            let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
            let body = SentBody::new(Bytes::from_static(b"{}"), stamps.clone());
            let send = client
                .post(format!("{url}/generate"))
                .body(reqwest::Body::wrap(body))
                .send();
            let err = timed(stamps.clone(), send).await.unwrap_err();
            let why = crate::net::transport_error::describe(&err);
            assert!(
                why.contains("connection closed before message completed"),
                "{why}"
            );
            assert!(stamps.sent_ns().is_some(), "the request was written");
            assert_eq!(
                stamps.connect_start_ns(),
                None,
                "on the kept-alive connection"
            );
            assert_eq!(count.opened(), 1, "and not sent again");
        });
        server.join().unwrap();
    }

    #[test]
    fn an_empty_body_is_stamped_and_ends_at_once() {
        use http_body::Body;
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        let mut body = SentBody::new(Bytes::new(), stamps.clone());
        assert_eq!(body.size_hint().exact(), Some(0));
        assert!(!body.is_end_stream(), "hyper must poll it once to stamp it");
        let waker = std::task::Waker::noop();
        let polled = Pin::new(&mut body).poll_frame(&mut Context::from_waker(waker));
        assert!(matches!(polled, Poll::Ready(None)));
        assert!(stamps.sent_ns().is_some() && body.is_end_stream());
    }

    /// A connector that counts the connects it makes (each succeeds at once).
    #[derive(Clone, Default)]
    struct CountingConnector(Arc<AtomicU32>);

    type BoxError = Box<dyn std::error::Error + Send + Sync>;

    /// The connections it makes: open, silent.
    #[derive(Debug)]
    struct Conn(u32);

    impl hyper::rt::Read for Conn {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: hyper::rt::ReadBufCursor<'_>,
        ) -> Poll<std::io::Result<()>> {
            Poll::Pending
        }
    }

    impl Service<()> for CountingConnector {
        type Response = Conn;
        type Error = BoxError;
        type Future = std::future::Ready<Result<Conn, BoxError>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, _: ()) -> Self::Future {
            let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
            std::future::ready(Ok(Conn(n)))
        }
    }

    /// Calls the layer's service as hyper does within a request's send(): with the
    /// request's stamps reachable.
    fn connect_for(
        count: &ConnCount,
        connector: &CountingConnector,
        stamps: &Arc<Stamps>,
    ) -> Connecting<Conn, BoxError> {
        connect_with_standby(count, connector, stamps, &Arc::default())
    }

    fn connect_with_standby(
        count: &ConnCount,
        connector: &CountingConnector,
        stamps: &Arc<Stamps>,
        standby: &Arc<Standby>,
    ) -> Connecting<Conn, BoxError> {
        let layer = ConnectLayer::new(count.clone(), standby.clone());
        let mut svc = layer.layer(connector.clone());
        STAMPS.sync_scope(stamps.clone(), || svc.call(()))
    }

    #[tokio::test]
    async fn a_request_takes_a_standby_connection_and_pays_no_connect() {
        let (count, connector) = (ConnCount::default(), CountingConnector::default());
        let standby = Arc::new(Standby::default());
        standby.switch(true, Duration::from_secs(4));
        // The keeper's connect: made, counted, kept, and failed towards hyper.
        let layer = ConnectLayer::new(count.clone(), standby.clone());
        let mut svc = layer.layer(connector.clone());
        // hyper calls the connector while polling the request's send().
        let err = crate::net::standby::filling(async { svc.call(()).await })
            .await
            .expect_err("the keeper's request is never sent");
        assert!(err.is::<StandbyStored>(), "{err}");
        assert_eq!(
            (count.opened(), connector.0.load(Ordering::Relaxed)),
            (1, 1)
        );
        // A request finding no idle connection gets it, with no connect of its own.
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        let conn = connect_with_standby(&count, &connector, &stamps, &standby)
            .await
            .unwrap();
        assert_eq!(conn.0, 1, "the standby, not a new connection");
        assert_eq!(connector.0.load(Ordering::Relaxed), 1);
        assert_eq!(
            (stamps.connect_start_ns(), stamps.connect_ns()),
            (None, None)
        );
        assert_eq!(standby.used(), 1);
        // None left: the next request connects itself, stamped.
        let next = Stamps::new(RunClock::start_in(Duration::ZERO));
        let conn = connect_with_standby(&count, &connector, &next, &standby)
            .await
            .unwrap();
        assert_eq!(conn.0, 2);
        assert!(next.connect_start_ns().is_some() && next.connect_ns().is_some());
    }

    #[tokio::test]
    async fn a_connect_is_not_made_when_its_request_goes_out_on_a_returning_connection() {
        let (count, connector) = (ConnCount::default(), CountingConnector::default());
        count.guard_spares(true);
        count.returning();
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        let connecting = connect_for(&count, &connector, &stamps);
        // The returning connection takes the request (hyper polls its body) while
        // the connect waits.
        let sent = {
            let stamps = stamps.clone();
            async move {
                tokio::task::yield_now().await;
                stamps.stamp_sent();
            }
        };
        let (conn, ()) = tokio::join!(connecting, sent);
        let err = conn.expect_err("the connect was spared");
        assert!(err.is::<SpareNotNeeded>(), "{err}");
        assert_eq!(connector.0.load(Ordering::Relaxed), 0, "no connect made");
        assert_eq!(count.opened(), 0);
        assert_eq!(
            stamps.connect_start_ns(),
            None,
            "the record shows no connect"
        );
    }

    #[tokio::test]
    async fn a_connect_waits_at_most_the_grace_when_no_connection_comes_back() {
        let (count, connector) = (ConnCount::default(), CountingConnector::default());
        count.guard_spares(true);
        count.returning();
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        connect_for(&count, &connector, &stamps)
            .await
            .expect("connected after the grace");
        assert_eq!(connector.0.load(Ordering::Relaxed), 1);
        let (start, up) = (
            stamps.connect_start_ns().unwrap(),
            stamps.connect_ns().unwrap(),
        );
        assert!(up - start >= SPARE_GRACE.as_nanos() as u64, "{start} {up}");
        // The returning connection was claimed: the next connect does not wait.
        let next = Stamps::new(RunClock::start_in(Duration::ZERO));
        connect_for(&count, &connector, &next).await.unwrap();
        assert_eq!(connector.0.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn without_a_returning_connection_a_connect_is_made_at_once() {
        let (count, connector) = (ConnCount::default(), CountingConnector::default());
        count.guard_spares(true);
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        connect_for(&count, &connector, &stamps).await.unwrap();
        assert_eq!(connector.0.load(Ordering::Relaxed), 1);
        assert_eq!(count.opened(), 1);
        // Nor for a request written once already (hyper resending it elsewhere), even
        // with a connection returning.
        count.returning();
        let resent = Stamps::new(RunClock::start_in(Duration::ZERO));
        resent.stamp_sent();
        connect_for(&count, &connector, &resent).await.unwrap();
        assert_eq!(connector.0.load(Ordering::Relaxed), 2);
    }
}
