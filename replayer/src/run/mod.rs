//! A replay: its phases, and everything that runs from the first trace request read
//! to the last record written.
//!
//! [`crate::replay`], the public entry point, is [`replay`] here: a list of phase calls,
//! each phase one function whose arguments and result say what it takes from the earlier
//! ones, in the order they run:
//! * before the clock (`setup.rs`): validate, discover the model, identify the server,
//!   prepare the requests (`prepare.rs`), connect and warm up connections;
//! * `open_log.rs`: the clock starts, the log and its writer thread (`writer.rs`);
//! * `launch.rs`: the dispatcher thread (`dispatch.rs`, over the `schedule.rs` of
//!   [`prepared::Prepared`] requests) hands each request to its task (`request.rs`);
//! * `finish.rs`: drain (every task waited for, the trailer written), then the summary
//!   (`summary.rs`) with the client's health check (`health.rs`).
//!
//! Whatever can fail on the user's input fails before anything is sent (validate,
//! prepare, connect, open the log). The clock starts when the log is opened, 50 ms ahead,
//! so the first deadline is not already past when the dispatcher gets to it; with
//! `--start-at`, at the given instant (connect waits until shortly before it, see
//! `start_at.rs`). From then on every trace request ends as one record and the trailer
//! is written, whatever happens; only a failing log (or a crashed thread) ends the run
//! with an error. Beside the phases: the run clock's wall-clock start (`start_at.rs`),
//! live counters (`stats.rs`) and the progress bar (`progress.rs`), the stop handle
//! (`stop.rs`), OS calls (`sys.rs`).

pub(crate) mod dispatch;
mod finish;
mod health;
mod launch;
mod open_log;
pub(crate) mod prepare;
pub(crate) mod prepared;
pub(crate) mod progress;
pub(crate) mod request;
pub(crate) mod schedule;
mod setup;
pub(crate) mod start_at;
pub(crate) mod stats;
pub(crate) mod stop;
pub(crate) mod summary;
pub(crate) mod sys;
pub(crate) mod writer;

use std::path::Path;
use std::time::Duration;

use crate::config::{ReplayConfig, ServerMetricsSource};
use crate::error::ReplayError;
use crate::net::{cache_reset, standby};
use crate::run::finish::{drain, finish};
use crate::run::launch::dispatch;
use crate::run::open_log::{ServerState, open_log};
use crate::run::setup::{
    close_after_streams, connect, discover_model, identify, prepare, reset_cache, validate,
};
use crate::run::stop::StopHandle;
use crate::run::summary::ReplaySummary;
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
    // Every streamed request needs its own connection against a server that closes
    // after streams: none is coming back to wait for, and standbys are kept instead.
    conn.count.guard_spares(close_note.is_none());
    let standby = close_note.is_some().then(|| {
        let (url, headers) = (conn.probe.clone(), target.headers.clone());
        let (standby, max_age) = (conn.standby.clone(), config.pool_idle_timeout);
        standby::keep(client.clone(), url, headers, standby, max_age)
    });
    let burst = plan.burst;
    let wire = (client, conn.count.clone());
    let (running, dreport) = dispatch(&config, target, wire, &log, plan.schedule, &stop).await?;
    let drained = drain(running, log, dreport, &stop, &config.output).await;
    if let Some(keeper) = standby {
        keeper.stop().await;
    }
    let drained = drained?;
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
