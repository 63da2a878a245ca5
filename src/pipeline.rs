//! `llmib run`: replay every trace of a suite, then analyse all of its runs.
//!
//! Each trace is replayed into `RUNS/<suite>/<backend>/<trace>.msgpack`; a run whose log
//! is already complete (verified trailer, same trace bytes, same kind of target) is
//! skipped, so a suite interrupted with Ctrl-C resumes where it stopped when run again.
//! Without an endpoint (or with `--simulate`) the suite runs against the embedded
//! simulator, started in-process on a free loopback port with the backend's dialect and
//! scheduling policy; every log header then records the simulator, and the analyzer
//! labels those numbers as simulated. A trace given a speed-up `K`
//! ([`RunSettings::speedups`]) runs against the profile `K` times faster, replayed `K`
//! times denser (and its timeout `K` times shorter): the same schedule in `1/K` of the
//! time, which the analyzer reports back in the profile's units.

use std::path::{Path, PathBuf};
use std::time::Duration;

use formats::{LogEnd, SimulatedInfo};
use replayer::{BackendKind, IgnoreEos, ReplayConfig, ReplaySummary, StopHandle};

use crate::suite::Suite;

/// How to run suites (the `llmib run` flags).
#[derive(Debug, Clone)]
pub struct RunSettings {
    /// Replay even the runs whose logs are already complete.
    pub force: bool,
    /// Use the embedded simulator even when the suite names an endpoint.
    pub simulate: bool,
    /// Replaces the suite's endpoint.
    pub endpoint: Option<String>,
    /// Replaces the suite's model name.
    pub model: Option<String>,
    /// Replaces the suite's simulator profile.
    pub profile: Option<String>,
    /// Replaces the suite's time scale for traces with arrival times (bursts are
    /// unaffected by a time scale anyway).
    pub time_scale: Option<f64>,
    /// Replay only the first N requests of each trace.
    pub max_requests: Option<u64>,
    /// Root of the run logs (`runs/`).
    pub runs_dir: PathBuf,
    /// Root of the analysis outputs (`results/`).
    pub results_dir: PathBuf,
    /// Progress bars on stderr (when it is a terminal).
    pub progress: bool,
    /// Certificate verification for `https://` endpoints (`--cacert`, `--insecure`).
    pub tls: replayer::TlsOptions,
    /// API key sent as `Authorization: Bearer` to every backend (`--api-key-env`).
    pub api_key: Option<String>,
    /// API key for the OpenAI suites when `api_key` is not set (`OPENAI_API_KEY`).
    pub openai_api_key: Option<String>,
    /// Replaces the replayer's pool idle timeout (`--pool-idle-timeout`).
    pub pool_idle_timeout: Option<Duration>,
    /// Simulator speed-up per trace path (simulated targets only; absent: 1): the
    /// profile runs `K` times faster and the trace is replayed at `K` times its time
    /// scale (see `simulator::Profile::sped_up`).
    pub speedups: std::collections::BTreeMap<PathBuf, f64>,
    /// `--reset-prefix-cache`: drop the server's prefix cache before each trace's run.
    pub reset_prefix_cache: bool,
}

impl RunSettings {
    /// The simulator speed-up of one trace (1 when none is set).
    pub fn speedup(&self, trace: &Path) -> f64 {
        self.speedups.get(trace).copied().unwrap_or(1.0)
    }
}

impl Default for RunSettings {
    fn default() -> Self {
        RunSettings {
            force: false,
            simulate: false,
            endpoint: None,
            model: None,
            profile: None,
            time_scale: None,
            max_requests: None,
            runs_dir: PathBuf::from("runs"),
            results_dir: PathBuf::from("results"),
            progress: true,
            tls: replayer::TlsOptions::default(),
            api_key: None,
            openai_api_key: None,
            pool_idle_timeout: None,
            speedups: Default::default(),
            reset_prefix_cache: false,
        }
    }
}

/// Where a suite's requests go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// A real server at this base URL.
    Endpoint(String),
    /// The embedded simulator with this dialect and profile.
    Simulated { dialect: String, profile: String },
}

impl Target {
    pub fn of(suite: &Suite, settings: &RunSettings) -> Target {
        let endpoint = settings.endpoint.clone().or_else(|| suite.endpoint.clone());
        match endpoint {
            Some(e) if !settings.simulate => Target::Endpoint(e),
            _ => Target::Simulated {
                dialect: suite.sim_dialect().to_string(),
                profile: settings
                    .profile
                    .clone()
                    .unwrap_or_else(|| suite.simulator.profile.clone()),
            },
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Target::Endpoint(e) => formats::redact_url(e),
            Target::Simulated { dialect, profile } => format!(
                "the embedded simulator ({dialect} dialect, profile {profile}): SIMULATED numbers"
            ),
        }
    }
}

/// Errors of the suite pipeline. Request failures are not errors: they are log records.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Suite(#[from] crate::suite::SuiteError),
    #[error("{0}")]
    Replay(#[from] replayer::ReplayError),
    #[error("simulator: {0}")]
    Simulator(#[from] simulator::SimError),
    #[error("virtual run: {0}")]
    VirtualRun(#[from] simulator::virtual_run::VirtualRunError),
    #[error("analysis: {0}")]
    Analyze(#[from] analyzer::Error),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("interrupted: {0}")]
    Interrupted(String),
    #[error("{0}")]
    Config(String),
}

/// What happened to one trace of a suite.
#[derive(Debug, Clone)]
pub enum TraceRun {
    /// Replayed now.
    Replayed(Box<ReplaySummary>),
    /// Its log was already complete.
    Skipped(PathBuf),
}

/// The outcome of one suite.
#[derive(Debug)]
pub struct SuiteRun {
    pub suite: String,
    pub target: Target,
    pub runs_dir: PathBuf,
    pub runs: Vec<(PathBuf, TraceRun)>,
    /// Set when the run was stopped (Ctrl-C) before every trace was replayed.
    pub interrupted: bool,
}

/// The logs of the traces replayed now in which no request succeeded.
pub fn runs_without_success(run: &SuiteRun) -> Vec<PathBuf> {
    run.runs
        .iter()
        .filter_map(|(_, r)| match r {
            TraceRun::Replayed(s) if s.count(formats::Outcome::Ok) == 0 => Some(s.log.clone()),
            _ => None,
        })
        .collect()
}

/// The run log path of one trace of a suite.
pub fn log_path(runs_root: &Path, suite: &Suite, trace: &Path) -> PathBuf {
    runs_root
        .join(&suite.name)
        .join(&suite.backend)
        .join(format!("{}.msgpack", Suite::trace_stem(trace)))
}

fn trace_sha256(trace: &Path) -> Result<String, PipelineError> {
    formats::sha256_file(trace).map_err(|e| PipelineError::File {
        path: trace.to_path_buf(),
        message: e.to_string(),
    })
}

/// True when `log` holds a complete run of `trace` (by sha256) against the same kind of
/// target (for the simulator: same profile and speed-up `k`), so replaying it again
/// would only repeat a measurement.
pub fn is_complete_run(
    log: &Path,
    trace_sha256: &str,
    target: &Target,
    backend: &str,
    k: f64,
) -> bool {
    let Ok(run) = formats::read_log(log) else {
        return false;
    };
    let complete = matches!(&run.end, LogEnd::Trailer(t) if t.complete);
    let same_target = match target {
        Target::Endpoint(e) => {
            // Logs hold the endpoint with its password redacted.
            run.header.backend.simulated.is_none()
                && run.header.backend.endpoint == formats::redact_url(e)
        }
        Target::Simulated { profile, .. } => run
            .header
            .backend
            .simulated
            .as_ref()
            .is_some_and(|s| &s.profile == profile && s.speedup.unwrap_or(1.0) == k),
    };
    complete
        && same_target
        && run.header.trace.sha256 == trace_sha256
        && run.header.backend.kind == backend
}

/// Replays every trace of `suite` not already complete. Call from a multi-threaded tokio
/// runtime; `stop` is cancelled by Ctrl-C.
pub async fn run_suite(
    suite: &Suite,
    settings: &RunSettings,
    stop: &StopHandle,
) -> Result<SuiteRun, PipelineError> {
    let target = Target::of(suite, settings);
    let backend: BackendKind = suite.backend.parse().map_err(PipelineError::Config)?;
    for t in &suite.traces {
        if !t.is_file() {
            return Err(PipelineError::File {
                path: t.clone(),
                message:
                    "trace not found (regenerate with `llmib generate --suite seed -o traces --force`)"
                        .into(),
            });
        }
    }

    // Skip what is already measured before starting anything.
    let mut todo = Vec::new();
    let mut runs = Vec::new();
    for trace in &suite.traces {
        let log = log_path(&settings.runs_dir, suite, trace);
        let reusable = !settings.force && settings.max_requests.is_none() && log.is_file();
        let k = settings.speedup(trace);
        if reusable && is_complete_run(&log, &trace_sha256(trace)?, &target, &suite.backend, k) {
            runs.push((trace.clone(), TraceRun::Skipped(log)));
        } else {
            todo.push((trace.clone(), log));
        }
    }

    if let Target::Endpoint(e) = &target
        && !todo.is_empty()
    {
        replayer::check_endpoint_with(e, &settings.tls, Duration::from_secs(5)).await?;
    }
    // One in-process simulator per speed-up, started when a trace first needs it.
    let mut sim: Option<(f64, simulator::SimServer)> = None;
    let mut interrupted = false;
    for (trace, log) in todo {
        if stop.is_stopped() {
            interrupted = true;
            break;
        }
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(|e| PipelineError::File {
                path: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        }
        let k = settings.speedup(&trace);
        let (endpoint, simulated) = match &target {
            Target::Endpoint(e) => (e.clone(), None),
            Target::Simulated { dialect, profile } => {
                if sim.as_ref().is_none_or(|(sk, _)| *sk != k) {
                    if let Some((_, old)) = sim.take() {
                        old.shutdown().await?;
                    }
                    let dialect_v: simulator::Dialect = dialect.parse()?;
                    let profile_v = simulator::Profile::load(profile)?.sped_up(k)?;
                    let config = simulator::SimConfig::new(dialect_v, profile_v);
                    sim = Some((k, simulator::start(config).await?));
                }
                let url = sim.as_ref().expect("started above").1.base_url();
                let info = SimulatedInfo {
                    dialect: dialect.clone(),
                    profile: profile.clone(),
                    speedup: (k != 1.0).then_some(k),
                    virtual_time: false,
                };
                (url, Some(info))
            }
        };
        let config = replay_config(suite, settings, backend, &endpoint, simulated, log, k);
        eprintln!(
            "{}: replaying {} against {}",
            suite.name,
            trace.display(),
            target.describe()
        );
        let summary = replayer::replay(&trace, config, stop.clone()).await?;
        eprintln!("{summary}");
        let stopped = summary.interrupted;
        runs.push((trace, TraceRun::Replayed(Box::new(summary))));
        if stopped {
            interrupted = true;
            break;
        }
    }
    if let Some((_, server)) = sim {
        server.shutdown().await?;
    }
    Ok(SuiteRun {
        suite: suite.name.clone(),
        target,
        runs_dir: settings.runs_dir.join(&suite.name),
        runs,
        interrupted,
    })
}

fn replay_config(
    suite: &Suite,
    settings: &RunSettings,
    backend: BackendKind,
    endpoint: &str,
    simulated: Option<SimulatedInfo>,
    output: PathBuf,
    k: f64,
) -> ReplayConfig {
    let r = &suite.replay;
    let mut c = ReplayConfig::new(backend, endpoint, output);
    // A log that exists here is incomplete or of another target: the suite replaces it
    // (complete ones were skipped above), as documented for `llmib run`.
    c.overwrite = true;
    c.model = settings.model.clone().or_else(|| suite.model.clone());
    c.stream = r.stream;
    c.fields.ignore_eos = if r.ignore_eos {
        IgnoreEos::FromTrace
    } else {
        IgnoreEos::Never
    };
    c.fields.min_tokens = r.min_tokens;
    c.fields.stream_usage = r.stream_usage;
    c.fields.continuous_usage = r.continuous_usage;
    c.concurrency = r.concurrency;
    c.connections = r.connections;
    c.max_model_len = r.max_model_len;
    c.warmup = r.warmup;
    // A simulator `k` times faster: the same schedule needs arrivals `k` times denser,
    // and the suite's timeout (in the profile's time) is `k` times shorter.
    c.timeout = r.timeout_s.map(|t| Duration::from_secs_f64(t / k));
    c.time_scale = settings.time_scale.unwrap_or(r.time_scale) * k;
    c.max_requests = settings.max_requests;
    c.simulated = simulated;
    c.progress = settings.progress;
    c.tls = settings.tls.clone();
    c.api_key = settings.api_key.clone().or_else(|| {
        backend
            .is_openai()
            .then(|| settings.openai_api_key.clone())
            .flatten()
    });
    if let Some(t) = settings.pool_idle_timeout {
        c.pool_idle_timeout = t;
    }
    c.identify_server = true;
    c.reset_prefix_cache = settings.reset_prefix_cache;
    c
}

/// The run logs of a suite that exist (one per trace, complete or not).
pub fn suite_logs(suite: &Suite, runs_root: &Path) -> Vec<PathBuf> {
    suite
        .traces
        .iter()
        .map(|t| log_path(runs_root, suite, t))
        .filter(|p| p.is_file())
        .collect()
}

/// An analysis of a set of run logs, kept so callers can render more from it (README
/// blocks, other figure directories) without loading the logs again.
#[derive(Debug)]
pub struct Analysis {
    pub runs: analyzer::Runs,
    pub report: analyzer::Report,
    /// The Markdown tables of every run.
    pub tables: String,
}

/// Analyses `logs` into `results` (tables in Markdown, CSV and JSON; figures under
/// `results/figures/`).
pub fn analyze_into(logs: &[PathBuf], results: &Path) -> Result<Analysis, PipelineError> {
    let runs = analyzer::load_runs(logs)?;
    let report = analyzer::report(&runs, &analyzer::AnalyzeOptions::default())?;
    analyzer::write_outputs(
        &report,
        results,
        &[
            analyzer::Format::Markdown,
            analyzer::Format::Csv,
            analyzer::Format::Json,
        ],
    )?;
    analyzer::write_figures(&report, &runs, &results.join("figures"), None)?;
    let tables = analyzer::render(&report, analyzer::Format::Markdown);
    Ok(Analysis {
        runs,
        report,
        tables,
    })
}
