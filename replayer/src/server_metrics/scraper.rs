//! The scraper of a run: `GET /metrics` every interval, on the run's clock, into the
//! sidecar file next to the run log (`formats::ServerMetricsWriter`).
//!
//! It runs on an OS thread of its own with its own single-threaded tokio runtime and its
//! own HTTP client (one connection): nothing it does (the request, parsing, the file
//! write) runs on the dispatcher thread or competes with request tasks on the run's
//! runtime, so it cannot delay a request's dispatch. Scrapes start at run-clock
//! instants `k x interval` (a late one skips the missed ticks rather than bursting), and
//! each sample is stamped with its start and end on the run clock. A failed scrape is a
//! sample with its `error`, so gaps are visible; the run goes on.

use std::time::Duration;

use formats::{MetricSample, ServerMetricsWriter};
use tokio::sync::watch;

use super::fetch::fetch;
use super::queue::{QueueState, keep};
use crate::clock::RunClock;

/// What the scraper did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ScrapeReport {
    pub samples: u64,
    /// Samples that hold an error (failed scrapes).
    pub failed: u64,
    /// The first failure's message.
    pub first_error: Option<String>,
    /// Writing the sidecar failed (scraping stopped there).
    pub write_error: Option<String>,
}

/// A running scraper; [`Scraper::stop`] ends it and returns its report.
pub(crate) struct Scraper {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<ScrapeReport>,
}

impl Scraper {
    /// Starts scraping `url` every `interval` from the run clock's start.
    pub(crate) fn start(
        client: reqwest::Client,
        url: reqwest::Url,
        interval: Duration,
        clock: RunClock,
        writer: ServerMetricsWriter,
    ) -> std::io::Result<Scraper> {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("llmib-metrics".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match rt {
                    Ok(rt) => rt.block_on(run(client, url, interval, clock, writer, stopped)),
                    Err(e) => ScrapeReport {
                        write_error: Some(format!("starting the scraper: {e}")),
                        ..Default::default()
                    },
                }
            })?;
        Ok(Scraper { stop, thread })
    }

    /// Stops scraping (a scrape under way is abandoned) and waits for the thread.
    pub(crate) async fn stop(self) -> ScrapeReport {
        let _ = self.stop.send(true);
        let thread = self.thread;
        tokio::task::spawn_blocking(move || thread.join())
            .await
            .ok()
            .and_then(|r| r.ok())
            .unwrap_or_else(|| ScrapeReport {
                write_error: Some("the scraper thread panicked".into()),
                ..Default::default()
            })
    }
}

async fn run(
    client: reqwest::Client,
    url: reqwest::Url,
    interval: Duration,
    clock: RunClock,
    mut writer: ServerMetricsWriter,
    mut stopped: watch::Receiver<bool>,
) -> ScrapeReport {
    let mut report = ScrapeReport::default();
    let start = tokio::time::Instant::from_std(clock.instant_at(0));
    let mut ticks = tokio::time::interval_at(start, interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tokio::select! {
            _ = stopped.changed() => return report,
            _ = ticks.tick() => {}
        }
        let sample = tokio::select! {
            _ = stopped.changed() => return report,
            s = scrape(&client, &url, &clock) => s,
        };
        if let Some(e) = &sample.error {
            report.failed += 1;
            report.first_error.get_or_insert_with(|| e.clone());
        }
        if let Err(e) = writer.write(&sample) {
            report.write_error = Some(e.to_string());
            return report;
        }
        report.samples += 1;
    }
}

/// One scrape, as a sample on the run clock.
async fn scrape(client: &reqwest::Client, url: &reqwest::Url, clock: &RunClock) -> MetricSample {
    let start_ns = clock.now_ns();
    let result = fetch(client, url).await;
    let end_ns = clock.now_ns();
    match result {
        Ok(series) => {
            let state = QueueState::from_series(&series);
            MetricSample {
                start_ns,
                end_ns,
                error: None,
                running: state.running,
                waiting: state.waiting,
                kv_usage: state.kv_usage,
                series: series
                    .iter()
                    .filter(|s| keep(s))
                    .map(|s| (s.key(), s.value))
                    .collect(),
            }
        }
        Err(e) => MetricSample {
            start_ns,
            end_ns,
            error: Some(e.to_string()),
            ..Default::default()
        },
    }
}
