//! What the four dialects share: server state, the life of one request (truth record,
//! fault, output length, token source), streaming and collecting tokens.
//!
//! A dialect handler parses and validates its request format, then calls
//! [`AppState::plan`] (output length, fault) and [`Job::start`] (submission to the engine,
//! or the null source), and either streams the tokens through a [`Framer`] (its event
//! bytes) with [`stream_body`], or awaits them all with [`Job::collect`]. The truth record
//! travels with the request in a [`Ctx`], which writes it when the request's life ends,
//! including when the client goes away (the response future or body is dropped).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::{Bytes, BytesMut};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::engine::{Clock, Core, EngineEvent, EngineRequest, Submission};
use crate::faults::{Fault, Faults, mix};
use crate::realtime::EngineInput;
use crate::truth::{Msg, Outcome, TruthRecord};
use crate::{Dialect, Profile, SimConfig};

pub(crate) struct EngineHandle {
    pub tx: mpsc::UnboundedSender<EngineInput>,
    /// A core with the same parameters, used only for `fits` checks.
    pub fits: Core,
}

pub(crate) struct AppState {
    pub dialect: Dialect,
    pub profile: Profile,
    /// Reasoning-model behaviour (OpenAI chat).
    pub reasoning: Option<crate::Reasoning>,
    pub clock: Clock,
    engine: Option<EngineHandle>,
    truth: Option<std::sync::Mutex<std::sync::mpsc::Sender<Msg>>>,
    faults: Faults,
    seed: u64,
    next_seq: AtomicU64,
    null_interval: Duration,
    null_first: Duration,
    /// SSE keep-alive interval of the dialects that send them.
    pub keep_alive: Duration,
    /// What ends each streamed vLLM object.
    pub vllm_separator: crate::VllmSeparator,
    /// See [`SimConfig::stream_end_gap`].
    stream_end_gap: Duration,
    /// What `GET /metrics` shows.
    pub metrics: crate::metrics::ServerMetrics,
}

impl AppState {
    pub(crate) fn new(
        config: &SimConfig,
        clock: Clock,
        engine: Option<EngineHandle>,
        truth: Option<std::sync::mpsc::Sender<Msg>>,
        gauges: Arc<crate::metrics::EngineGauges>,
    ) -> AppState {
        let null_interval = Duration::from_micros(
            config
                .profile
                .null
                .as_ref()
                .map(|n| n.inter_token_us)
                .unwrap_or(0),
        );
        let null_first = config
            .profile
            .null
            .as_ref()
            .and_then(|n| n.first_token_us)
            .map_or(null_interval, Duration::from_micros);
        AppState {
            dialect: config.dialect,
            profile: config.profile.clone(),
            reasoning: config.reasoning,
            clock,
            engine,
            truth: truth.map(std::sync::Mutex::new),
            faults: config.faults.clone(),
            seed: config.seed,
            next_seq: AtomicU64::new(0),
            null_interval,
            null_first,
            keep_alive: config.keep_alive,
            vllm_separator: config.vllm_separator,
            stream_end_gap: config.stream_end_gap,
            metrics: server_metrics(config, gauges),
        }
    }

    /// Asks the engine to drop its prefix cache (see `cache_admin.rs`): `Some(false)`
    /// when it refused (requests hold cached blocks; with `require_idle`, any request is
    /// in the engine); `None` when there is no engine or it has no prefix cache.
    pub(crate) async fn reset_prefix_cache(&self, require_idle: bool) -> Option<bool> {
        let engine = self.engine.as_ref()?;
        let (answer, rx) = tokio::sync::oneshot::channel();
        engine
            .tx
            .send(EngineInput::ResetPrefixCache {
                require_idle,
                answer,
            })
            .ok()?;
        rx.await.ok()?
    }

    /// A deterministic draw for request `seq` (seeded like the faults), for `purpose`.
    pub(crate) fn draw(&self, seq: u64, purpose: u64) -> u64 {
        mix(self.seed, seq, purpose)
    }

    /// A hasher for a prompt's blocks when the engine has a prefix cache.
    pub(crate) fn block_hasher(&self) -> Option<crate::prefix::BlockHasher> {
        let bs = self.engine.as_ref()?.fits.prefix_block_size()?;
        Some(crate::prefix::BlockHasher::new(bs))
    }

    /// Whether the engine can ever hold this request (beyond the profile's limits).
    pub(crate) fn engine_fits(&self, prompt_tokens: u32, max_tokens: u32) -> bool {
        match &self.engine {
            Some(e) => e.fits.fits(prompt_tokens, max_tokens),
            None => true,
        }
    }

    /// Decide the output length, finish reason and fault of a validated request.
    pub(crate) fn plan(&self, ctx: &mut Ctx, g: &Gen) -> Plan {
        let max = g.max_tokens.max(1);
        let p = self.profile.eos_probability;
        let (target, eos) = if g.ignore_eos || p <= 0.0 {
            (max, false)
        } else {
            // Geometric number of tokens up to and including the first EOS.
            let mut rng = ChaCha8Rng::seed_from_u64(mix(self.seed, ctx.rec.seq, 2));
            let u: f64 = 1.0 - rng.random::<f64>(); // (0, 1]
            let l = (u.ln() / (1.0 - p).ln()).floor() as u64 + 1;
            let l = l.max(g.min_tokens.max(1) as u64);
            if l < max as u64 {
                (l as u32, true)
            } else {
                (max, false)
            }
        };
        let fault = self.faults.pick(self.seed, ctx.rec.seq, target);
        ctx.rec.fault = fault.map(|f| f.name().to_string());
        ctx.rec.prompt_tokens = g.prompt_tokens;
        ctx.rec.max_tokens = max;
        Plan {
            prompt_tokens: g.prompt_tokens,
            max_tokens: max,
            target,
            eos,
            reasoning: 0,
            fault,
        }
    }
}

/// What `GET /metrics` shows: the engine's gauges, and its cache settings when it has
/// an engine (`vllm:cache_config_info`).
fn server_metrics(
    config: &SimConfig,
    gauges: Arc<crate::metrics::EngineGauges>,
) -> crate::metrics::ServerMetrics {
    let m = crate::metrics::ServerMetrics::new(&config.profile.model, gauges);
    let policy = config.policy.unwrap_or(config.dialect.default_policy());
    match config.profile.engine(policy) {
        Some(e) if !config.profile.is_null() => m.with_cache_info(
            e.block_size,
            e.kv_capacity_tokens,
            e.prefix_cache && policy == crate::Policy::Vllm,
        ),
        _ => m,
    }
}

/// `GET /health`: 200, empty body (TGI, vLLM, LightLLM all answer so).
pub(crate) async fn health() -> StatusCode {
    StatusCode::OK
}

/// `GET /metrics`: the engine's gauges and the request counters in the Prometheus text
/// format (see [`crate::metrics`]).
pub(crate) async fn metrics(
    axum::extract::State(st): axum::extract::State<Arc<AppState>>,
) -> Response {
    response(
        StatusCode::OK,
        Some("text/plain; version=0.0.4; charset=utf-8"),
        st.metrics.render(),
    )
}

/// A validated generation request, in engine terms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Gen {
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub ignore_eos: bool,
    pub min_tokens: u32,
}

/// What will happen to a request.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    /// Tokens it will produce.
    pub target: u32,
    /// It ends on an EOS token (the last one) rather than at max_tokens.
    pub eos: bool,
    /// Its first `reasoning` tokens are reasoning (set by the OpenAI dialect).
    pub reasoning: u32,
    pub fault: Option<Fault>,
}

/// The life of one request: its truth record, written once when the request ends.
pub(crate) struct Ctx {
    pub state: Arc<AppState>,
    pub rec: TruthRecord,
    record_tokens: bool,
    done: bool,
    /// The prompt's block hashes for the engine's prefix cache (set by the dialect).
    pub prefix: Vec<u64>,
}

impl Ctx {
    pub(crate) fn begin(
        state: &Arc<AppState>,
        headers: &HeaderMap,
        route: &str,
        stream: bool,
    ) -> Ctx {
        let received_ns = state.clock.now_ns();
        let seq = state.next_seq.fetch_add(1, Ordering::Relaxed);
        let request_id = headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ctx {
            prefix: Vec::new(),
            record_tokens: state.truth.is_some(),
            state: state.clone(),
            rec: TruthRecord {
                seq,
                request_id,
                dialect: state.dialect.as_str().to_owned(),
                route: route.to_owned(),
                stream,
                received_ns,
                speedup: Some(state.profile.speedup).filter(|&k| k != 1.0),
                ..Default::default()
            },
            done: false,
        }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.rec.seq
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.state.clock.now_ns()
    }

    fn push_token(&mut self, at_ns: u64, reasoning: bool) {
        if self.rec.first_token_ns.is_none() {
            self.rec.first_token_ns = Some(at_ns);
        }
        if reasoning {
            self.rec.reasoning_tokens += 1;
        } else if self.rec.first_answer_ns.is_none() {
            self.rec.first_answer_ns = Some(at_ns);
        }
        if self.record_tokens {
            self.rec.token_ns.push(at_ns);
        }
        self.rec.output_tokens += 1;
    }

    /// End the request's life with this outcome.
    pub(crate) fn finish(&mut self, outcome: Outcome, status: u16) {
        if self.done {
            return;
        }
        self.done = true;
        self.rec.outcome = Some(outcome);
        if self.rec.http_status == 0 {
            self.rec.http_status = status;
        }
        self.rec.finished_ns = self.state.clock.now_ns();
        if outcome == Outcome::Ok {
            let r = &self.rec;
            self.state.metrics.request_done(
                r.finish_reason.as_deref() == Some("eos"),
                r.first_token_ns.map(|t| t.saturating_sub(r.received_ns)),
                r.finished_ns.saturating_sub(r.received_ns),
            );
        }
        if let Some(truth) = &self.state.truth {
            let rec = std::mem::take(&mut self.rec);
            if let Ok(tx) = truth.lock() {
                let _ = tx.send(Msg::Record(Box::new(rec)));
            }
        }
    }

    /// Answer with an error response (validation, bad request, injected HTTP error).
    pub(crate) fn reject(mut self, outcome: Outcome, response: Response) -> Response {
        self.finish(outcome, response.status().as_u16());
        response
    }
}

impl Ctx {
    /// Like [`Ctx::reject`] for a context owned by a job (server shutting down).
    pub(crate) fn reject_ref(&mut self, response: Response) -> Response {
        self.finish(Outcome::Disconnect, response.status().as_u16());
        response
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if !self.done {
            self.finish(Outcome::ClientGone, 0);
        }
    }
}

enum Source {
    Engine(mpsc::UnboundedReceiver<EngineEvent>),
    Null {
        next_index: u32,
        next_at: Option<Instant>,
        /// Before the first token.
        first: Duration,
        /// Between two tokens.
        interval: Duration,
    },
    Closed,
}

/// A token as a dialect writes it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tok {
    pub seq: u64,
    pub index: u32,
    pub last: bool,
    /// This is the end-of-sequence token (last of a request that stops on EOS).
    pub eos: bool,
    pub at_ns: u64,
    /// The request's prompt tokens found in the prefix cache (known once admitted).
    pub cached: u32,
}

impl Tok {
    /// (id, text with leading space): EOS shows as id 2 and empty text.
    pub(crate) fn text(&self) -> (u32, &'static str) {
        if self.eos {
            (crate::words::EOS_ID, "")
        } else {
            let (id, spaced, _) = crate::words::token(self.seq, self.index);
            (id, spaced)
        }
    }
}

/// A request being generated.
pub(crate) struct Job {
    pub ctx: Ctx,
    pub plan: Plan,
    source: Source,
}

impl Job {
    /// Submit to the engine (or start the null source).
    pub(crate) fn start(ctx: Ctx, plan: Plan) -> Job {
        let mut ctx = ctx;
        let source = match &ctx.state.engine {
            Some(engine) => {
                let (tx, rx) = mpsc::unbounded_channel();
                let sub = Submission {
                    hashes: std::mem::take(&mut ctx.prefix),
                    req: EngineRequest {
                        key: ctx.rec.seq,
                        prompt_tokens: plan.prompt_tokens,
                        max_tokens: plan.max_tokens,
                        target_tokens: plan.target,
                    },
                    events: tx,
                };
                match engine.tx.send(EngineInput::Submit(sub)) {
                    Ok(()) => Source::Engine(rx),
                    Err(_) => Source::Closed,
                }
            }
            None => {
                ctx.rec.admitted_ns = Some(ctx.rec.received_ns);
                Source::Null {
                    next_index: 0,
                    next_at: None,
                    first: ctx.state.null_first,
                    interval: ctx.state.null_interval,
                }
            }
        };
        Job { ctx, plan, source }
    }

    /// Sleep before the response headers if the fault says so.
    pub(crate) async fn before_headers(&mut self) {
        if let Some(Fault::SlowFirstByte { ms }) = self.plan.fault {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    fn make_tok(&self, index: u32, last: bool, at_ns: u64) -> Tok {
        Tok {
            seq: self.ctx.rec.seq,
            index,
            last,
            eos: last && self.plan.eos,
            at_ns,
            cached: self.ctx.rec.cached_tokens,
        }
    }

    /// The next token; `None` when the engine is gone (server shutting down).
    async fn next(&mut self) -> Option<Tok> {
        match &mut self.source {
            Source::Engine(rx) => loop {
                match rx.recv().await? {
                    EngineEvent::Admitted { at_ns, cached } => {
                        self.ctx.rec.admitted_ns = Some(at_ns);
                        self.ctx.rec.cached_tokens = cached;
                    }
                    EngineEvent::Preempted => self.ctx.rec.preemptions += 1,
                    EngineEvent::Token { index, last, at_ns } => {
                        return Some(self.make_tok(index, last, at_ns));
                    }
                }
            },
            Source::Null {
                next_index,
                next_at,
                first,
                interval,
            } => {
                if *next_index >= self.plan.target {
                    return None;
                }
                let wait = if next_at.is_none() { *first } else { *interval };
                let at = next_at.unwrap_or_else(Instant::now) + wait;
                *next_at = Some(at);
                if !wait.is_zero() {
                    tokio::time::sleep_until(at).await;
                }
                let index = *next_index;
                *next_index += 1;
                let at = self.ctx.state.clock.now_ns();
                Some(self.make_tok(index, index + 1 >= self.plan.target, at))
            }
            Source::Closed => None,
        }
    }

    /// The next token if it is ready now (no waiting).
    fn try_next(&mut self) -> Option<Tok> {
        match &mut self.source {
            Source::Engine(rx) => loop {
                match rx.try_recv().ok()? {
                    EngineEvent::Admitted { at_ns, cached } => {
                        self.ctx.rec.admitted_ns = Some(at_ns);
                        self.ctx.rec.cached_tokens = cached;
                    }
                    EngineEvent::Preempted => self.ctx.rec.preemptions += 1,
                    EngineEvent::Token { index, last, at_ns } => {
                        return Some(self.make_tok(index, last, at_ns));
                    }
                }
            },
            Source::Null {
                next_index,
                next_at,
                interval,
                ..
            } if interval.is_zero() && next_at.is_some() => {
                if *next_index >= self.plan.target {
                    return None;
                }
                let index = *next_index;
                *next_index += 1;
                let at = self.ctx.state.clock.now_ns();
                Some(self.make_tok(index, index + 1 >= self.plan.target, at))
            }
            _ => None,
        }
    }

    /// Await every token (non-streamed responses). Token times are the engine's.
    /// `Err(())` when the engine went away.
    pub(crate) async fn collect(&mut self) -> Result<Vec<Tok>, ()> {
        let mut toks = Vec::with_capacity(self.plan.target as usize);
        loop {
            let Some(t) = self.next().await else {
                return Err(());
            };
            if let Some(Fault::Stall { before_token, ms }) = self.plan.fault
                && t.index == before_token
            {
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            self.ctx.push_token(t.at_ns, t.index < self.plan.reasoning);
            toks.push(t);
            if t.last {
                self.ctx.rec.finish_reason = Some(if t.eos { "eos" } else { "length" }.into());
                return Ok(toks);
            }
        }
    }
}

/// A dialect's streamed bytes.
pub(crate) trait Framer: Send + 'static {
    /// Append the event(s) for one token.
    fn token(&mut self, tok: &Tok, out: &mut BytesMut);
    /// Append what follows the last token (may be nothing).
    fn end(&mut self, _out: &mut BytesMut) {}
    /// Only the latest of the tokens ready together is sent, the others are lost
    /// (LightLLM 2023: its manager keeps one undelivered token per request).
    fn latest_only(&self) -> bool {
        false
    }
    /// End the stream with an error event once this many tokens were written, instead
    /// of generating the rest (an injected HTTP 500 on a server that reports errors
    /// inside a 200 stream: TGI); the truth log says the error's outcome with status 200.
    fn error_after(&self) -> Option<u32> {
        None
    }
    /// Append that error event; returns the truth log's outcome for it.
    fn error(&mut self, _out: &mut BytesMut) -> Outcome {
        Outcome::Http500
    }
    /// A `:` comment is sent when the stream was silent this long (TGI).
    fn keep_alive(&self) -> Option<Duration> {
        None
    }
}

/// Most token events put into one body chunk when several are ready at once.
const MAX_EVENTS_PER_CHUNK: usize = 16;

struct StreamState<F> {
    job: Job,
    framer: F,
    written: u32,
    /// A token taken from the source but held back for the next chunk (a stall goes
    /// before it).
    pending: Option<Tok>,
    done: bool,
    /// Set when the last event went out: wait this long before the body's end.
    end_gap: Option<Duration>,
}

#[derive(Debug)]
struct Cut;
impl std::fmt::Display for Cut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection cut")
    }
}
impl std::error::Error for Cut {}

/// A streamed body: one event per token, faults applied, truth recorded. Tokens that are
/// ready together go out in one body chunk (still one event each, unless the framer
/// keeps only the latest). The body may start with `prefix` (e.g. a role chunk).
pub(crate) fn stream_body<F: Framer>(job: Job, framer: F, prefix: Option<Bytes>) -> Body {
    let keep_alive = framer.keep_alive();
    let state = StreamState {
        job,
        framer,
        written: 0,
        pending: None,
        done: false,
        end_gap: None,
    };
    let prefix = futures_util::stream::iter(prefix.map(Ok::<Bytes, Cut>));
    let tokens = futures_util::stream::unfold(state, |mut st| async move {
        if st.done {
            if let Some(gap) = st.end_gap.take() {
                tokio::time::sleep(gap).await;
            }
            return None;
        }
        let fault = st.job.plan.fault;
        if let Some(Fault::Disconnect { after_tokens }) = fault
            && st.written >= after_tokens
        {
            st.done = true;
            st.job.ctx.finish(Outcome::Disconnect, 200);
            // Pending once, so what was written (at least the headers) is flushed
            // before the error aborts the connection.
            tokio::time::sleep(Duration::from_millis(1)).await;
            return Some((Err(Cut), st));
        }
        if st.framer.error_after().is_some_and(|k| st.written >= k) {
            st.done = true;
            let mut out = BytesMut::new();
            let outcome = st.framer.error(&mut out);
            st.job.ctx.finish(outcome, 200);
            return Some((Ok(out.freeze()), st));
        }
        let next = match st.pending.take() {
            Some(t) => Some(t),
            None => st.job.next().await,
        };
        let Some(mut tok) = next else {
            // The engine is gone: the server is shutting down.
            st.done = true;
            st.job.ctx.finish(Outcome::Disconnect, 200);
            return Some((Err(Cut), st));
        };
        let mut out = BytesMut::with_capacity(256);
        let mut n = 0;
        let latest_only = st.framer.latest_only();
        // The token not sent yet when only the latest is (lost if another follows).
        let mut held: Option<Tok> = None;
        let mut ended = false;
        loop {
            if let Some(Fault::Stall { before_token, ms }) = fault
                && tok.index == before_token
            {
                if n > 0 {
                    st.pending = Some(tok);
                    break;
                }
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            if latest_only {
                held = Some(tok);
            } else {
                st.framer.token(&tok, &mut out);
            }
            let now = st.job.ctx.now_ns();
            let reasoning = tok.index < st.job.plan.reasoning;
            st.job.ctx.push_token(now, reasoning);
            st.written += 1;
            n += 1;
            if tok.last {
                ended = true;
                st.job.ctx.rec.finish_reason = Some(if tok.eos { "eos" } else { "length" }.into());
                st.job.ctx.finish(Outcome::Ok, 200);
                st.done = true;
                break;
            }
            if n >= MAX_EVENTS_PER_CHUNK {
                break;
            }
            if let Some(Fault::Disconnect { after_tokens }) = fault
                && st.written >= after_tokens
            {
                break;
            }
            if st.framer.error_after().is_some_and(|k| st.written >= k) {
                break;
            }
            match st.job.try_next() {
                Some(t) => tok = t,
                None => break,
            }
        }
        if let Some(t) = held {
            st.framer.token(&t, &mut out);
        }
        if ended {
            st.framer.end(&mut out);
            let gap = st.job.ctx.state.stream_end_gap;
            st.end_gap = (!gap.is_zero()).then_some(gap);
        }
        Some((Ok(out.freeze()), st))
    });
    use futures_util::StreamExt;
    let body = prefix.chain(tokens);
    match keep_alive {
        Some(every) => Body::from_stream(with_keep_alive(body, every)),
        None => Body::from_stream(body),
    }
}

/// `body`, with a `:\n\n` comment whenever it was silent for `every` (axum's SSE
/// keep-alive, as TGI sends it).
fn with_keep_alive<S>(
    body: S,
    every: Duration,
) -> impl futures_util::Stream<Item = Result<Bytes, Cut>>
where
    S: futures_util::Stream<Item = Result<Bytes, Cut>> + Send + 'static,
{
    use futures_util::StreamExt;
    futures_util::stream::unfold(Box::pin(body), move |mut body| async move {
        // `next` keeps its progress in the stream itself: dropping it loses nothing.
        tokio::select! {
            item = body.next() => item.map(|i| (i, body)),
            _ = tokio::time::sleep(every) => Some((Ok(Bytes::from_static(b":\n\n")), body)),
        }
    })
}

/// A body that is cut right after the headers (disconnect fault on a non-streamed answer).
pub(crate) fn cut_body() -> Body {
    // Pending once first, so the connection flushes the status line and headers before
    // the error aborts it.
    Body::from_stream(futures_util::stream::once(async {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Err::<Bytes, Cut>(Cut)
    }))
}

/// A full response with an optional content type.
pub(crate) fn response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: impl Into<Body>,
) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

pub(crate) const JSON: &str = "application/json";
pub(crate) const SSE: &str = "text/event-stream";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// Uvicorn's plain `Internal Server Error` (vLLM and LightLLM on an exception).
pub(crate) fn uvicorn_500() -> Response {
    response(
        StatusCode::INTERNAL_SERVER_ERROR,
        Some(TEXT),
        "Internal Server Error",
    )
}

/// An injected HTTP error fault as the 2023 Python servers (vLLM, LightLLM) answer it:
/// 429 and 503 as a proxy in front of them would (plain text), 500 as uvicorn does.
pub(crate) fn python_injected_error(status: StatusCode) -> Response {
    match status {
        StatusCode::INTERNAL_SERVER_ERROR => uvicorn_500(),
        s => response(s, Some(TEXT), s.canonical_reason().unwrap_or("Error")),
    }
}

/// Append `s` as a JSON string literal (with quotes).
pub(crate) fn push_json_str(out: &mut BytesMut, s: &str) {
    let v = serde_json::to_string(s).expect("strings serialize");
    out.extend_from_slice(v.as_bytes());
}

/// Python's `json.dumps(s)` of a string (ensure_ascii=True): non-ASCII as \uXXXX.
pub(crate) fn push_py_json_str(out: &mut BytesMut, s: &str) {
    out.extend_from_slice(b"\"");
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.extend_from_slice(format!("\\u{:04x}", unit).as_bytes());
                }
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\"");
}
