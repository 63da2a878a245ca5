//! The phases of one replay, in the order they run: validate, prepare, connect (and warm
//! up connections), open the log, dispatch, drain, finish.
//!
//! [`crate::replay`], the public entry point, is [`replay`] here: a list of phase calls,
//! each phase one function whose arguments and result say what it takes from the earlier
//! ones. Whatever can fail on the user's input fails before anything is sent (validate,
//! prepare, connect, open the log). The clock starts when the log is opened, 50 ms ahead,
//! so the first deadline is not already past when the dispatcher gets to it; with
//! `--start-at`, at the given instant (connect waits until shortly before it, see
//! `crate::run::start_at`). From then on
//! every trace request ends as one record and the trailer is written, whatever happens;
//! only a failing log (or a crashed thread) ends the run with an error.

pub(crate) mod dispatch;
pub(crate) mod prepare;
pub(crate) mod prepared;
pub(crate) mod progress;
pub(crate) mod request;
pub(crate) mod schedule;
pub mod shard;
pub(crate) mod start_at;
pub(crate) mod stats;
pub(crate) mod stop;
pub(crate) mod summary;
pub(crate) mod sys;
pub(crate) mod writer;

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use formats::{
    BackendInfo, LogHeader, LogWriter, PrefixCacheReset, ReplayOptions, ServerIdentity,
    ServerMetricsRef, TraceRef, WarmConnections,
};
use indicatif::ProgressBar;
use reqwest::header::HeaderMap;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::clock::RunClock;
use crate::config::{ReplayConfig, ServerMetricsSource};
use crate::error::ReplayError;
use crate::net::cache_reset;
use crate::net::conn_count::ConnCount;
use crate::net::http::{build_client, build_headers, detect_simulator, probe_url, request_url};
use crate::net::warm;
use crate::run::dispatch::DispatchReport;
use crate::run::prepare::Plan;
use crate::run::prepared::Release;
use crate::run::progress::spawn_progress;
use crate::run::request::Shared;
use crate::run::schedule::Schedule;
use crate::run::start_at;
use crate::run::stats::{LiveStats, fmt_ns, percentile};
use crate::run::stop::StopHandle;
use crate::run::summary::{Connections, ReplaySummary};
use crate::run::sys;
use crate::run::writer::{self, WriterMsg, WriterReport};
use crate::server_metrics;

/// Replays `trace` as `config` says (see [`crate::replay`]).
pub(crate) async fn replay(
    trace: &Path,
    mut config: ReplayConfig,
    stop: StopHandle,
) -> Result<ReplaySummary, ReplayError> {
    let mut target = validate(trace, &config)?;
    let discovered = discover_model(&mut config, &target).await?;
    let identity = identify(&config, &target).await;
    let plan = prepare(trace, &config).await?;
    wait_for_start(&config, start_at::WARM_LEAD, &stop).await?;
    let conn = connect(&mut config, &target, &plan).await?;
    // After the warm-up, whose connections carry no stream.
    let close_note = close_after_streams(&config, &mut target, identity.as_ref());
    let (metrics, metrics_note) = server_metrics::setup::prepare(&config).await?;
    config.server_metrics = metrics
        .as_ref()
        .map(|m| ServerMetricsSource::Url(m.reference().url));
    let server = ServerState {
        reset: reset_cache(&config, &target, identity.as_ref()).await,
        identity,
    };
    let reset_note = server.reset.as_ref().and_then(cache_reset::warning);
    wait_for_start(&config, start_at::MAP_AHEAD, &stop).await?;
    let log = open_log(&config, &plan, &conn.warm, discovered, server)?;
    let scraper = metrics
        .map(|m| m.start(log.clock, &config.output, config.overwrite))
        .transpose()?;
    let client = conn.client.clone();
    // Every streamed request opens its own connection against a server that closes
    // after streams: none is coming back to wait for.
    conn.count.guard_spares(close_note.is_none());
    let burst = plan.burst;
    let wire = (client, conn.count.clone());
    let (running, dreport) = dispatch(&config, target, wire, &log, plan.schedule, &stop).await?;
    let drained = drain(running, log, dreport, &stop, &config.output).await?;
    let scraped = match scraper {
        Some(s) => Some(s.stop().await),
        None => None,
    };
    let mut summary = finish(&config.output, drained, conn, burst);
    summary.warnings.extend(metrics_note);
    summary.warnings.extend(reset_note);
    summary.warnings.extend(close_note);
    if let Some(r) = scraped {
        summary.warnings.extend(r.warnings(&config.output));
    }
    Ok(summary)
}

/// With `--start-at`: waits until `lead` before the instant (see `crate::run::start_at`);
/// fails if it passed meanwhile (a trace that took longer to read than the time left).
/// A stop while waiting ends the run before anything is sent or written
/// ([`ReplayError::Interrupted`]).
async fn wait_for_start(
    config: &ReplayConfig,
    lead: Duration,
    stop: &StopHandle,
) -> Result<(), ReplayError> {
    if let Some(t) = config.start_at_unix_ns {
        start_at::check_future(t, "once ready to start")?;
        tokio::select! {
            biased;
            _ = stop.stop.cancelled() => return Err(start_at::interrupted(t)),
            _ = start_at::wait_until_before(t, lead) => {}
        }
    }
    Ok(())
}

/// Where requests go, the fixed headers they carry and the TLS they use.
struct Target {
    url: reqwest::Url,
    headers: HeaderMap,
    tls: rustls::ClientConfig,
}

/// Phase 1: everything that can be checked without reading the trace or the network:
/// the options, the output path (never the trace, never an existing log unless
/// `overwrite`), the URL, the headers and the TLS setup (`--cacert` is read here).
fn validate(trace: &Path, config: &ReplayConfig) -> Result<Target, ReplayError> {
    validate_options(config)?;
    let url = request_url(&config.endpoint, config.backend, config.stream)?;
    let guard =
        formats::OutputGuard::new(config.overwrite).input(trace, "the trace being replayed");
    guard
        .check_file(&config.output)
        .map_err(|e| ReplayError::Config(e.to_string()))?;
    if config.server_metrics.is_some() {
        // The sidecar obeys the log's rules, checked now rather than once the log is
        // written (see `server_metrics::setup`).
        guard
            .check_file_no_follow(&formats::sidecar_path(&config.output))
            .map_err(|e| ReplayError::Config(format!("--server-metrics: {e}")))?;
    }
    let headers =
        build_headers(&config.headers, config.api_key.as_deref()).map_err(ReplayError::Config)?;
    let tls = crate::net::tls::client_config(&config.tls, url.scheme() == "https")?;
    Ok(Target { url, headers, tls })
}

/// Phase 1b: an OpenAI dialect without `--model` asks the server for its only model
/// (see [`crate::net::models`]), before the bodies are serialized. Returns whether the
/// model was discovered.
async fn discover_model(config: &mut ReplayConfig, target: &Target) -> Result<bool, ReplayError> {
    if !config.backend.is_openai() || config.model.is_some() {
        return Ok(false);
    }
    let limit = config.timeout.map_or(warm::LIMIT, |t| t.min(warm::LIMIT));
    let client = crate::net::http::client_builder(&target.tls)
        .build()
        .map_err(|e| ReplayError::Internal(format!("building the HTTP client: {e}")))?;
    let url = probe_url(&target.url, config.backend)?;
    let model = crate::net::models::discover(&client, &url, &target.headers, limit).await?;
    config.model = Some(model);
    Ok(true)
}

/// Phase 1c: what the server says about itself (see [`crate::net::identity`]), when asked.
async fn identify(config: &ReplayConfig, target: &Target) -> Option<ServerIdentity> {
    if !config.identify_server {
        return None;
    }
    Some(crate::net::identity::identify(&target.url, &target.headers, &target.tls).await)
}

/// Phase 1d: llama.cpp's `llama-server` (as built from llama-cpp-python 0.3.36, measured
/// in issue 21) answers a streamed request with `Keep-Alive`, then, when the next
/// request comes on that connection, swallows it and closes the connection: every
/// request sent on a connection that carried a stream was lost ("connection closed
/// before message completed", 9 of 60 at `--concurrency 4`). So against it every
/// streamed request says `Connection: close` and opens its own connection (its
/// `connect_ns` shows the cost); the returned note says so.
fn close_after_streams(
    config: &ReplayConfig,
    target: &mut Target,
    identity: Option<&ServerIdentity>,
) -> Option<String> {
    let server = identity?.server_header.as_deref()?;
    if !config.stream || !server.trim().to_ascii_lowercase().starts_with("llama.cpp") {
        return None;
    }
    target.headers.insert(
        reqwest::header::CONNECTION,
        reqwest::header::HeaderValue::from_static("close"),
    );
    Some(
        "llama.cpp's server closes a kept-alive connection after a streamed answer \
         (losing the next request sent on it): each streamed request opens its own \
         connection (Connection: close; see connect_ns)"
            .into(),
    )
}

/// Phase 3c: `--reset-prefix-cache`, the last request before the clock starts (see
/// [`crate::net::cache_reset`]); the endpoint follows the server's identity when known.
async fn reset_cache(
    config: &ReplayConfig,
    target: &Target,
    identity: Option<&ServerIdentity>,
) -> Option<PrefixCacheReset> {
    if !config.reset_prefix_cache {
        return None;
    }
    let kind = identity.and_then(|i| i.kind.as_deref());
    let candidates = cache_reset::candidates(config.backend, kind);
    Some(cache_reset::reset(&target.url, &target.headers, &target.tls, &candidates).await)
}

/// What the log header records about the server besides its URL.
struct ServerState {
    identity: Option<ServerIdentity>,
    reset: Option<PrefixCacheReset>,
}

fn validate_options(config: &ReplayConfig) -> Result<(), ReplayError> {
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
    if config.pool_idle_timeout.is_zero() {
        return Err(ReplayError::Config(
            "the pool idle timeout must be greater than 0".into(),
        ));
    }
    if config.concurrency == Some(0) {
        return Err(ReplayError::Config("concurrency must be at least 1".into()));
    }
    if config.max_requests == Some(0) {
        return Err(ReplayError::Config(
            "--max-requests must be at least 1 (0 would replay nothing)".into(),
        ));
    }
    server_metrics::setup::check_interval(config)?;
    if let Some(s) = config.shard
        && s.index >= s.count
    {
        return Err(ReplayError::Config(format!(
            "shard {s}: the index must be below the shard count"
        )));
    }
    if let Some(t) = config.start_at_unix_ns {
        start_at::check_future(t, "at launch")?;
    }
    if config.fields.prompt_token_ids && !config.backend.accepts_token_ids() {
        return Err(ReplayError::Config(format!(
            "backend {} does not accept prompts as token ids (openai, sglang and llamacpp do)",
            config.backend
        )));
    }
    Ok(())
}

/// Phase 2: reads and verifies the trace and serializes every request body, on a
/// blocking thread, before the clock starts.
async fn prepare(trace: &Path, config: &ReplayConfig) -> Result<Plan, ReplayError> {
    let trace = trace.to_path_buf();
    let config = config.clone();
    tokio::task::spawn_blocking(move || crate::run::prepare::plan(&trace, &config))
        .await
        .map_err(|e| ReplayError::Internal(e.to_string()))?
}

/// Idle connections kept beyond the peak in flight (see [`connect`]).
const POOL_SPARES: u64 = 16;

/// What the connect phase leaves for the run.
struct Connected {
    client: reqwest::Client,
    /// Every connection the client established (see [`crate::net::connect`]).
    count: ConnCount,
    /// Connections established before the clock started.
    opened_before: u64,
    warm: WarmConnections,
    /// The warnings so far.
    warnings: Vec<String>,
}

/// Phase 3: the open-file limit and the HTTP client, both sized for the peak of open
/// connections; the connection warm-up (`--connections`), which leaves keep-alive
/// connections idle in the client's pool before the clock starts; whether the server
/// is the simulator (recorded in `config`).
async fn connect(
    config: &mut ReplayConfig,
    target: &Target,
    plan: &Plan,
) -> Result<Connected, ReplayError> {
    let mut warnings = Vec::new();
    sys::keep_freed_memory();
    let n = plan.schedule.len() as u64;
    let peak = config.concurrency.map_or(n, |c| (c as u64).min(n));
    let asked = config.connections.unwrap_or(0) as u64;
    if let Some(w) = sys::raise_nofile(peak.max(asked) + warm::FD_RESERVE) {
        warnings.push(w);
    }
    let scheduled: Vec<u64> = plan.schedule.iter().map(|p| p.scheduled_ns).collect();
    let goal = warm::goal(
        config.connections,
        config.concurrency,
        &scheduled,
        sys::open_file_limit(),
    );
    // Room for spares: a request that takes a slot just freed can start a connect
    // before the freed connection is back in the pool (see `connect.rs`); the idle pool
    // keeps the spare it leaves, so the race fades instead of recurring.
    let pool = (peak.max(goal.count as u64) + POOL_SPARES).min(65536) as usize;
    let count = ConnCount::default();
    let client = build_client(config, &target.tls, pool, &count)?;
    // Warm-up first, on the empty pool it needs; the probe then reuses a connection.
    let probe = probe_url(&target.url, config.backend)?;
    let limit = config.timeout.map_or(warm::LIMIT, |t| t.min(warm::LIMIT));
    let (warm, note) = warm::warm_up(&client, &probe, &target.headers, goal, &count, limit).await;
    warnings.extend(note);
    if config.simulated.is_none() {
        config.simulated = detect_simulator(&client, &target.url).await;
    }
    Ok(Connected {
        client,
        opened_before: count.opened(),
        count,
        warm,
        warnings,
    })
}

/// The run clock and the log writer thread, with the channel records reach it by.
struct LogSink {
    clock: RunClock,
    tx: Sender<WriterMsg>,
    writer: JoinHandle<WriterReport>,
}

/// Phase 4: starts the clock, creates the run log with its header and starts the
/// writer thread.
fn open_log(
    config: &ReplayConfig,
    plan: &Plan,
    warm: &WarmConnections,
    model_discovered: bool,
    server: ServerState,
) -> Result<LogSink, ReplayError> {
    let mut options = replay_options(config, plan.any_ignore_eos, warm);
    options.model_discovered = model_discovered;
    options.shard = plan.shard.clone();
    let clock = match config.start_at_unix_ns {
        Some(t) => {
            let (clock, info) = start_at::clock_at(t)?;
            options.start_at = Some(info);
            clock
        }
        None => RunClock::start_in(Duration::from_millis(50)),
    };
    let mut header = log_header(config, plan, &clock, options);
    header.server_identity = server.identity;
    header.prefix_cache_reset = server.reset.map(|mut r| {
        r.before_start_ns = clock.started_unix_ns.saturating_sub(r.at_unix_ns);
        r
    });
    let log = if config.overwrite {
        LogWriter::create(&config.output, &header)
    } else {
        LogWriter::create_new(&config.output, &header)
    };
    let log = log.map_err(|e| ReplayError::Log {
        path: config.output.clone(),
        message: e.to_string(),
    })?;
    let mut expected: Vec<writer::Expected> = plan
        .schedule
        .iter()
        .map(|p| writer::Expected {
            id: p.id,
            scheduled_ns: p.scheduled_ns,
            prompt_tokens: p.prompt_tokens,
            max_tokens: p.max_tokens,
            warmup: p.warmup,
            session_id: p.session_id,
            turn: p.turn,
        })
        .collect();
    if !expected.is_sorted_by_key(|e| e.id) {
        // With sessions: open-loop requests, then later turns (two sorted runs, merged
        // in one pass). The writer looks records up by id.
        expected.sort_by_key(|e| e.id);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::Builder::new()
        .name("llmib-log-writer".into())
        .spawn(move || writer::run(rx, log, expected))
        .map_err(|e| ReplayError::Internal(format!("starting the log writer: {e}")))?;
    Ok(LogSink { clock, tx, writer })
}

/// The options recorded in the log header (never header values or API keys).
fn replay_options(
    config: &ReplayConfig,
    any_ignore_eos: bool,
    warm: &WarmConnections,
) -> ReplayOptions {
    let openai = config.backend.is_openai();
    ReplayOptions {
        stream: config.stream,
        concurrency: config.concurrency,
        warmup: config.warmup,
        timeout_ms: config.timeout.map(|t| t.as_millis() as u64),
        time_scale: config.time_scale,
        max_requests: config.max_requests,
        duration_ms: config.duration.map(|d| d.as_millis() as u64),
        send_ignore_eos: any_ignore_eos,
        send_min_tokens: config.fields.min_tokens && openai,
        send_include_usage: config.fields.stream_usage && openai && config.stream,
        send_continuous_usage: config.fields.continuous_usage && openai && config.stream,
        prompt_as_token_ids: config.fields.prompt_token_ids,
        header_names: config
            .headers
            .iter()
            .map(|(k, _)| k.trim().to_string())
            .collect(),
        warm_connections: Some(warm.clone()),
        tls_insecure: config.tls.insecure,
        tls_cacert: config.tls.cacert.as_ref().map(|p| p.display().to_string()),
        pool_idle_timeout_ms: Some(config.pool_idle_timeout.as_millis() as u64),
        model_discovered: false,
        max_model_len: config.max_model_len,
        server_metrics: config.server_metrics.as_ref().map(|s| ServerMetricsRef {
            url: match s {
                ServerMetricsSource::Url(u) => formats::redact_url(u),
                ServerMetricsSource::Auto => String::new(),
            },
            interval_ns: config.server_metrics_interval.as_nanos() as u64,
        }),
        shard: None,
        start_at: None,
        merged_from: Vec::new(),
        offered_rate: config.offered_rate,
    }
}

fn log_header(
    config: &ReplayConfig,
    plan: &Plan,
    clock: &RunClock,
    options: ReplayOptions,
) -> LogHeader {
    LogHeader::new(
        TraceRef {
            name: plan.trace.name.clone(),
            sha256: plan.sha256.clone(),
            request_count: plan.trace.request_count,
            spec: Some(plan.trace.spec.clone()),
        },
        BackendInfo {
            kind: config.backend.as_str().to_string(),
            endpoint: formats::redact_url(&config.endpoint),
            model: config.model.clone(),
            simulated: config.simulated.clone(),
        },
        clock.started_unix_ns,
        env!("CARGO_PKG_VERSION"),
        sys::hostname(),
        options,
    )
}

/// A run whose requests have been handed over: what the drain phase needs to end it.
struct Running {
    shared: Arc<Shared>,
    tracker: TaskTracker,
    /// Cancelled once every request task ended: stops the grace timer and the progress.
    finished: CancellationToken,
    progress: Option<ProgressBar>,
    cpu_before: Duration,
    wall_start: Instant,
}

/// Phase 5: the state request tasks share, the grace timer and the progress bar, then
/// the dispatcher thread; returns once it has handed over (or logged `not_sent`) every
/// request, a session's later turns included (released by their predecessors' ends
/// over the `releases` channel, see `crate::run::schedule`).
async fn dispatch(
    config: &ReplayConfig,
    target: Target,
    wire: (reqwest::Client, ConnCount),
    log: &LogSink,
    schedule: Schedule,
    stop: &StopHandle,
) -> Result<(Running, DispatchReport), ReplayError> {
    let n = schedule.len() as u64;
    let (releases, inbox) = if schedule.has_sessions() {
        let (tx, rx) = std::sync::mpsc::channel();
        (Some(tx), Some(rx))
    } else {
        (None, None)
    };
    let shared = share(config, target, wire, log, stop, releases);
    let finished = CancellationToken::new();
    spawn_grace(&shared, &finished, config.grace);
    let progress = (config.progress && std::io::stderr().is_terminal())
        .then(|| spawn_progress(n, shared.live.clone(), finished.clone()));
    let cpu_before = sys::cpu_time(false);
    let wall_start = Instant::now();
    let tracker = TaskTracker::new();
    let duration_ns = config.duration.map(|d| d.as_nanos() as u64);
    let report = run_dispatcher(schedule, inbox, &shared, &tracker, duration_ns).await?;
    let running = Running {
        shared,
        tracker,
        finished,
        progress,
        cpu_before,
        wall_start,
    };
    Ok((running, report))
}

/// What every request task shares. Its stop and abort tokens are children of the
/// caller's: the run can stop itself (`--duration`) without touching the caller's.
fn share(
    config: &ReplayConfig,
    target: Target,
    (client, conns): (reqwest::Client, ConnCount),
    log: &LogSink,
    stop: &StopHandle,
    releases: Option<std::sync::mpsc::Sender<Release>>,
) -> Arc<Shared> {
    Arc::new(Shared {
        client,
        conns,
        url: target.url,
        headers: target.headers,
        backend: config.backend,
        stream: config.stream,
        timeout: config.timeout,
        clock: log.clock,
        slots: config
            .concurrency
            .map(|c| Arc::new(tokio::sync::Semaphore::new(c as usize))),
        stop: stop.stop.child_token(),
        abort: stop.abort.child_token(),
        tx: log.tx.clone(),
        live: Arc::new(LiveStats::new()),
        releases,
    })
}

/// Grace period: once dispatching stops early, in-flight requests get `grace`, then the
/// run's abort token cancels them.
fn spawn_grace(shared: &Shared, finished: &CancellationToken, grace: Duration) {
    let (stop, abort, finished) = (shared.stop.clone(), shared.abort.clone(), finished.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = finished.cancelled() => {}
            _ = stop.cancelled() => {
                tokio::select! {
                    _ = finished.cancelled() => {}
                    _ = tokio::time::sleep(grace) => abort.cancel(),
                }
            }
        }
    });
}

/// Runs the dispatcher on its own OS thread and waits for its report.
async fn run_dispatcher(
    schedule: Schedule,
    inbox: Option<std::sync::mpsc::Receiver<Release>>,
    shared: &Arc<Shared>,
    tracker: &TaskTracker,
    duration_ns: Option<u64>,
) -> Result<DispatchReport, ReplayError> {
    let (dtx, drx) = tokio::sync::oneshot::channel();
    let shared = shared.clone();
    let tracker = tracker.clone();
    let handle = tokio::runtime::Handle::current();
    std::thread::Builder::new()
        .name("llmib-dispatch".into())
        .spawn(move || {
            let r =
                crate::run::dispatch::run(schedule, inbox, shared, handle, tracker, duration_ns);
            let _ = dtx.send(r);
        })
        .map_err(|e| ReplayError::Internal(format!("starting the dispatcher: {e}")))?;
    drx.await
        .map_err(|_| ReplayError::Internal("the dispatcher thread died".into()))
}

/// The run once every request task ended and the trailer is written.
struct Drained {
    dispatch: DispatchReport,
    writer: WriterReport,
    wall: Duration,
    cpu_before: Duration,
    interrupted: bool,
}

/// Phase 6: waits for every request task, then has the writer write the trailer and
/// waits for it.
async fn drain(
    running: Running,
    log: LogSink,
    dreport: DispatchReport,
    stop: &StopHandle,
    output: &Path,
) -> Result<Drained, ReplayError> {
    let Running {
        shared,
        tracker,
        finished,
        progress,
        cpu_before,
        wall_start,
    } = running;
    tracker.close();
    tracker.wait().await;
    let ended_ns = shared.clock.now_ns();
    let wall = wall_start.elapsed();
    finished.cancel();
    let aborted = shared.abort.clone();
    drop(shared);

    let interrupted = dreport.cut_short || stop.is_stopped();
    let complete = dreport.not_sent == 0 && !aborted.is_cancelled() && !interrupted;
    let LogSink { tx, writer, .. } = log;
    let _ = tx.send(WriterMsg::Finish { complete, ended_ns });
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
            path: output.to_path_buf(),
            message: e,
        });
    }
    Ok(Drained {
        dispatch: dreport,
        writer: wreport,
        wall,
        cpu_before,
        interrupted,
    })
}

/// Phase 7: the summary, with the client's health check, the connections and the
/// run's warnings.
fn finish(output: &Path, d: Drained, conn: Connected, burst: bool) -> ReplaySummary {
    let connections = Connections {
        opened_during_run: conn.count.opened().saturating_sub(conn.opened_before),
        warm: conn.warm,
    };
    let mut warnings = conn.warnings;
    let cpu = CpuUse::measure(d.cpu_before, d.dispatch.cpu, d.wall);
    let mut w = d.writer;
    let handoff = sorted(std::mem::take(&mut w.handoff_lateness_ns));
    let lat = sorted(std::mem::take(&mut w.lateness_ns));
    let p99 = percentile(&lat, 0.99);
    let lateness = Lateness { p99, burst };
    warn_client_health(
        &mut warnings,
        lateness,
        &handoff,
        d.dispatch.realtime,
        &cpu,
        d.wall,
    );
    let anomalies = w.duplicates_dropped + w.missing_filled;
    warn_run(&mut warnings, &d.dispatch, &w);
    ReplaySummary {
        log: output.to_path_buf(),
        records: w.records,
        by_outcome: w.by_outcome,
        complete: w.trailer.as_ref().is_some_and(|t| t.complete),
        interrupted: d.interrupted,
        wall: d.wall,
        lateness_p50_ns: percentile(&lat, 0.5),
        lateness_p99_ns: p99,
        lateness_max_ns: lat.last().copied().unwrap_or(0),
        handoff_p99_ns: percentile(&handoff, 0.99),
        handoff_max_ns: handoff.last().copied().unwrap_or(0),
        dispatch_delay_max_ns: w.dispatch_delay_ns.iter().copied().max().unwrap_or(0),
        output_tokens: w.output_tokens,
        cpu_time: cpu.time,
        cpu_bound: cpu.bound,
        internal_anomalies: anomalies,
        connections,
        warnings,
    }
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

/// The process's CPU time over the run, without the dispatcher thread's spinning.
struct CpuUse {
    time: Duration,
    cores: f64,
    /// Nearly all the machine's CPU was used: timings may include client delay.
    bound: bool,
}

impl CpuUse {
    fn measure(before: Duration, dispatcher: Duration, wall: Duration) -> Self {
        let time = sys::cpu_time(false)
            .saturating_sub(before)
            .saturating_sub(dispatcher);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let bound = wall > Duration::from_millis(500)
            && time.as_secs_f64() > 0.85 * cores * wall.as_secs_f64();
        CpuUse { time, cores, bound }
    }
}

/// Dispatch lateness as the health check reads it.
#[derive(Debug, Clone, Copy)]
struct Lateness {
    p99: u64,
    /// Every request was due at once (see [`crate::run::prepare::Plan::burst`]).
    burst: bool,
}

/// Warnings about the client itself: late dispatch, no real-time dispatcher, CPU-bound.
fn warn_client_health(
    warnings: &mut Vec<String>,
    lateness: Lateness,
    handoff_sorted: &[u64],
    realtime: bool,
    cpu: &CpuUse,
    wall: Duration,
) {
    if let Some(w) = lateness_warning(lateness, wall) {
        warnings.push(w);
    }
    if !realtime && percentile(handoff_sorted, 0.99) > 100_000 {
        warnings.push(
            "the dispatcher thread could not get real-time priority (needs CAP_SYS_NICE or \
             RLIMIT_RTPRIO): its wake-ups were delayed by other processes"
                .to_string(),
        );
    }
    if cpu.bound {
        warnings.push(format!(
            "the client was CPU-bound ({:.0}% of {} cores): latencies include client delay; \
             run the client on its own machine or lower the load",
            100.0 * cpu.time.as_secs_f64() / wall.as_secs_f64(),
            cpu.cores
        ));
    }
}

/// The late-dispatch warning, if the lateness distorts what the run measures. A trace
/// with arrival times asks for each request at its instant: p99 over 1 ms means the
/// arrivals were not the trace's. A burst asks for every request at once, which no
/// client does (1,000 requests take tens of milliseconds to hand out on two cores):
/// its lateness is the time the burst took to send, and it matters only when that is a
/// noticeable part of the run (over 1% of it: the server's first answers then overlap
/// a ramp of arrivals, and throughput includes it).
fn lateness_warning(lateness: Lateness, wall: Duration) -> Option<String> {
    let wall_ns = wall.as_nanos().min(u64::MAX as u128) as u64;
    if lateness.burst {
        return (lateness.p99 > wall_ns / 100).then(|| {
            format!(
                "sending the burst took {} at p99, {:.1}% of the run: the first requests \
                 were served before the last were sent, and throughput includes that ramp",
                fmt_ns(lateness.p99),
                100.0 * lateness.p99 as f64 / wall_ns.max(1) as f64
            )
        });
    }
    (lateness.p99 > 1_000_000).then(|| {
        format!(
            "dispatch lateness p99 is {} (> 1 ms): the client fell behind the trace; \
             arrival times in this run are not what the trace asked for",
            fmt_ns(lateness.p99)
        )
    })
}

/// Warnings about the run: requests not sent, records the writer had to fix.
fn warn_run(warnings: &mut Vec<String>, dreport: &DispatchReport, w: &WriterReport) {
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
    if w.duplicates_dropped + w.missing_filled > 0 {
        warnings.push(format!(
            "internal error: {} duplicate and {} missing records were fixed by the writer",
            w.duplicates_dropped, w.missing_filled
        ));
    }
}

#[cfg(test)]
mod lateness_tests {
    use super::*;

    const MS: u64 = 1_000_000;

    #[test]
    fn a_trace_with_arrival_times_warns_above_one_millisecond() {
        let wall = Duration::from_secs(100);
        let late = |p99| lateness_warning(Lateness { p99, burst: false }, wall);
        assert!(late(MS).is_none());
        assert!(late(MS + 1).unwrap().contains("fell behind"));
    }

    #[test]
    fn a_burst_warns_only_when_sending_it_is_over_one_percent_of_the_run() {
        // 200 ms to send 1,000 requests at once in a 100 s run: 0.2%, no distortion.
        let late =
            |p99, secs| lateness_warning(Lateness { p99, burst: true }, Duration::from_secs(secs));
        assert!(late(200 * MS, 100).is_none());
        assert!(late(1000 * MS, 100).is_none());
        let w = late(200 * MS, 10).unwrap();
        assert!(w.contains("2.0% of the run"), "{w}");
    }
}
