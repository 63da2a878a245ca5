//! Phase 5 of a run (see `run/mod.rs`): the state every request task shares, the grace
//! timer, the progress bar, and the dispatcher thread that hands every request over at
//! its time.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ReplayConfig;
use crate::error::ReplayError;
use crate::net::conn_count::ConnCount;
use crate::run::dispatch::DispatchReport;
use crate::run::open_log::LogSink;
use crate::run::prepared::Release;
use crate::run::progress::spawn_progress;
use crate::run::request::Shared;
use crate::run::schedule::Schedule;
use crate::run::setup::Target;
use crate::run::stats::LiveStats;
use crate::run::stop::StopHandle;
use crate::run::sys;

/// A run whose requests have been handed over: what the drain phase needs to end it.
pub(super) struct Running {
    pub(super) shared: Arc<Shared>,
    pub(super) tracker: TaskTracker,
    /// Cancelled once every request task ended: stops the grace timer and the progress.
    pub(super) finished: CancellationToken,
    pub(super) progress: Option<ProgressBar>,
    pub(super) cpu_before: Duration,
    pub(super) wall_start: Instant,
}

/// Phase 5: the state request tasks share, the grace timer and the progress bar, then
/// the dispatcher thread; returns once it has handed over (or logged `not_sent`) every
/// request, a session's later turns included (released by their predecessors' ends
/// over the `releases` channel, see `crate::run::schedule`).
pub(super) async fn dispatch(
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
