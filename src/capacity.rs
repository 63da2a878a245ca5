//! What `llmib sweep` and `llmib search` share: the trace's rate, one replay at an
//! offered rate into a capacity directory (reusing a complete log of the same run),
//! its point on the curve, the cool-down between runs and the progress line.
//!
//! Offered rate by time scaling: the rate of the first `n` requests of a trace is `n /
//! (their arrival span)` ([`analyzer::capacity::rate_of`]); offered rate `R` replays
//! them at time scale `R x K / rate`, `K` the in-process simulator's speed-up (1 for a
//! real server). Rates, latencies and durations the user gives and reads are in the
//! profile's time: a sped-up simulator is `K` times faster, so its runs are `K` times
//! denser and shorter, and [`analyzer::capacity`] puts their numbers back.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use analyzer::capacity::manifest::{FORMAT, Manifest, ManifestPrefixCache, ManifestTrace};
use analyzer::capacity::{Point, SloTargets};
use formats::{LogEnd, SimulatedInfo};
use replayer::{BackendKind, ReplayConfig, StopHandle};

use crate::capacity_settings::{CapacitySettings, CapacityTarget};
use crate::pipeline::PipelineError;

/// Lowest offered rate a capacity run accepts, requests/s: below it a run of a few
/// requests would last for hours and its arrival times approach the log's range.
pub const MIN_RATE: f64 = 1e-3;
/// Highest offered rate a capacity run accepts, requests/s: above it arrival gaps fall
/// below a microsecond, shorter than a request takes to be sent.
pub const MAX_RATE: f64 = 1e6;

/// Checks an offered rate given by the user (`--start-rate`, `--rates`, `--grid`):
/// a number in [`MIN_RATE`, `MAX_RATE`] requests/s. The error is one line naming `what`.
pub fn check_rate(what: &str, r: f64) -> Result<f64, String> {
    if r.is_finite() && (MIN_RATE..=MAX_RATE).contains(&r) {
        Ok(r)
    } else {
        Err(format!(
            "{what}: expected a rate between {MIN_RATE} and {MAX_RATE:.0} requests/s, got {}",
            formats::readable(r)
        ))
    }
}

/// The trace: identity and arrival times.
#[derive(Debug, Clone)]
pub struct TraceInfo {
    pub path: PathBuf,
    pub name: String,
    pub sha256: String,
    pub arrivals: Vec<u64>,
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> PipelineError {
    PipelineError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl TraceInfo {
    pub fn load(path: &Path) -> Result<TraceInfo, PipelineError> {
        let (_, requests) = formats::read_trace(path).map_err(|e| file_err(path, e))?;
        let info = TraceInfo {
            path: path.to_path_buf(),
            name: crate::suite::Suite::trace_stem(path),
            sha256: formats::sha256_file(path).map_err(|e| file_err(path, e))?,
            arrivals: requests.iter().map(|r| r.arrival_ns).collect(),
        };
        info.rate(info.len())?;
        Ok(info)
    }

    pub fn len(&self) -> u64 {
        self.arrivals.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.arrivals.is_empty()
    }

    /// The rate of the first `n` requests: `n / their arrival span`.
    pub fn rate(&self, n: u64) -> Result<f64, PipelineError> {
        let n = (n as usize).min(self.arrivals.len());
        analyzer::capacity::rate_of(self.arrivals[..n].iter().copied()).ok_or_else(|| {
            file_err(
                &self.path,
                format!(
                    "the first {n} requests arrive at once (a burst) or are too few: no rate to \
                     scale; capacity runs need a trace with arrival times"
                ),
            )
        })
    }

    pub fn manifest(&self) -> ManifestTrace {
        let span = |a: &[u64]| match (a.first(), a.last()) {
            (Some(f), Some(l)) => (l - f) as f64 / 1e9,
            _ => 0.0,
        };
        ManifestTrace {
            path: self.path.display().to_string(),
            name: self.name.clone(),
            sha256: self.sha256.clone(),
            requests: self.len(),
            span_s: span(&self.arrivals),
            rate: self.rate(self.len()).unwrap_or(0.0),
        }
    }
}

/// One replay's outcome.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub log: PathBuf,
    pub time_scale: f64,
    pub requests: u64,
    /// A complete log of the same run was found and reused.
    pub reused: bool,
    pub complete: bool,
    /// Stopped by a signal.
    pub interrupted: bool,
    pub point: Point,
}

/// A capacity session: the target (started when simulated) and the runs made.
pub struct Bench {
    pub settings: CapacitySettings,
    pub trace: TraceInfo,
    pub endpoint: String,
    pub simulated: Option<SimulatedInfo>,
    sim: Option<simulator::SimServer>,
    /// The engine that makes every run in virtual time ([`CapacityTarget::Twin`]).
    twin: Option<Twin>,
    pub stop: StopHandle,
    pub progress: Progress,
    /// The cool-down still asks the server's metrics whether it is idle (cleared once
    /// it found none, so a server without metrics costs one failed poll, not one a run).
    metrics_idle: std::sync::atomic::AtomicBool,
    /// Log names given so far (unique per rate, see [`crate::capacity_dir::RunNames`]).
    names: crate::capacity_dir::RunNames,
    /// How the prefix-cache resets went so far (see [`Bench::prefix_cache_note`]).
    resets: std::sync::Mutex<Resets>,
}

/// A twin's engine: the profile's model under its scheduling policy.
struct Twin {
    params: simulator::EngineParams,
    policy: simulator::Policy,
}

/// The prefix-cache resets of the runs so far, and what was said about them.
#[derive(Debug, Default)]
struct Resets {
    /// `ok` while every reset was; else the first other outcome.
    outcome: Option<String>,
    request: Option<String>,
    announced: bool,
    warned: bool,
}

/// Longest wait for the server to report idle after a run (beyond `--pause`).
const IDLE_LIMIT: Duration = Duration::from_secs(60);

impl Bench {
    /// Loads the trace, creates the directory, starts the simulator or checks the
    /// endpoint. Call from a multi-threaded tokio runtime.
    pub async fn start(
        settings: CapacitySettings,
        stop: StopHandle,
    ) -> Result<Bench, PipelineError> {
        let trace = TraceInfo::load(&settings.trace)?;
        crate::capacity_dir::check_dir(&settings, &trace.sha256)?;
        std::fs::create_dir_all(&settings.dir).map_err(|e| file_err(&settings.dir, e))?;
        let mut twin = None;
        let (endpoint, simulated, sim) = match &settings.target {
            CapacityTarget::Endpoint(e) => {
                replayer::check_endpoint_with(e, &settings.tls, Duration::from_secs(5)).await?;
                (e.clone(), None, None)
            }
            CapacityTarget::Twin { profile } => {
                let (t, info) = Twin::load(profile, settings.backend)?;
                twin = Some(t);
                (format!("virtual:{profile}"), Some(info), None)
            }
            CapacityTarget::Simulated { profile, speedup } => {
                let dialect = match settings.backend {
                    BackendKind::OpenaiChat
                    | BackendKind::OpenaiResponses
                    | BackendKind::Anthropic => "openai".to_string(),
                    b => b.as_str().to_string(),
                };
                let p = simulator::Profile::load(profile)?.sped_up(*speedup)?;
                let config = simulator::SimConfig::new(dialect.parse()?, p);
                let server = simulator::start(config).await?;
                let info = SimulatedInfo {
                    dialect,
                    profile: profile.clone(),
                    speedup: (*speedup != 1.0).then_some(*speedup),
                    virtual_time: false,
                };
                (server.base_url(), Some(info), Some(server))
            }
        };
        let progress = Progress::new(settings.progress);
        if !settings.reset_prefix_cache {
            println!(
                "prefix cache: not reset between runs (--no-reset-prefix-cache): later runs \
                 may start with the cache the earlier ones warmed"
            );
        }
        Ok(Bench {
            settings,
            trace,
            endpoint,
            simulated,
            sim,
            twin,
            stop,
            progress,
            metrics_idle: std::sync::atomic::AtomicBool::new(true),
            names: Default::default(),
            resets: Default::default(),
        })
    }

    /// Stops the in-process simulator.
    pub async fn shutdown(self) -> Result<(), PipelineError> {
        if let Some(s) = self.sim {
            s.shutdown().await?;
        }
        Ok(())
    }

    /// The time scale that offers `rate` (profile time) with the first `n` requests.
    pub fn time_scale(&self, rate: f64, n: u64) -> Result<f64, PipelineError> {
        Ok(rate * self.settings.speedup() / self.trace.rate(n)?)
    }

    /// Wall time a run of the first `n` requests at `rate` should take (their arrival
    /// span at its time scale), for the ETA and the budget.
    pub fn expected_wall(&self, rate: f64, n: u64) -> Duration {
        let n = n.min(self.trace.len());
        let secs = n as f64 / (rate * self.settings.speedup());
        Duration::from_secs_f64(secs.clamp(0.0, 1e9))
    }

    /// Replays the first `n` requests offered at `rate` into `DIR/rate-<rate>.msgpack`
    /// (`-<repeat>` after the rate from the second run at a rate on), or reuses a
    /// complete log of that same run; returns its point. A file there that is not this
    /// run is replaced only as [`crate::capacity_dir::check_replace`] allows.
    pub async fn run(&self, rate: f64, n: u64, repeat: u32) -> Result<RunOutcome, PipelineError> {
        let n = n.min(self.trace.len());
        let time_scale = self.time_scale(rate, n)?;
        let name = self.names.name(rate, repeat);
        let log = self.settings.dir.join(format!("{name}.msgpack"));
        let mut reused = false;
        let mut interrupted = false;
        // A twin's run takes less than a second: made again every time, so that a
        // profile changed since (re-calibrated under the same name) is never mixed in.
        if self.twin.is_none() && !self.settings.force && self.is_same_run(&log, time_scale, n) {
            reused = true;
        } else {
            crate::capacity_dir::check_replace(&log, &self.settings, &self.trace.sha256)?;
            let config = self.replay_config(&log, rate, time_scale, n);
            if let Some(twin) = &self.twin {
                twin.run(&self.trace.path, &config)?;
            } else {
                let summary = replayer::replay(&self.trace.path, config, self.stop.clone()).await?;
                interrupted = summary.interrupted && self.stop.is_stopped();
            }
        }
        let point = point_of(&log)?;
        let read = formats::read_log(&log).ok();
        let complete = read
            .as_ref()
            .is_some_and(|r| matches!(&r.end, LogEnd::Trailer(t) if t.complete));
        if let Some(r) = read
            .as_ref()
            .and_then(|r| r.header.prefix_cache_reset.as_ref())
        {
            self.note_reset(r);
        }
        Ok(RunOutcome {
            log,
            time_scale,
            requests: n,
            reused,
            complete,
            interrupted,
            point,
        })
    }

    /// True when `log` is a complete run of this trace, backend and kind of target at
    /// this time scale and request count.
    fn is_same_run(&self, log: &Path, time_scale: f64, n: u64) -> bool {
        let Ok(run) = formats::read_log(log) else {
            return false;
        };
        let complete = matches!(&run.end, LogEnd::Trailer(t) if t.complete);
        let h = &run.header;
        let target = match (&self.simulated, &h.backend.simulated) {
            (Some(a), Some(b)) => a == b,
            (None, None) => h.backend.endpoint == formats::redact_url(&self.endpoint),
            _ => false,
        };
        let n_in_log = h.options.max_requests.unwrap_or(h.trace.request_count);
        complete
            && target
            && h.trace.sha256 == self.trace.sha256
            && h.backend.kind == self.settings.backend.as_str()
            && (h.options.time_scale - time_scale).abs() <= 1e-9 * time_scale
            && n_in_log.min(self.trace.len()) == n
            && h.prefix_cache_reset.is_some() == self.settings.reset_prefix_cache
    }

    /// Takes in a run's prefix-cache reset: says once that resets happen (stdout), or
    /// warns once that they do not (stderr).
    fn note_reset(&self, r: &formats::PrefixCacheReset) {
        let mut st = self.resets.lock().unwrap_or_else(|e| e.into_inner());
        if st.request.is_none() {
            st.request = r.request.clone();
        }
        if st.outcome.as_deref().is_none_or(|o| o == "ok") {
            st.outcome = Some(r.outcome.clone());
        }
        if r.is_ok() && !st.announced {
            st.announced = true;
            println!(
                "prefix cache: reset before each run ({}); --no-reset-prefix-cache keeps it \
                 between runs",
                r.request.as_deref().unwrap_or("?")
            );
        }
        if let Some(w) = replayer::prefix_cache_reset_warning(r)
            && !st.warned
        {
            st.warned = true;
            eprintln!(
                "warning: {w}: later rates run warm, with the cache the earlier ones left \
                 (their cache states differ)"
            );
        }
    }

    /// A new manifest of `kind` (`sweep`, `search`) for this session's trace and target,
    /// with the command's `settings`, its `slo` and `goodput`, and no runs yet.
    pub fn manifest(
        &self,
        kind: &str,
        settings: serde_json::Value,
        slo: Option<SloTargets>,
        goodput: Option<f64>,
    ) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: 1,
            kind: kind.into(),
            trace: self.trace.manifest(),
            backend: self.settings.backend.as_str().into(),
            endpoint: formats::redact_url(&self.endpoint),
            model: self.settings.model.clone(),
            simulated: self.simulated.clone(),
            speedup: self.settings.speedup(),
            settings,
            slo,
            goodput,
            runs: Vec::new(),
            result: None,
            prefix_cache: self.prefix_cache_note(),
        }
    }

    /// The manifest's `prefix_cache`: whether resets were asked for and how they went.
    pub fn prefix_cache_note(&self) -> Option<ManifestPrefixCache> {
        if !self.settings.reset_prefix_cache {
            return Some(ManifestPrefixCache {
                reset: "off".into(),
                outcome: None,
                request: None,
                warm_between_runs: true,
            });
        }
        let st = self.resets.lock().unwrap_or_else(|e| e.into_inner());
        Some(ManifestPrefixCache {
            reset: "each_run".into(),
            outcome: st.outcome.clone(),
            request: st.request.clone(),
            warm_between_runs: st.outcome.as_deref().is_some_and(|o| o != "ok"),
        })
    }

    fn replay_config(&self, log: &Path, rate: f64, time_scale: f64, n: u64) -> ReplayConfig {
        let s = &self.settings;
        let k = s.speedup();
        let mut c = ReplayConfig::new(s.backend, self.endpoint.clone(), log.to_path_buf());
        c.overwrite = true;
        c.model = s.model.clone();
        c.concurrency = s.concurrency;
        c.timeout = s.timeout.map(|d| d.div_f64(k));
        c.duration = s.duration.map(|d| d.div_f64(k));
        c.time_scale = time_scale;
        c.max_requests = (n < self.trace.len()).then_some(n);
        c.offered_rate = Some(rate);
        c.simulated = self.simulated.clone();
        c.progress = s.progress;
        c.tls = s.tls.clone();
        c.api_key = s.api_key.clone();
        if let Some(t) = s.pool_idle_timeout {
            c.pool_idle_timeout = t;
        }
        c.identify_server = true;
        c.reset_prefix_cache = s.reset_prefix_cache;
        c
    }

    /// The cool-down between two runs: the pause, then, when the server exports
    /// Prometheus metrics at `/metrics` on the endpoint's host (vLLM, SGLang, TGI, the
    /// simulator), until they report no running and no waiting request (at most
    /// [`IDLE_LIMIT`]; `replayer::server_metrics::wait_until_idle`). Cut short by a stop.
    pub async fn cool_down(&self) {
        if self.twin.is_some() {
            return; // every virtual run starts with an idle engine of its own
        }
        self.pause().await;
        if !self.stop.is_stopped() {
            tokio::select! {
                _ = self.wait_idle() => {}
                _ = self.stopped() => {}
            }
        }
    }

    /// Waits for the server's metrics to say it is idle; a server without usable
    /// metrics is not asked again (one line says so), one still busy at the limit is
    /// a warning.
    async fn wait_idle(&self) {
        use replayer::server_metrics::{ServerMetricsError, auto_url, wait_until_idle_with};
        use std::sync::atomic::Ordering;
        if !self.metrics_idle.load(Ordering::Relaxed) {
            return;
        }
        let Ok(url) = auto_url(&self.endpoint) else {
            return;
        };
        match wait_until_idle_with(url.as_str(), &self.settings.tls, IDLE_LIMIT).await {
            Ok(_) => {}
            Err(e @ ServerMetricsError::NotIdle { .. }) => eprintln!("warning: cool-down: {e}"),
            Err(e) => {
                self.metrics_idle.store(false, Ordering::Relaxed);
                eprintln!("note: cool-down by --pause alone ({e})");
            }
        }
    }

    /// Resolves once the stop handle is stopped (it has no awaitable side).
    async fn stopped(&self) {
        while !self.stop.is_stopped() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn pause(&self) {
        if self.settings.pause.is_zero() {
            return;
        }
        tokio::select! {
            _ = tokio::time::sleep(self.settings.pause) => {}
            _ = self.stopped() => {}
        }
    }
}

impl Twin {
    /// Loads `profile` and its engine under the profile's policy (`scheduler`, else
    /// vLLM V1), and the simulated-run record of its logs.
    fn load(profile: &str, backend: BackendKind) -> Result<(Twin, SimulatedInfo), PipelineError> {
        let p = simulator::Profile::load(profile)?;
        let policy = p.scheduler.unwrap_or(simulator::Policy::VllmV1);
        let params = p.engine(policy).cloned().ok_or_else(|| {
            PipelineError::Config(format!(
                "--profile {profile}: no engine for its policy {policy}"
            ))
        })?;
        let info = SimulatedInfo {
            dialect: backend.as_str().to_string(),
            profile: profile.to_string(),
            speedup: None,
            virtual_time: true,
        };
        Ok((Twin { params, policy }, info))
    }

    /// Makes the run `c` describes in virtual time: its log, as a replay would write it.
    fn run(&self, trace: &Path, c: &ReplayConfig) -> Result<(), PipelineError> {
        let profile = c
            .simulated
            .as_ref()
            .map_or_else(String::new, |s| s.profile.clone());
        simulator::virtual_run::write_log(&simulator::virtual_run::VirtualRun {
            trace: trace.to_path_buf(),
            log: c.output.clone(),
            profile,
            params: self.params.clone(),
            policy: self.policy,
            backend: c.backend.as_str().to_string(),
            model: c.model.clone(),
            time_scale: c.time_scale,
            max_requests: c.max_requests,
            concurrency: c.concurrency,
            timeout: c.timeout,
            duration: c.duration,
            grace: c.grace,
            offered_rate: c.offered_rate,
        })?;
        Ok(())
    }
}

/// The point of one run log, analysed with the default options.
pub fn point_of(log: &Path) -> Result<Point, PipelineError> {
    point_with(log, &analyzer::AnalyzeOptions::default())
}

/// The point of one run log under `opts` (e.g. a goodput SLO).
pub fn point_with(log: &Path, opts: &analyzer::AnalyzeOptions) -> Result<Point, PipelineError> {
    let runs = analyzer::load_runs(&[log])?;
    let report = analyzer::report(&runs, opts)?;
    let r = &report.runs[0];
    analyzer::capacity::point_of(r, opts.metrics.latency_from).ok_or_else(|| {
        file_err(
            log,
            "no offered rate: fewer than two requests were dispatched",
        )
    })
}

/// Log file stem of a run at `rate`: fixed width so that names sort by rate.
pub fn log_name(prefix: &str, rate: f64, repeat: u32) -> String {
    let base = format!("{prefix}-{rate:012.4}");
    if repeat > 1 {
        format!("{base}-{repeat}")
    } else {
        base
    }
}

/// The progress line on stderr: which rate, how many runs remain, ETA. Silent with -q
/// or when stderr is not a terminal.
pub struct Progress {
    on: bool,
    started: Instant,
    done: AtomicU32,
}

impl Progress {
    pub fn new(on: bool) -> Progress {
        Progress {
            on: on && std::io::stderr().is_terminal(),
            started: Instant::now(),
            done: AtomicU32::new(0),
        }
    }

    /// Announces run number `done + 1` at `rate`; `remaining` runs after it (None:
    /// unknown yet) expected to take `eta` in all.
    pub fn run(&self, what: &str, rate: f64, remaining: Option<usize>, eta: Option<Duration>) {
        let done = self.done.fetch_add(1, Ordering::Relaxed) + 1;
        if !self.on {
            return;
        }
        let remaining = remaining.map_or("? remaining".to_string(), |r| format!("{r} remaining"));
        let eta = eta.map_or("ETA ?".to_string(), |d| {
            format!("ETA {}", indicatif::HumanDuration(d))
        });
        eprintln!(
            "[{} elapsed] {what}: run {} at {} req/s ({remaining}, {eta})",
            indicatif::HumanDuration(self.started.elapsed()),
            done,
            analyzer::report::fmt_qps(rate),
        );
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}

/// Analyses every run log of a capacity directory into `DIR/analysis` (tables, CSV,
/// JSON, `capacity.*` and figures), the SLO drawn on the curves. The same files
/// `llmib analyze DIR -o DIR/analysis` writes.
pub fn analyze_dir(
    dir: &Path,
    slo: Option<analyzer::capacity::SloTargets>,
) -> Result<crate::pipeline::Analysis, PipelineError> {
    let runs = analyzer::load_runs(&[dir])?;
    let mut report = analyzer::report(&runs, &analyzer::AnalyzeOptions::default())?;
    report.capacity_slo = slo;
    let out = dir.join("analysis");
    analyzer::write_outputs(
        &report,
        &out,
        &[
            analyzer::Format::Markdown,
            analyzer::Format::Csv,
            analyzer::Format::Json,
        ],
    )?;
    analyzer::write_figures(&report, &runs, &out.join("figures"), None)?;
    let tables = analyzer::render(&report, analyzer::Format::Markdown);
    Ok(crate::pipeline::Analysis {
        runs,
        report,
        tables,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_names_sort_by_rate() {
        let mut names: Vec<String> = [16.0, 2.0, 0.5, 128.0, 4.25]
            .iter()
            .map(|r| log_name("rate", *r, 1))
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "rate-0000000.5000",
                "rate-0000002.0000",
                "rate-0000004.2500",
                "rate-0000016.0000",
                "rate-0000128.0000"
            ]
        );
        assert_eq!(log_name("rate", 2.0, 3), "rate-0000002.0000-3");
    }
}
