//! `llmib demo`: the original benchmark's throughput and latency suites for TGI, vLLM and
//! LightLLM, all on the embedded simulator, in a few minutes on a laptop.
//!
//! It runs the shipped suites (`benchmark_configs/{tgi,vllm,lightllm}_{throughput,latency}.toml`)
//! with `--simulate`, a fast simulator profile and a time scale for the latency traces,
//! then analyses every run into one set of tables and figures. Real-time replay of the
//! latency suites against the calibrated A800 profile takes about half an hour per backend
//! (1000 requests at 1 QPS alone is 1000 s); the demo's point is the whole pipeline, so it
//! trades fidelity for time and says so in every output.

use std::path::{Path, PathBuf};

use replayer::StopHandle;

use crate::pipeline::{self, PipelineError, RunSettings, SuiteRun};
use crate::suite::Suite;

/// The backends of the original benchmark.
pub const DEMO_BACKENDS: [&str; 3] = ["tgi", "vllm", "lightllm"];

/// `llmib demo` settings.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// Directory holding the shipped suite files.
    pub configs_dir: PathBuf,
    /// Simulator profile for every backend.
    pub profile: String,
    /// Time scale of the latency traces (arrival offsets divided by it).
    pub latency_time_scale: f64,
    /// Run logs go to `runs_dir/<suite>/<backend>/<trace>.msgpack`.
    pub runs_dir: PathBuf,
    /// Tables and figures.
    pub results_dir: PathBuf,
    /// Replay even runs whose logs are complete.
    pub force: bool,
    pub progress: bool,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings {
            configs_dir: PathBuf::from("benchmark_configs"),
            profile: "tiny".to_string(),
            latency_time_scale: 50.0,
            runs_dir: PathBuf::from("runs/demo"),
            results_dir: PathBuf::from("results/demo"),
            force: false,
            progress: true,
        }
    }
}

/// What the demo did.
#[derive(Debug)]
pub struct DemoRun {
    pub suites: Vec<SuiteRun>,
    pub logs: Vec<PathBuf>,
    /// Tables, report and loaded runs of every demo log.
    pub analysis: pipeline::Analysis,
    pub interrupted: bool,
}

/// The demo's suite files, in run order.
pub fn demo_suites(configs_dir: &Path) -> Result<Vec<Suite>, PipelineError> {
    let mut suites = Vec::new();
    for backend in DEMO_BACKENDS {
        for kind in ["throughput", "latency"] {
            suites.push(Suite::load(
                &configs_dir.join(format!("{backend}_{kind}.toml")),
            )?);
        }
    }
    Ok(suites)
}

/// One line saying what the demo's numbers are.
pub fn disclaimer(settings: &DemoSettings) -> String {
    format!(
        "SIMULATED: every number comes from llm-infer-bench's embedded simulator (profile `{}`), \
         not from a GPU server; latency traces were replayed at time scale {} (arrival rates \
         {}x the trace's QPS).",
        settings.profile, settings.latency_time_scale, settings.latency_time_scale
    )
}

/// Runs the demo suites and analyses them. Call from a multi-threaded tokio runtime.
pub async fn run_demo(
    settings: &DemoSettings,
    stop: &StopHandle,
) -> Result<DemoRun, PipelineError> {
    let suites = demo_suites(&settings.configs_dir)?;
    let mut runs = Vec::new();
    let mut logs = Vec::new();
    let mut interrupted = false;
    for suite in &suites {
        let is_latency = suite.traces.iter().any(|t| {
            formats::TraceReader::open(t)
                .ok()
                .and_then(|r| r.header().spec.rate_per_s())
                .is_some()
        });
        let run_settings = RunSettings {
            force: settings.force,
            simulate: true,
            profile: Some(settings.profile.clone()),
            time_scale: is_latency.then_some(settings.latency_time_scale),
            runs_dir: settings.runs_dir.clone(),
            results_dir: settings.results_dir.clone(),
            progress: settings.progress,
            ..RunSettings::default()
        };
        let run = pipeline::run_suite(suite, &run_settings, stop).await?;
        logs.extend(pipeline::suite_logs(suite, &settings.runs_dir));
        let stopped = run.interrupted;
        runs.push(run);
        if stopped {
            interrupted = true;
            break;
        }
    }
    let analysis = pipeline::analyze_into(&logs, &settings.results_dir)?;
    Ok(DemoRun {
        suites: runs,
        logs,
        analysis,
        interrupted,
    })
}
