//! `--server-metrics` in a run: which URL, whether it answers before the clock starts,
//! and the scraper's start and report.
//!
//! The decision at start (documented in `replayer/README.md`): an explicit URL that does
//! not answer with the Prometheus text format fails the run before anything is sent
//! (the user asked for those samples; a run without them would be a wasted run);
//! `auto` (`/metrics` on the endpoint's host) that does not, or that holds no series of
//! the kept families, is a one-line warning and the run goes on without samples.
//! Failures during the run are samples with an error, counted in the run's warnings.

use std::path::Path;
use std::time::Duration;

use formats::{ServerMetricsHeader, ServerMetricsRef, ServerMetricsWriter, sidecar_path};

use super::error::ServerMetricsError;
use super::fetch::{auto_url, client, fetch, parse_url};
use super::queue::keep;
use super::scraper::{ScrapeReport, Scraper};
use crate::clock::RunClock;
use crate::config::{ReplayConfig, ServerMetricsSource};
use crate::error::ReplayError;

/// Shortest `--server-metrics-interval` (a scrape takes about a millisecond locally).
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// How long one scrape may take before it counts as failed.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// A metrics endpoint that answered before the run: ready to be scraped.
pub(crate) struct Prepared {
    client: reqwest::Client,
    url: reqwest::Url,
    interval: Duration,
}

impl Prepared {
    /// What the log header records.
    pub(crate) fn reference(&self) -> ServerMetricsRef {
        ServerMetricsRef {
            url: formats::redact_url(self.url.as_str()),
            interval_ns: self.interval.as_nanos() as u64,
        }
    }

    /// Creates the sidecar of the log at `log` and starts scraping on `clock`. The
    /// sidecar follows the log's output rules (checked before the run, in
    /// `run::validate`): an existing one is replaced only with `overwrite`
    /// (`--force`), and a symbolic link at its path is never followed.
    pub(crate) fn start(
        self,
        clock: RunClock,
        log: &Path,
        overwrite: bool,
    ) -> Result<Scraper, ReplayError> {
        let path = sidecar_path(log);
        let header = ServerMetricsHeader::new(
            clock.started_unix_ns,
            formats::redact_url(self.url.as_str()),
            self.interval.as_nanos() as u64,
        );
        let writer = if overwrite {
            ServerMetricsWriter::create(&path, &header)
        } else {
            ServerMetricsWriter::create_new(&path, &header)
        };
        let writer = writer.map_err(|e| ReplayError::Log {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Scraper::start(self.client, self.url, self.interval, clock, writer)
            .map_err(|e| ReplayError::Internal(format!("starting the metrics scraper: {e}")))
    }
}

/// Refuses a scrape interval below [`MIN_INTERVAL`] (phase 1, before anything is sent).
pub(crate) fn check_interval(config: &ReplayConfig) -> Result<(), ReplayError> {
    if config.server_metrics.is_some() && config.server_metrics_interval < MIN_INTERVAL {
        return Err(ReplayError::Config(format!(
            "--server-metrics-interval must be at least {} ms",
            MIN_INTERVAL.as_millis()
        )));
    }
    Ok(())
}

/// Checks the interval and the endpoint (one scrape) before the run. `Ok(None)`: no
/// scraping (not asked, or `auto` found nothing; then the warning says why).
pub(crate) async fn prepare(
    config: &ReplayConfig,
) -> Result<(Option<Prepared>, Option<String>), ReplayError> {
    let Some(source) = &config.server_metrics else {
        return Ok((None, None));
    };
    check_interval(config)?;
    let interval = config.server_metrics_interval;
    let config_error = |e: ServerMetricsError| ReplayError::Config(e.to_string());
    let url = match source {
        ServerMetricsSource::Auto => auto_url(&config.endpoint),
        ServerMetricsSource::Url(u) => parse_url(u),
    }
    .map_err(config_error)?;
    let client = client(&config.tls, &url, SCRAPE_TIMEOUT).map_err(config_error)?;
    let probe = match fetch(&client, &url).await {
        Ok(series) if series.iter().any(keep) => Ok(()),
        Ok(_) => Err(format!(
            "server metrics {}: no vllm:, sglang: or tgi_ series",
            formats::redact_url(url.as_str())
        )),
        Err(e) => Err(e.to_string()),
    };
    match (probe, source) {
        (Ok(()), _) => Ok((
            Some(Prepared {
                client,
                url,
                interval,
            }),
            None,
        )),
        (Err(m), ServerMetricsSource::Auto) => Ok((
            None,
            Some(format!("{m}; --server-metrics auto: not scraping")),
        )),
        (Err(m), ServerMetricsSource::Url(_)) => Err(ReplayError::Config(m)),
    }
}

impl ScrapeReport {
    /// The run's warnings about its samples.
    pub(crate) fn warnings(&self, log: &Path) -> Vec<String> {
        let mut w = Vec::new();
        if self.failed > 0 {
            w.push(format!(
                "server metrics: {} of {} scrapes failed (first: {})",
                self.failed,
                self.samples,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        if let Some(e) = &self.write_error {
            w.push(format!(
                "server metrics: {} is incomplete: {e}",
                sidecar_path(log).display()
            ));
        }
        w
    }
}
