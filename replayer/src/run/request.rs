//! One request, from its dispatch to its log record.
//!
//! Each trace request runs as its own tokio task (true open loop: a slow response never
//! delays the next send). The task records its dispatch time the moment it starts (so
//! the scheduler's wake-up delay counts as lateness, as it should), waits for a
//! concurrency slot when there is a cap, sends, timestamps the response headers and
//! every body chunk with the run clock, feeds chunks to the framing parser and the
//! dialect's decoder, and sends exactly one [`LogRecord`] to the writer, whatever
//! happens: error status, broken stream, malformed data, timeout, interruption, even a
//! panic (a drop guard sends the record then).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use formats::{LogRecord, Outcome};
use reqwest::header::HeaderMap;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::clock::RunClock;
use crate::config::BackendKind;
use crate::decode::{StreamBody, parse_answer};
use crate::dialect::adapter::{Accum, ReqCtx, bounded};
use crate::net::connect::{SentBody, Stamps, timed};
use crate::net::transport_error::describe;
use crate::run::prepared::{Prepared, Release};
use crate::run::stats::LiveStats;
use crate::run::writer::{Lateness, WriterMsg};

/// Bound of one SSE line / NUL object (a streamed event). vLLM's legacy objects repeat
/// the prompt, so this must hold a long prompt; it is a bound, not an allocation.
pub const MAX_EVENT_BYTES: usize = 4 << 20;
/// Bound of a non-streamed answer body.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// Response headers recorded verbatim in `server_timing` when present.
pub const TIMING_HEADERS: &[&str] = &[
    "x-queue-time",
    "x-inference-time",
    "x-compute-time",
    "x-total-time",
    "x-validation-time",
    "x-time-per-token",
    "x-prompt-tokens",
    "x-generated-tokens",
    "x-compute-characters",
    "server-timing",
    // Rate limits and overload (429, 503): when to come back (never retried).
    "retry-after",
];

/// What all request tasks share.
pub(crate) struct Shared {
    pub client: reqwest::Client,
    /// The client's connects; told when a response's connection goes back to the pool.
    pub conns: crate::net::conn_count::ConnCount,
    pub url: reqwest::Url,
    pub headers: HeaderMap,
    pub backend: BackendKind,
    pub stream: bool,
    pub timeout: Option<Duration>,
    pub clock: RunClock,
    pub slots: Option<Arc<Semaphore>>,
    /// Stop dispatching: requests still waiting for a slot become `not_sent`.
    pub stop: CancellationToken,
    /// End of the grace period: in-flight requests become `cancelled`.
    pub abort: CancellationToken,
    pub tx: std::sync::mpsc::Sender<WriterMsg>,
    pub live: Arc<LiveStats>,
    /// To the dispatcher: a request's record is final, its session's next turn may go
    /// (`None` when the trace has no sessions).
    pub releases: Option<std::sync::mpsc::Sender<Release>>,
}

/// Sends a record if the task ends without having sent one (panic, dropped task).
struct Guard<'a> {
    shared: &'a Shared,
    prep: &'a Prepared,
    armed: bool,
    dispatched_ns: Option<u64>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let mut rec = self.prep.not_sent();
        if self.dispatched_ns.is_some() {
            rec.dispatched_ns = self.dispatched_ns;
            rec.end_ns = Some(self.shared.clock.now_ns());
            rec.outcome = Outcome::Cancelled;
        }
        rec.error = Some(if std::thread::panicking() {
            "internal error: the request task panicked".into()
        } else {
            "request task dropped (runtime shut down)".into()
        });
        release_next(self.shared, self.prep, &rec);
        let _ = self.shared.tx.send(WriterMsg::Record {
            record: Box::new(rec),
            lateness_ns: None,
        });
        self.shared
            .live
            .in_flight
            .fetch_sub(u64::from(self.dispatched_ns.is_some()), Ordering::Relaxed);
    }
}

/// Runs one request to its record.
pub(crate) async fn run(shared: Arc<Shared>, prep: Prepared) {
    let start_ns = wait_for_deadline(&shared, prep.scheduled_ns).await;
    let lateness_ns = Lateness {
        handoff_ns: prep
            .handoff_ns
            .saturating_sub(prep.scheduled_ns.saturating_sub(prep.lead_ns)),
        start_ns: start_ns.saturating_sub(prep.scheduled_ns),
    };
    shared.live.record_lateness(lateness_ns.start_ns);
    let mut guard = Guard {
        shared: &shared,
        prep: &prep,
        armed: true,
        dispatched_ns: None,
    };
    let Some(_permit) = wait_for_slot(&shared).await else {
        guard.armed = false;
        let mut rec = prep.not_sent();
        rec.error = Some("stopped while waiting for a concurrency slot".into());
        release_next(&shared, &prep, &rec);
        send(&shared, rec, Some(lateness_ns));
        return;
    };

    let dispatched_ns = shared.clock.now_ns();
    guard.dispatched_ns = Some(dispatched_ns);
    shared.live.sent.fetch_add(1, Ordering::Relaxed);
    shared.live.in_flight.fetch_add(1, Ordering::Relaxed);

    let ctx = ReqCtx {
        max_tokens: prep.contract_tokens,
        prompt_bytes: prep.prompt_bytes,
        ignore_eos_sent: prep.ignore_eos_sent,
    };
    let mut st = State::new(&shared, &ctx, Stamps::new(shared.clock));
    let deadline = shared
        .timeout
        .map(|t| tokio::time::Instant::now() + t)
        .unwrap_or_else(far_future);
    let ended = tokio::select! {
        biased;
        _ = shared.abort.cancelled() => End::Cancelled,
        _ = tokio::time::sleep_until(deadline) => End::Timeout,
        e = drive(&shared, &prep, &ctx, &mut st) => e,
    };
    let ended = never_sent_timeout(ended, &mut st);
    let end_ns = shared.clock.now_ns();
    let rest = st.rest.take();
    let kept = st.keeps_connection && matches!(ended, End::Body | End::Status);
    let rec = st.into_record(&prep, &ctx, dispatched_ns, end_ns, ended);
    count_done(&shared.live, &rec);
    guard.armed = false;
    release_next(&shared, &prep, &rec);
    send(&shared, rec, Some(lateness_ns));
    // The record is final; read the body's own end so the connection is kept (see
    // `crate::net::drain`), still holding the concurrency slot, so that the next request
    // finds the connection idle.
    let drained = match rest {
        Some(resp) => crate::net::drain::drain(resp, &shared.abort).await,
        None => crate::net::drain::Drained::Clean,
    };
    if kept && drained == crate::net::drain::Drained::Clean {
        shared.conns.returning();
    }
    if shared.slots.is_some() {
        // hyper returns the connection to the pool from a task of its own, woken when
        // the body ended; let it run before the slot goes to the next request, which
        // would otherwise find no idle connection and open a new one (measured: 40% of
        // the requests of a 1,000-stream run opened connections that way).
        tokio::task::yield_now().await;
    }
}

/// Tells the dispatcher that the next turn of `prep`'s session (if any) may go: due its
/// think time after this request's end, whatever its outcome, or never when this one was
/// not sent. Sent before the record, so the dispatcher wakes as early as it can.
fn release_next(shared: &Shared, prep: &Prepared, rec: &LogRecord) {
    if let (Some(slot), Some(tx)) = (prep.next_turn, &shared.releases) {
        let ended_ns = (rec.outcome != Outcome::NotSent)
            .then(|| rec.end_ns.unwrap_or_else(|| shared.clock.now_ns()));
        // The dispatcher outlives the release of every turn it still holds; after it
        // stopped, the turn is already written off and the message is moot.
        let _ = tx.send(Release { slot, ended_ns });
    }
}

/// The dispatcher hands a request over up to [`crate::run::dispatch::HANDOFF_LEAD_NS`] before
/// its deadline, so that the worker thread's wake-up (tens to hundreds of microseconds on
/// a VM) is over by then; the task waits out the rest awake, yielding to the other tasks
/// of its worker between looks at the clock (never blocking them). Returns the run-clock
/// time it went on at: the request's start, from which lateness is measured.
async fn wait_for_deadline(shared: &Shared, scheduled_ns: u64) -> u64 {
    loop {
        let now = shared.clock.now_ns();
        if now >= scheduled_ns {
            return now;
        }
        tokio::task::yield_now().await;
    }
}

/// Waits for a concurrency slot when there is a cap, in trace order (tokio's semaphore
/// is fair). `None` when the run stopped first; `Some(None)` when there is no cap.
async fn wait_for_slot(shared: &Shared) -> Option<Option<OwnedSemaphorePermit>> {
    let Some(sem) = &shared.slots else {
        return Some(None);
    };
    tokio::select! {
        biased;
        _ = shared.stop.cancelled() => None,
        p = sem.clone().acquire_owned() => p.ok().map(Some),
    }
}

/// Updates the live counters for a request that was sent and has its record.
fn count_done(live: &LiveStats, rec: &LogRecord) {
    live.tokens
        .fetch_add(rec.output_tokens.unwrap_or(0) as u64, Ordering::Relaxed);
    if rec.outcome != Outcome::Ok {
        live.errors.fetch_add(1, Ordering::Relaxed);
    }
    live.in_flight.fetch_sub(1, Ordering::Relaxed);
}

fn far_future() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(86400 * 365)
}

fn send(shared: &Shared, record: LogRecord, lateness_ns: Option<Lateness>) {
    shared.live.done.fetch_add(1, Ordering::Relaxed);
    // The writer outlives every task; a send error means it failed, which the run reports.
    let _ = shared.tx.send(WriterMsg::Record {
        record: Box::new(record),
        lateness_ns,
    });
}

/// How the request future ended.
enum End {
    /// The body was read to its end (or an end marker).
    Body,
    /// The server answered an error status.
    Status,
    ConnectFailed,
    /// The connection broke (before or during the response).
    Broken,
    Timeout,
    Cancelled,
}

struct State {
    first_byte_ns: Option<u64>,
    status: Option<u16>,
    error: Option<String>,
    acc: Accum,
    /// The streamed body's decoder (`None` for non-streamed requests).
    body: Option<StreamBody>,
    server_timing: BTreeMap<String, String>,
    /// Connection and send times, stamped on the wire (see [`crate::net::connect`]).
    stamps: Arc<Stamps>,
    /// A streamed response whose end marker came before the body's end: read after
    /// the record (see [`crate::net::drain`]).
    rest: Option<reqwest::Response>,
    /// The response was HTTP/1.1 without `Connection: close`: once read to its end,
    /// its connection goes back to the pool.
    keeps_connection: bool,
}

impl State {
    fn new(shared: &Shared, ctx: &ReqCtx, stamps: Arc<Stamps>) -> Self {
        let body = shared
            .stream
            .then(|| StreamBody::new(shared.backend, ctx, MAX_EVENT_BYTES));
        State {
            first_byte_ns: None,
            status: None,
            error: None,
            acc: Accum::with_capacity(ctx.max_tokens as usize + 1),
            body,
            server_timing: BTreeMap::new(),
            stamps,
            rest: None,
            keeps_connection: false,
        }
    }

    /// Feeds one body chunk received at `t_ns`; `false` to stop reading.
    fn feed(&mut self, chunk: &[u8], t_ns: u64) -> bool {
        match self.body.as_mut() {
            Some(body) => body.feed(chunk, t_ns, &mut self.acc),
            None => false,
        }
    }

    /// The response is over at `t_ns` (`eof`: the body ended cleanly, so a pending
    /// unterminated event is flushed first); settles counts.
    fn finish_stream(&mut self, t_ns: u64, eof: bool, ctx: &ReqCtx) {
        self.finish_inner(t_ns, eof, eof, ctx)
    }

    fn finish_inner(&mut self, t_ns: u64, flush: bool, eof: bool, ctx: &ReqCtx) {
        if let Some(body) = self.body.as_mut() {
            body.finish(&mut self.acc, t_ns, flush, eof, ctx);
        }
    }

    /// Keeps the response headers listed in [`TIMING_HEADERS`], verbatim but bounded.
    fn record_timing_headers(&mut self, headers: &HeaderMap) {
        for name in TIMING_HEADERS {
            if let Some(v) = headers.get(*name) {
                self.server_timing.insert(
                    (*name).to_string(),
                    bounded(&String::from_utf8_lossy(v.as_bytes())),
                );
            }
        }
    }

    fn into_record(
        mut self,
        prep: &Prepared,
        ctx: &ReqCtx,
        dispatched_ns: u64,
        end_ns: u64,
        end: End,
    ) -> LogRecord {
        // Partial streams keep their events and counts.
        if self.body.as_ref().is_some_and(|b| !b.is_finished()) {
            self.finish_stream(end_ns, false, ctx);
        }
        let (outcome, error) = outcome(end, &mut self.acc, &mut self.error);
        let acc = &mut self.acc;
        let output_tokens = if acc.method.is_some() {
            acc.output_tokens
        } else {
            None
        };
        let reasoning = acc.reasoning.fields(&acc.events, output_tokens.is_some());
        let tools = acc.tools.fields(&acc.events);
        LogRecord {
            id: prep.id,
            scheduled_ns: prep.scheduled_ns,
            dispatched_ns: Some(dispatched_ns),
            connect_start_ns: self.stamps.connect_start_ns(),
            connect_ns: self.stamps.connect_ns(),
            sent_ns: self.stamps.sent_ns(),
            resends: self.stamps.resends(),
            first_byte_ns: self.first_byte_ns,
            events: std::mem::take(&mut acc.events),
            end_ns: Some(end_ns),
            outcome,
            http_status: self.status,
            error,
            prompt_tokens: prep.prompt_tokens,
            max_tokens: prep.max_tokens,
            output_tokens,
            server_output_tokens: acc.server_output_tokens,
            server_prompt_tokens: acc.server_prompt_tokens,
            server_cached_tokens: acc.server_cached_tokens,
            first_reasoning_ns: reasoning.first_reasoning_ns,
            first_answer_ns: reasoning.first_answer_ns,
            reasoning_tokens: reasoning.reasoning_tokens,
            server_reasoning_tokens: reasoning.server_reasoning_tokens,
            tool_calls: tools.tool_calls,
            tool_calls_valid: tools.tool_calls_valid,
            first_tool_ns: tools.first_tool_ns,
            tool_tokens: tools.tool_tokens,
            token_count_method: acc.method.map(str::to_string),
            count_flags: count_flags(acc, prep),
            finish_reason: acc.finish_reason.take(),
            warmup: prep.warmup,
            server_timing: std::mem::take(&mut self.server_timing),
            session_id: prep.session_id,
            turn: prep.turn,
        }
    }
}

/// The record's `count_flags`: the decoder's, and whether an assumed count was capped
/// by the server's known limit.
fn count_flags(acc: &Accum, prep: &Prepared) -> Vec<String> {
    let mut flags: Vec<String> = acc.flags.iter().map(|f| f.to_string()).collect();
    if prep.contract_tokens < prep.max_tokens && acc.method == Some("assumed_max_tokens") {
        flags.push("capped_at_max_model_len".into());
    }
    flags
}

/// The record's outcome and error text, from how the request ended and what the
/// response said (`acc`) or the transport reported (`error`).
/// A timeout that expired before any byte of the request was written (`sent_ns` unset:
/// the HTTP client still held it, waiting for a connection) is a request that could not
/// be sent, a `connect_error` like the others, never the server's slowness.
fn never_sent_timeout(end: End, st: &mut State) -> End {
    if !matches!(end, End::Timeout) || st.stamps.sent_ns().is_some() {
        return end;
    }
    st.error = Some(
        "per-request timeout expired before any byte of the request was written \
         (never sent: no connection took it)"
            .into(),
    );
    End::ConnectFailed
}

fn outcome(end: End, acc: &mut Accum, error: &mut Option<String>) -> (Outcome, Option<String>) {
    match end {
        End::Cancelled => (
            Outcome::Cancelled,
            Some("cancelled (run interrupted)".into()),
        ),
        End::Timeout => (Outcome::Timeout, Some("per-request timeout expired".into())),
        End::ConnectFailed => (Outcome::ConnectError, error.take()),
        End::Status => (Outcome::HttpError, error.take()),
        End::Broken => (
            Outcome::StreamError,
            acc.protocol_error.take().or(error.take()),
        ),
        End::Body => {
            if let Some(e) = acc.protocol_error.take() {
                (Outcome::StreamError, Some(e))
            } else if let Some(e) = acc.server_error.take() {
                (Outcome::HttpError, Some(e))
            } else if !acc.complete {
                (
                    Outcome::StreamError,
                    Some("response ended before its final event".into()),
                )
            } else {
                (Outcome::Ok, None)
            }
        }
    }
}

/// Sends the request and reads its response into `st`. The body and the send are
/// wrapped so that `st.stamps` get the request's connection and send times.
async fn drive(shared: &Shared, prep: &Prepared, ctx: &ReqCtx, st: &mut State) -> End {
    let body = SentBody::new(prep.body.clone(), st.stamps.clone());
    let request = shared
        .client
        .post(shared.url.clone())
        .headers(shared.headers.clone())
        .header("x-request-id", prep.id)
        .body(reqwest::Body::wrap(body));
    let mut resp = match timed(st.stamps.clone(), request.send()).await {
        Ok(r) => r,
        Err(e) => return send_failed(&e, st),
    };
    st.first_byte_ns = Some(shared.clock.now_ns());
    let status = resp.status();
    st.status = Some(status.as_u16());
    st.record_timing_headers(resp.headers());
    st.keeps_connection = crate::net::warm::keeps_alive(&resp);
    if !status.is_success() {
        st.error = Some(crate::net::error_body::describe_error_answer(&mut resp).await);
        return End::Status;
    }
    if shared.stream {
        let (end, marker) = read_stream(shared, &mut resp, ctx, st).await;
        if marker {
            st.rest = Some(resp);
        }
        end
    } else {
        read_answer(shared, &mut resp, ctx, st).await
    }
}

/// A request whose `send()` failed, before any response header. Never resent here: a
/// request that was written may have reached the server, and hyper-util (under
/// reqwest) already resends by itself, on another connection, a request that a
/// kept-alive connection closed before taking it (no byte written). The usual race,
/// a server closing an idle connection as the request goes out, goes the other way
/// (measured in `connect.rs`'s tests): hyper writes the request, then reads the end.
/// * Not handed to any connection (`sent_ns` unset: no byte written): the request
///   could not be sent, a `connect_error` (a refused or failed connect, a TLS failure,
///   a new connection closed before it took the request), never the server's answer.
/// * Written on a kept-alive connection that then closed without a byte of answer:
///   a `stream_error` whose text says the connection was reused, since a server closing
///   idle connections (its keep-alive timeout) is the usual cause.
fn send_failed(e: &reqwest::Error, st: &mut State) -> End {
    let why = describe(e);
    if e.is_connect() || st.stamps.sent_ns().is_none() {
        st.error = Some(why);
        return End::ConnectFailed;
    }
    st.error = Some(if sent_on_a_kept_alive_connection(&st.stamps) {
        bounded(&format!(
            "kept-alive connection closed before any answer (the server may have closed \
             it as idle: see --pool-idle-timeout): {why}"
        ))
    } else {
        why
    });
    End::Broken
}

/// Whether the request went out on a connection of the pool: it opened none, or the one
/// it started finished connecting only after the request was written (hyper sent it on
/// a connection that came back to the pool meanwhile; see the replayer README's
/// Connections).
fn sent_on_a_kept_alive_connection(stamps: &Stamps) -> bool {
    match (stamps.connect_ns(), stamps.sent_ns()) {
        (Some(connected), Some(sent)) => connected > sent,
        (None, Some(_)) => true,
        _ => stamps.connect_start_ns().is_none(),
    }
}

/// Reads a whole non-streamed answer (at most [`MAX_BODY_BYTES`]) and decodes it.
async fn read_answer(
    shared: &Shared,
    resp: &mut reqwest::Response,
    ctx: &ReqCtx,
    st: &mut State,
) -> End {
    let mut body: Vec<u8> = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(c)) => {
                if body.len() + c.len() > MAX_BODY_BYTES {
                    st.acc
                        .fail_protocol(format_args!("answer larger than {MAX_BODY_BYTES} bytes"));
                    return End::Broken;
                }
                body.extend_from_slice(&c);
            }
            Ok(None) => break,
            Err(e) => {
                st.error = Some(describe(&e));
                return End::Broken;
            }
        }
    }
    let t = shared.clock.now_ns();
    parse_answer(shared.backend, &body, t, ctx, &mut st.acc);
    End::Body
}

/// Reads a streamed body chunk by chunk, each timestamped as it arrives and decoded at
/// once (the per-event path). The flag is set when the answer ended at an end marker
/// (or a server error event) before the body's own end: the rest is still to be read.
async fn read_stream(
    shared: &Shared,
    resp: &mut reqwest::Response,
    ctx: &ReqCtx,
    st: &mut State,
) -> (End, bool) {
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                let t = shared.clock.now_ns();
                if !st.feed(&chunk, t) {
                    if st.acc.protocol_error.is_some() {
                        st.finish_stream(t, false, ctx);
                        return (End::Broken, false);
                    }
                    // End marker or server error event: the answer is over.
                    st.finish_inner(t, false, true, ctx);
                    return (End::Body, true);
                }
            }
            Ok(None) => {
                let t = shared.clock.now_ns();
                st.finish_stream(t, true, ctx);
                return (End::Body, false);
            }
            Err(e) => {
                st.error = Some(describe(&e));
                let t = shared.clock.now_ns();
                st.finish_stream(t, false, ctx);
                return (End::Broken, false);
            }
        }
    }
}
