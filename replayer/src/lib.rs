//! Open-loop replay of a request trace against an LLM serving backend, writing a raw
//! run log (`llmib-log`): the measuring instrument of llm-infer-bench.
//!
//! The instrument must never be the bottleneck and never lie:
//! * every request is sent at its absolute trace time by a dedicated dispatcher thread
//!   ([`dispatch`](crate::dispatch)), each as its own task, and how late the client was
//!   is recorded per request and summarized;
//! * every trace request ends as exactly one log record, whatever happens (errors,
//!   broken streams, malformed data, timeouts, interruption);
//! * token counts say how they were obtained (`token_count_method`, see [`adapter`]);
//!   a chunk is never silently taken for a token;
//! * the log is written by its own thread as requests finish and flushed at least
//!   every 500 ms, so a killed run leaves a readable log.
//!
//! Entry points: [`replay`] (async, runs on the caller's tokio runtime: the CLI and the
//! `run`/`demo` pipelines use it) and [`check_endpoint`] (fail fast when the server is
//! down). See `replayer/README.md` for the design, log fields and benchmark figures.

pub mod adapter;
mod clock;
mod config;
pub mod decode;
mod dispatch;
pub mod framing;
mod lightllm;
mod openai;
mod request;
mod stats;
mod sys;
mod tgi;
mod vllm;
mod writer;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use formats::{
    BackendInfo, FormatError, LogHeader, LogWriter, Outcome, ReplayOptions, TraceRef, TraceRequest,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{BackendKind, IgnoreEos, ReplayConfig, RequestFields};
pub use dispatch::SPIN_NS;
pub use request::{MAX_BODY_BYTES, MAX_EVENT_BYTES, TIMING_HEADERS};
pub use stats::fmt_ns;
pub use tokio_util::sync::CancellationToken as Token;

use adapter::BodyOptions;
use request::{Prepared, Shared};
use stats::{LiveStats, percentile};

/// Everything that stops a replay before it could start or finish writing its log.
/// Request failures are never errors: they are records.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("{0}")]
    Config(String),
    #[error("reading trace {path}: {source}")]
    Trace {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("cannot reach {endpoint}: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("run log {path}: {message}")]
    Log { path: PathBuf, message: String },
    #[error("{0}")]
    Internal(String),
}

/// How a caller stops a replay. `stop()` (first Ctrl-C) stops dispatching: requests not
/// yet sent are logged `not_sent`, in-flight ones get the grace period
/// ([`ReplayConfig::grace`]) and are then `cancelled`. `abort()` (second Ctrl-C) cancels
/// in-flight requests at once. The log is completed with its trailer either way.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    stop: CancellationToken,
    abort: CancellationToken,
}

impl StopHandle {
    pub fn new() -> Self {
        StopHandle::default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}

impl From<CancellationToken> for StopHandle {
    /// Cancelling the token stops the replay (with the grace period).
    fn from(stop: CancellationToken) -> Self {
        StopHandle {
            stop,
            abort: CancellationToken::new(),
        }
    }
}

/// What a replay did, for people and for pipelines. Published metrics come from the
/// analyzer reading the log; these are the run's own counters and its health check.
#[derive(Debug, Clone)]
pub struct ReplaySummary {
    pub log: PathBuf,
    /// Records written (one per replayed trace request).
    pub records: u64,
    pub by_outcome: BTreeMap<Outcome, u64>,
    /// The trailer says complete: every request was sent and none was cancelled by a stop.
    pub complete: bool,
    /// Stopped by the caller (Ctrl-C) or by `duration`.
    pub interrupted: bool,
    pub wall: Duration,
    /// Dispatch lateness (task start minus scheduled time), ns.
    pub lateness_p50_ns: u64,
    pub lateness_p99_ns: u64,
    pub lateness_max_ns: u64,
    /// The dispatcher's own precision: hand-off to the runtime minus scheduled time
    /// (p99, max). The rest of the lateness is the runtime starting the task.
    pub handoff_p99_ns: u64,
    pub handoff_max_ns: u64,
    /// Largest `dispatched_ns - scheduled_ns` (lateness plus concurrency-slot wait).
    pub dispatch_delay_max_ns: u64,
    pub output_tokens: u64,
    /// Process CPU time over the run, without the dispatcher thread's spinning.
    pub cpu_time: Duration,
    /// The client used nearly all the CPU it had: its timings may be inflated.
    pub cpu_bound: bool,
    /// Duplicate or missing records the writer had to fix (always 0 unless a bug).
    pub internal_anomalies: u64,
    pub warnings: Vec<String>,
}

impl ReplaySummary {
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.by_outcome.get(&outcome).copied().unwrap_or(0)
    }

    /// Lateness p99 under 1 ms and the client not CPU-bound.
    pub fn client_healthy(&self) -> bool {
        self.lateness_p99_ns <= 1_000_000 && !self.cpu_bound
    }
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let outcomes: Vec<String> = self
            .by_outcome
            .iter()
            .map(|(o, n)| format!("{o} {n}"))
            .collect();
        writeln!(
            f,
            "replayed {} requests in {:.2} s{}: {}",
            self.records,
            self.wall.as_secs_f64(),
            if self.complete {
                ""
            } else {
                " (incomplete run)"
            },
            outcomes.join(", ")
        )?;
        let secs = self.wall.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "output tokens {} ({:.0} tok/s); log {}",
            self.output_tokens,
            self.output_tokens as f64 / secs,
            self.log.display()
        )?;
        write!(
            f,
            "client health: dispatch lateness p50 {} p99 {} max {} (dispatcher alone p99 {} max {}); cpu {:.0}% of one core",
            fmt_ns(self.lateness_p50_ns),
            fmt_ns(self.lateness_p99_ns),
            fmt_ns(self.lateness_max_ns),
            fmt_ns(self.handoff_p99_ns),
            fmt_ns(self.handoff_max_ns),
            100.0 * self.cpu_time.as_secs_f64() / secs
        )?;
        if self.dispatch_delay_max_ns > self.lateness_max_ns + 1_000_000 {
            write!(
                f,
                "; max wait for a concurrency slot {}",
                fmt_ns(self.dispatch_delay_max_ns)
            )?;
        }
        for w in &self.warnings {
            write!(f, "\nwarning: {w}")?;
        }
        Ok(())
    }
}

/// Joins the endpoint and a backend path (a trailing `/v1` on the endpoint is accepted
/// for the OpenAI dialects).
fn request_url(
    endpoint: &str,
    backend: BackendKind,
    stream: bool,
) -> Result<reqwest::Url, ReplayError> {
    let mut base = endpoint.trim().trim_end_matches('/').to_string();
    if backend.is_openai() && base.ends_with("/v1") {
        base.truncate(base.len() - 3);
    }
    let path = backend.dialect().path(stream);
    let url = reqwest::Url::parse(&format!("{base}{path}"))
        .map_err(|e| ReplayError::Config(format!("invalid endpoint `{endpoint}`: {e}")))?;
    if url.scheme() != "http" {
        return Err(ReplayError::Config(format!(
            "endpoint `{endpoint}`: only plain http:// endpoints are supported"
        )));
    }
    Ok(url)
}

/// Asks the server's `/health` whether it is llm-infer-bench's simulator (its
/// [`formats::SIMULATOR_HEADER`]), so that runs against it are recorded as simulated even
/// when the caller did not say so. Any failure means "not known to be simulated".
async fn detect_simulator(
    client: &reqwest::Client,
    url: &reqwest::Url,
) -> Option<formats::SimulatedInfo> {
    let health = url.join("/health").ok()?;
    let resp = tokio::time::timeout(Duration::from_secs(2), client.get(health).send())
        .await
        .ok()?
        .ok()?;
    let value = resp
        .headers()
        .get(formats::SIMULATOR_HEADER)?
        .to_str()
        .ok()?;
    formats::SimulatedInfo::from_header(value)
}

/// Fails fast, naming the endpoint, when nothing answers HTTP there. Any HTTP answer
/// (even 404) counts as up.
pub async fn check_endpoint(endpoint: &str, timeout: Duration) -> Result<(), ReplayError> {
    let url = request_url(endpoint, BackendKind::Tgi, false)?;
    let base = url
        .join("/")
        .map_err(|e| ReplayError::Config(e.to_string()))?;
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .build()
        .map_err(|e| ReplayError::Internal(e.to_string()))?;
    match client.get(base).send().await {
        Ok(_) => Ok(()),
        Err(e) => Err(ReplayError::Endpoint {
            endpoint: endpoint.to_string(),
            message: if e.is_timeout() {
                format!("no answer within {:.1} s", timeout.as_secs_f64())
            } else if e.is_connect() {
                let mut m = String::from("connection failed");
                let mut src = std::error::Error::source(&e);
                while let Some(s) = src {
                    m = format!("connection failed: {s}");
                    src = s.source();
                }
                m
            } else {
                e.to_string()
            },
        }),
    }
}

fn body_options(config: &ReplayConfig, req: &TraceRequest) -> BodyOptions {
    let ignore_eos = config.backend.has_ignore_eos()
        && match config.fields.ignore_eos {
            IgnoreEos::FromTrace => req.ignore_eos,
            IgnoreEos::Always => true,
            IgnoreEos::Never => false,
        };
    BodyOptions {
        stream: config.stream,
        model: config.model.clone(),
        ignore_eos,
        min_tokens: config.fields.min_tokens && config.backend.is_openai(),
        stream_usage: config.fields.stream_usage && config.backend.is_openai(),
        continuous_usage: config.fields.continuous_usage && config.backend.is_openai(),
    }
}

fn prepare(
    config: &ReplayConfig,
    requests: Vec<TraceRequest>,
) -> Result<(Vec<Prepared>, bool), ReplayError> {
    let dialect = config.backend.dialect();
    let mut any_ignore_eos = false;
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.into_iter().enumerate() {
        let opts = body_options(config, &r);
        any_ignore_eos |= opts.ignore_eos;
        let ids = if config.fields.prompt_token_ids {
            Some(r.prompt_token_ids.as_deref().ok_or_else(|| {
                ReplayError::Config(format!(
                    "--prompt-token-ids: trace request {} has no token ids (the trace was \
                     not made with a real tokenizer)",
                    r.id
                ))
            })?)
        } else {
            None
        };
        let body = dialect.body(&r.prompt, ids, r.max_tokens, &opts);
        let body = serde_json::to_vec(&body).map_err(|e| ReplayError::Internal(e.to_string()))?;
        let scheduled_ns = (r.arrival_ns as f64 / config.time_scale).round() as u64;
        out.push(Prepared {
            id: r.id,
            scheduled_ns,
            body: Bytes::from(body),
            prompt_tokens: r.prompt_tokens,
            max_tokens: r.max_tokens,
            prompt_bytes: r.prompt.len(),
            handoff_ns: 0,
            ignore_eos_sent: opts.ignore_eos,
            warmup: (i as u64) < config.warmup as u64,
        });
    }
    Ok((out, any_ignore_eos))
}

fn validate(config: &ReplayConfig) -> Result<(), ReplayError> {
    if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
        return Err(ReplayError::Config(format!(
            "time scale must be a positive number, got {}",
            formats::readable(config.time_scale)
        )));
    }
    if config.timeout.is_some_and(|t| t.is_zero()) {
        return Err(ReplayError::Config(
            "timeout must be greater than 0 (omit it for no timeout)".into(),
        ));
    }
    if config.concurrency == Some(0) {
        return Err(ReplayError::Config("concurrency must be at least 1".into()));
    }
    if config.fields.prompt_token_ids && !config.backend.accepts_token_ids() {
        return Err(ReplayError::Config(format!(
            "backend {} does not accept prompts as token ids (only openai completions does)",
            config.backend
        )));
    }
    request_url(&config.endpoint, config.backend, config.stream)?;
    Ok(())
}

fn build_client(config: &ReplayConfig, pool: usize) -> Result<reqwest::Client, ReplayError> {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .http1_only()
        .tcp_nodelay(true)
        .retry(reqwest::retry::never())
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(pool)
        .pool_idle_timeout(Duration::from_secs(60))
        .user_agent(concat!("llm-infer-bench/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = config.timeout {
        b = b.connect_timeout(t);
    }
    b.build()
        .map_err(|e| ReplayError::Internal(format!("building the HTTP client: {e}")))
}

/// Replays `trace` as `config` says, writing the run log to `config.output`.
///
/// Must be called from within a multi-threaded tokio runtime (request tasks run on it;
/// the dispatcher and the log writer get their own threads). Returns when every record
/// and the trailer are written. Request failures are records, not errors.
pub async fn replay(
    trace: &Path,
    config: ReplayConfig,
    stop: impl Into<StopHandle>,
) -> Result<ReplaySummary, ReplayError> {
    let stop: StopHandle = stop.into();
    validate(&config)?;
    formats::OutputGuard::new(config.overwrite)
        .input(trace, "the trace being replayed")
        .check_file(&config.output)
        .map_err(|e| ReplayError::Config(e.to_string()))?;
    let url = request_url(&config.endpoint, config.backend, config.stream)?;
    let headers = request::build_headers(&config.headers, config.api_key.as_deref())
        .map_err(ReplayError::Config)?;

    // Read, verify and prepare everything before the clock starts.
    let trace_path = trace.to_path_buf();
    let cfg = config.clone();
    let (theader, sha256, prepared, any_ignore_eos) = tokio::task::spawn_blocking(move || {
        let terr = |source| ReplayError::Trace {
            path: trace_path.clone(),
            source,
        };
        let (header, mut requests) = formats::read_trace(&trace_path).map_err(terr)?;
        let sha = formats::sha256_file(&trace_path).map_err(terr)?;
        if let Some(m) = cfg.max_requests {
            requests.truncate(m.min(usize::MAX as u64) as usize);
        }
        let (prepared, any) = prepare(&cfg, requests)?;
        Ok::<_, ReplayError>((header, sha, prepared, any))
    })
    .await
    .map_err(|e| ReplayError::Internal(e.to_string()))??;

    let n = prepared.len();
    let mut warnings = Vec::new();
    let peak = config
        .concurrency
        .map_or(n as u64, |c| (c as u64).min(n as u64));
    if let Some(w) = sys::raise_nofile(peak + 64) {
        warnings.push(w);
    }
    let client = build_client(&config, (peak as usize).clamp(1, 65536))?;
    let mut config = config;
    if config.simulated.is_none() {
        config.simulated = detect_simulator(&client, &url).await;
    }

    let options = ReplayOptions {
        stream: config.stream,
        concurrency: config.concurrency,
        warmup: config.warmup,
        timeout_ms: config.timeout.map(|t| t.as_millis() as u64),
        time_scale: config.time_scale,
        max_requests: config.max_requests,
        duration_ms: config.duration.map(|d| d.as_millis() as u64),
        send_ignore_eos: any_ignore_eos,
        send_min_tokens: config.fields.min_tokens && config.backend.is_openai(),
        send_include_usage: config.fields.stream_usage
            && config.backend.is_openai()
            && config.stream,
        send_continuous_usage: config.fields.continuous_usage
            && config.backend.is_openai()
            && config.stream,
        prompt_as_token_ids: config.fields.prompt_token_ids,
        header_names: config
            .headers
            .iter()
            .map(|(k, _)| k.trim().to_string())
            .collect(),
    };
    let clock = clock::RunClock::start_in(Duration::from_millis(50));
    let header = LogHeader::new(
        TraceRef {
            name: theader.name.clone(),
            sha256,
            request_count: theader.request_count,
            spec: Some(theader.spec.clone()),
        },
        BackendInfo {
            kind: config.backend.as_str().to_string(),
            endpoint: config.endpoint.clone(),
            model: config.model.clone(),
            simulated: config.simulated.clone(),
        },
        clock.started_unix_ns,
        env!("CARGO_PKG_VERSION"),
        sys::hostname(),
        options,
    );
    let log = if config.overwrite {
        LogWriter::create(&config.output, &header)
    } else {
        LogWriter::create_new(&config.output, &header)
    };
    let log = log.map_err(|e| ReplayError::Log {
        path: config.output.clone(),
        message: e.to_string(),
    })?;
    let expected: Vec<writer::Expected> = prepared
        .iter()
        .map(|p| writer::Expected {
            id: p.id,
            scheduled_ns: p.scheduled_ns,
            prompt_tokens: p.prompt_tokens,
            max_tokens: p.max_tokens,
            warmup: p.warmup,
        })
        .collect();
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::Builder::new()
        .name("llmib-log-writer".into())
        .spawn(move || writer::run(rx, log, expected))
        .map_err(|e| ReplayError::Internal(format!("starting the log writer: {e}")))?;

    let internal_stop = stop.stop.child_token();
    let abort = stop.abort.child_token();
    let live = Arc::new(LiveStats::new());
    let shared = Arc::new(Shared {
        client,
        url,
        headers,
        backend: config.backend,
        stream: config.stream,
        timeout: config.timeout,
        clock,
        slots: config
            .concurrency
            .map(|c| Arc::new(tokio::sync::Semaphore::new(c as usize))),
        stop: internal_stop.clone(),
        abort: abort.clone(),
        tx: tx.clone(),
        live: live.clone(),
    });

    let finished = CancellationToken::new();
    // Grace period: once dispatching stops early, in-flight requests get `grace`.
    {
        let (internal_stop, abort, finished, grace) = (
            internal_stop.clone(),
            abort.clone(),
            finished.clone(),
            config.grace,
        );
        tokio::spawn(async move {
            tokio::select! {
                _ = finished.cancelled() => {}
                _ = internal_stop.cancelled() => {
                    tokio::select! {
                        _ = finished.cancelled() => {}
                        _ = tokio::time::sleep(grace) => abort.cancel(),
                    }
                }
            }
        });
    }
    let progress = (config.progress && std::io::stderr().is_terminal())
        .then(|| spawn_progress(n as u64, live.clone(), finished.clone()));

    let cpu_before = sys::cpu_time(false);
    let wall_start = Instant::now();
    let tracker = TaskTracker::new();
    let (dtx, drx) = tokio::sync::oneshot::channel();
    {
        let shared = shared.clone();
        let tracker = tracker.clone();
        let handle = tokio::runtime::Handle::current();
        let duration_ns = config.duration.map(|d| d.as_nanos() as u64);
        std::thread::Builder::new()
            .name("llmib-dispatch".into())
            .spawn(move || {
                let r = dispatch::run(prepared, shared, handle, tracker, duration_ns);
                let _ = dtx.send(r);
            })
            .map_err(|e| ReplayError::Internal(format!("starting the dispatcher: {e}")))?;
    }
    let dreport = drx
        .await
        .map_err(|_| ReplayError::Internal("the dispatcher thread died".into()))?;
    tracker.close();
    tracker.wait().await;
    let ended_ns = shared.clock.now_ns();
    let wall = wall_start.elapsed();
    finished.cancel();
    drop(shared);

    let interrupted = dreport.cut_short || stop.is_stopped();
    let complete = dreport.not_sent == 0 && !abort.is_cancelled() && !interrupted;
    let _ = tx.send(writer::WriterMsg::Finish { complete, ended_ns });
    drop(tx);
    let mut wreport = tokio::task::spawn_blocking(move || writer.join())
        .await
        .map_err(|e| ReplayError::Internal(e.to_string()))?
        .map_err(|_| ReplayError::Internal("the log writer panicked".into()))?;
    if let Some(p) = progress {
        p.finish_and_clear();
    }
    if let Some(e) = wreport.error.take() {
        return Err(ReplayError::Log {
            path: config.output.clone(),
            message: e,
        });
    }

    let cpu = sys::cpu_time(false)
        .saturating_sub(cpu_before)
        .saturating_sub(dreport.cpu);
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cpu_bound =
        wall > Duration::from_millis(500) && cpu.as_secs_f64() > 0.85 * cores * wall.as_secs_f64();
    let mut handoff = std::mem::take(&mut wreport.handoff_lateness_ns);
    handoff.sort_unstable();
    let mut lat = std::mem::take(&mut wreport.lateness_ns);
    lat.sort_unstable();
    let (p50, p99, max) = (
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        lat.last().copied().unwrap_or(0),
    );
    if p99 > 1_000_000 {
        warnings.push(format!(
            "dispatch lateness p99 is {} (> 1 ms): the client fell behind the trace; \
             arrival times in this run are not what the trace asked for",
            fmt_ns(p99)
        ));
    }
    if !dreport.realtime && percentile(&handoff, 0.99) > 100_000 {
        warnings.push(
            "the dispatcher thread could not get real-time priority (needs CAP_SYS_NICE or \
             RLIMIT_RTPRIO): its wake-ups were delayed by other processes"
                .to_string(),
        );
    }
    if cpu_bound {
        warnings.push(format!(
            "the client was CPU-bound ({:.0}% of {} cores): latencies include client delay; \
             run the client on its own machine or lower the load",
            100.0 * cpu.as_secs_f64() / wall.as_secs_f64(),
            cores
        ));
    }
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
    let anomalies = wreport.duplicates_dropped + wreport.missing_filled;
    if anomalies > 0 {
        warnings.push(format!(
            "internal error: {} duplicate and {} missing records were fixed by the writer",
            wreport.duplicates_dropped, wreport.missing_filled
        ));
    }
    let complete = wreport.trailer.as_ref().is_some_and(|t| t.complete);
    Ok(ReplaySummary {
        log: config.output.clone(),
        records: wreport.records,
        by_outcome: wreport.by_outcome,
        complete,
        interrupted,
        wall,
        lateness_p50_ns: p50,
        lateness_p99_ns: p99,
        lateness_max_ns: max,
        handoff_p99_ns: percentile(&handoff, 0.99),
        handoff_max_ns: handoff.last().copied().unwrap_or(0),
        dispatch_delay_max_ns: wreport.dispatch_delay_ns.iter().copied().max().unwrap_or(0),
        output_tokens: wreport.output_tokens,
        cpu_time: cpu,
        cpu_bound,
        internal_anomalies: anomalies,
        warnings,
    })
}

fn spawn_progress(
    total: u64,
    live: Arc<LiveStats>,
    finished: CancellationToken,
) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr_with_hz(5),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:28}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let b = bar.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = finished.cancelled() => break,
                _ = tick.tick() => {}
            }
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            let done = live.done.load(Ordering::Relaxed);
            b.set_position(done);
            b.set_message(format!(
                "sent {} done {} err {} in-flight {} | {:.0} tok/s | late p99 {}",
                live.sent.load(Ordering::Relaxed),
                done,
                live.errors.load(Ordering::Relaxed),
                live.in_flight.load(Ordering::Relaxed),
                live.tokens.load(Ordering::Relaxed) as f64 / secs,
                live.lateness_quantile(0.99).map_or("-".into(), fmt_ns),
            ));
        }
    });
    bar
}

#[cfg(test)]
mod tests;
