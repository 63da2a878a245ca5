//! `llmib demo`: the original benchmark's throughput and latency suites for TGI, vLLM and
//! LightLLM on the embedded simulator's calibrated `a800-llama2-13b` profile, in its
//! units, in a few minutes on a laptop.
//!
//! Why time dilation: replayed in real time the suites take hours (1000 requests at 1
//! QPS alone is 1000 s per backend). Each trace instead runs against the profile `K`
//! times faster and is replayed `K` times denser: the same admissions, batches and
//! token counts on a clock `K` times faster (`simulator::Profile::sped_up`), which the
//! analyzer multiplies back (times x K, rates / K) when it loads the logs, so the tables
//! are in token/s and seconds of the modelled A800.
//!
//! **The rule for K** ([`speedup_for`]), per trace and backend: the trace's span in the
//! profile's time, as the engine model computes it in virtual time under that backend's
//! policy, divided by [`DemoSettings::run_s`] (the real seconds one run should last),
//! rounded up to a whole number, then capped twice: by [`DemoSettings::max_events_s`]
//! divided by the trace's peak token rate in the profile's time (busiest second), because
//! every token is an HTTP event that the simulator writes and the client parses on the
//! same two cores; and by [`DemoSettings::max_speedup`], which keeps a decode step (20-35
//! ms in the profile) above a few tenths of a millisecond (see `simulator/README.md`,
//! time dilation). Both caps were measured with `simulator/examples/realtime_vs_virtual.rs`.
//! Per backend, so that every run lasts about `run_s`: with one K per trace (from the
//! slowest policy) the fastest server's bursts lasted 4.7 s, and sending a 1000-request
//! burst (30-45 ms on two cores) came within a hair of 1% of the run, where the replayer
//! warns that throughput includes the ramp. The rule is deterministic: every demo uses
//! the same `K` per trace and backend.

pub mod compare;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::path::{Path, PathBuf};

use replayer::StopHandle;
use simulator::{EngineParams, Policy, Profile, VirtualRequest};

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
    /// Real seconds one run should last: sets each trace's speed-up (module docs).
    pub run_s: f64,
    /// Largest speed-up used.
    pub max_speedup: f64,
    /// Most token events per real second a run may reach at its busiest.
    pub max_events_s: f64,
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
            profile: "a800-llama2-13b".to_string(),
            run_s: 7.0,
            max_speedup: 100.0,
            max_events_s: 60_000.0,
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
    /// The load and speed-up of every trace, per backend.
    pub speedups: Speedups,
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

/// How long a trace runs and how dense its tokens get under one policy, in the
/// profile's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TraceLoad {
    /// Span from the first arrival to the last token, seconds.
    pub span_s: f64,
    /// Output tokens per second in the busiest one-second window (a request's tokens
    /// counted evenly between its first and last token).
    pub peak_tok_s: f64,
}

/// The load and speed-up of each (backend, trace).
pub type Speedups = BTreeMap<(String, PathBuf), (TraceLoad, f64)>;

/// Tokens per second in the busiest second of a virtual run.
fn peak_tokens_per_s(results: &[simulator::VirtualResult]) -> f64 {
    const W: u64 = 1_000_000_000;
    let end = results.iter().map(|r| r.finished_ns).max().unwrap_or(0);
    let mut buckets = vec![0.0f64; (end / W + 1) as usize];
    for r in results.iter().filter(|r| r.output_tokens > 0) {
        let (a, b) = (r.first_token_ns, r.finished_ns.max(r.first_token_ns + 1));
        let per_ns = r.output_tokens as f64 / (b - a) as f64;
        for i in (a / W)..=(b / W) {
            let (lo, hi) = (i * W, (i + 1) * W);
            let overlap = b.min(hi).saturating_sub(a.max(lo));
            buckets[i as usize] += overlap as f64 * per_ns;
        }
    }
    buckets.into_iter().fold(0.0, f64::max)
}

/// A trace's output cap, arrival rate and requests as the engine model takes them.
pub type VirtualTrace = (Option<u32>, Option<f64>, Vec<VirtualRequest>);

/// The requests of a trace as the engine model takes them (ignore_eos: exactly
/// max_tokens), with its output cap and arrival rate.
pub fn virtual_trace(trace: &Path) -> Result<VirtualTrace, PipelineError> {
    let (header, requests) = formats::read_trace(trace).map_err(|e| PipelineError::File {
        path: trace.to_path_buf(),
        message: e.to_string(),
    })?;
    let reqs = requests
        .iter()
        .map(|r| VirtualRequest {
            arrival_ns: r.arrival_ns,
            prompt_tokens: r.prompt_tokens,
            max_tokens: r.max_tokens,
            target_tokens: r.max_tokens,
        })
        .collect();
    Ok((header.spec.output_cap(), header.spec.rate_per_s(), reqs))
}

/// The [`TraceLoad`] of a trace's requests under `params` and `policy`, from the engine
/// model in virtual time.
pub fn trace_load(reqs: &[VirtualRequest], params: &EngineParams, policy: Policy) -> TraceLoad {
    let (res, _) = simulator::simulate(params, policy, reqs);
    let end = res.iter().map(|r| r.finished_ns).max().unwrap_or(0);
    TraceLoad {
        span_s: end as f64 / 1e9,
        peak_tok_s: peak_tokens_per_s(&res),
    }
}

/// The speed-up of a trace with this load (module docs).
pub fn speedup_for(load: TraceLoad, settings: &DemoSettings) -> f64 {
    let by_time = (load.span_s / settings.run_s).ceil();
    let by_events = if load.peak_tok_s > 0.0 {
        (settings.max_events_s / load.peak_tok_s).floor()
    } else {
        f64::INFINITY
    };
    by_time.min(by_events).clamp(1.0, settings.max_speedup)
}

/// The load and speed-up of every trace of `suites`, under each suite's backend's own
/// scheduling policy.
pub fn speedups(suites: &[Suite], settings: &DemoSettings) -> Result<Speedups, PipelineError> {
    let profile = Profile::load(&settings.profile)?;
    // Each trace is read once, however many backends replay it.
    let mut requests: BTreeMap<&Path, Vec<VirtualRequest>> = BTreeMap::new();
    let mut out = Speedups::new();
    for suite in suites {
        let policy = suite
            .backend
            .parse::<simulator::Dialect>()?
            .default_policy();
        for trace in suite.traces.iter().filter(|t| t.is_file()) {
            let load = match profile.engine(policy) {
                Some(params) => {
                    let reqs = match requests.entry(trace.as_path()) {
                        Entry::Occupied(e) => e.into_mut(),
                        Entry::Vacant(e) => e.insert(virtual_trace(trace)?.2),
                    };
                    trace_load(reqs, params, policy)
                }
                // No engine model for this policy: nothing to pace, K = 1.
                None => TraceLoad {
                    span_s: 0.0,
                    peak_tok_s: 0.0,
                },
            };
            let key = (suite.backend.clone(), trace.clone());
            out.insert(key, (load, speedup_for(load, settings)));
        }
    }
    Ok(out)
}

/// The speed-ups of one backend's traces, as [`RunSettings::speedups`] takes them.
fn speedups_of(speedups: &Speedups, backend: &str) -> BTreeMap<PathBuf, f64> {
    speedups
        .iter()
        .filter(|((b, _), _)| b == backend)
        .map(|((_, t), (_, k))| (t.clone(), *k))
        .collect()
}

/// One line saying what the demo's numbers are.
pub fn disclaimer(settings: &DemoSettings) -> String {
    format!(
        "SIMULATED: every number comes from llm-infer-bench's embedded simulator (profile `{}`), \
         not from a GPU server; each trace ran K times faster against a profile K times faster \
         (x K in the tables) and is reported in the profile's units.",
        settings.profile
    )
}

/// Runs the demo suites and analyses them. Call from a multi-threaded tokio runtime.
pub async fn run_demo(
    settings: &DemoSettings,
    stop: &StopHandle,
) -> Result<DemoRun, PipelineError> {
    let suites = demo_suites(&settings.configs_dir)?;
    let speedups = speedups(&suites, settings)?;
    let mut runs = Vec::new();
    let mut logs = Vec::new();
    let mut interrupted = false;
    for suite in &suites {
        let run_settings = RunSettings {
            force: settings.force,
            simulate: true,
            profile: Some(settings.profile.clone()),
            runs_dir: settings.runs_dir.clone(),
            results_dir: settings.results_dir.clone(),
            progress: settings.progress,
            speedups: speedups_of(&speedups, &suite.backend),
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
        speedups,
        analysis,
        interrupted,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speedup_rule_rounds_up_and_caps() {
        let s = DemoSettings::default();
        let load = |span_s, peak_tok_s| TraceLoad { span_s, peak_tok_s };
        assert_eq!(speedup_for(load(70.0, 10.0), &s), 10.0);
        assert_eq!(speedup_for(load(70.5, 10.0), &s), 11.0);
        assert_eq!(speedup_for(load(1.0, 10.0), &s), 1.0);
        assert_eq!(speedup_for(load(1e6, 10.0), &s), s.max_speedup);
        // Dense tokens: the event budget caps it.
        assert_eq!(speedup_for(load(700.0, 3000.0), &s), 20.0);
        assert_eq!(speedup_for(load(700.0, 1e9), &s), 1.0);
    }

    #[test]
    fn every_backend_gets_its_own_speed_up_so_every_run_lasts_about_run_s() {
        let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("benchmark_configs");
        let suites = demo_suites(&configs).unwrap();
        let s = DemoSettings::default();
        let k = speedups(&suites, &s).unwrap();
        assert_eq!(k.len(), 24, "8 traces x 3 backends");
        for ((backend, trace), (load, k)) in &k {
            let real_s = load.span_s / k;
            if *k < s.max_speedup {
                let what = format!("{backend} {trace:?}: {real_s} s");
                assert!(real_s <= s.run_s + 1e-9, "{what}");
                assert!(real_s > 0.85 * s.run_s, "{what}");
            } else {
                // Capped (QPS 1: 973 s / 100).
                assert!(real_s > s.run_s, "{backend} {trace:?}: {real_s} s");
            }
        }
        // The cap-32 burst: TGI's span is the longest, vLLM's the shortest; one K per
        // trace (TGI's) would make vLLM's run last 2/3 of the others.
        let cap32 = |b: &str| {
            k.iter()
                .find(|((kb, t), _)| kb == b && t.ends_with("throughput-cap32.msgpack"))
                .map(|(_, (_, k))| *k)
                .unwrap()
        };
        assert!(
            cap32("vllm") < cap32("tgi"),
            "{} {}",
            cap32("vllm"),
            cap32("tgi")
        );
    }

    #[test]
    fn peak_counts_tokens_evenly_over_a_request_life() {
        let r = |first_token_ns, finished_ns, output_tokens| simulator::VirtualResult {
            first_token_ns,
            finished_ns,
            output_tokens,
            ..Default::default()
        };
        // 100 tokens over 2 s, and 30 tokens within the second second.
        let results = [
            r(0, 2_000_000_000, 100),
            r(1_200_000_000, 1_500_000_000, 30),
        ];
        let peak = peak_tokens_per_s(&results);
        assert!((peak - 80.0).abs() < 1e-6, "{peak}");
    }
}
