//! `llmib sweep TRACE --rates 1,2,4,8|auto -o DIR`: the trace at several offered rates,
//! then the analysis (see `llm_infer_bench::sweep`). The target and replay flags are
//! shared with `llmib search` ([`TargetArgs`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, anyhow};
use llm_infer_bench::capacity::Bench;
use llm_infer_bench::capacity_settings::{CapacitySettings, CapacityTarget};
use llm_infer_bench::sweep::{self, RatePlan};
use replayer::BackendKind;

use super::Exit;
use super::endpoint::EndpointArgs;

/// The trace, the target and the replay flags of `sweep` and `search`.
#[derive(clap::Args)]
pub struct TargetArgs {
    /// Trace file to replay (it needs arrival times: its rate is count / arrival span).
    pub trace: PathBuf,
    /// Wire format: tgi, vllm, lightllm, openai, openai-chat, openai-responses, anthropic,
    /// sglang or llamacpp.
    #[arg(long)]
    pub backend: BackendKind,
    /// Server base URL (or --simulate, or --profile alone).
    #[arg(long, required_unless_present_any = ["simulate", "profile"])]
    pub endpoint: Option<String>,
    /// Run against the embedded simulator, started in-process on 127.0.0.1.
    #[arg(long, conflicts_with = "endpoint")]
    pub simulate: bool,
    /// Engine profile: a built-in name or a TOML file (a twin from `llmib calibrate`).
    /// Alone: every run is made by its engine model in virtual time, no server and no
    /// waiting (a whole search in seconds). With --simulate (default tiny): the
    /// simulator serves it over HTTP, in real time.
    #[arg(long)]
    pub profile: Option<String>,
    /// Simulator speed-up K (1 to 1000, default 1): the profile runs K times faster and
    /// every run K times denser; rates, durations and SLOs stay in the profile's time.
    /// Needs --simulate.
    #[arg(long, value_name = "K")]
    pub speedup: Option<f64>,
    /// Output directory: run logs, manifest and analysis.
    #[arg(short, long, value_name = "DIR")]
    pub output: PathBuf,
    /// Model name sent to OpenAI-style servers.
    #[arg(long)]
    pub model: Option<String>,
    /// Cap on requests in flight (default: open loop).
    #[arg(long)]
    pub concurrency: Option<u32>,
    /// Per-request timeout, seconds.
    #[arg(long)]
    pub timeout: Option<f64>,
    /// Replay only the first N requests.
    #[arg(long, value_name = "N")]
    pub max_requests: Option<u64>,
    /// Seconds of cool-down between runs (then, when the server exports /metrics,
    /// until it reports nothing running or waiting, at most 60 s).
    #[arg(long, value_name = "S", default_value_t = 0.0)]
    pub pause: f64,
    /// Replay even the runs whose logs are already complete.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub connection: EndpointArgs,
    /// Drop the server's prefix cache before every run (the default: vLLM POST
    /// /reset_prefix_cache, SGLang POST /flush_cache), so every rate starts cold instead
    /// of with the cache the earlier rates warmed with the same prompts. A server without
    /// the endpoint is a warning (later rates then run warm).
    #[arg(long, overrides_with = "no_reset_prefix_cache")]
    pub reset_prefix_cache: bool,
    /// Never reset the server's prefix cache between runs.
    #[arg(long)]
    pub no_reset_prefix_cache: bool,
    /// No progress output.
    #[arg(short, long)]
    pub quiet: bool,
}

pub(crate) fn secs(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .ok()
        .with_context(|| format!("{what} must be a non-negative number of seconds"))
}

fn positive(what: &str, s: f64) -> anyhow::Result<Duration> {
    let d = secs(what, s)?;
    anyhow::ensure!(!d.is_zero(), "{what} must be greater than 0 seconds");
    Ok(d)
}

impl TargetArgs {
    /// The endpoint, or the simulator with its profile and speed-up (flags that only
    /// the simulator has are refused without `--simulate`, never ignored).
    fn target(&self) -> anyhow::Result<CapacityTarget> {
        if !self.simulate {
            anyhow::ensure!(
                self.speedup.is_none(),
                "--speedup sets up the embedded simulator: it needs --simulate (a real \
                 --endpoint has no speed-up, a --profile alone runs in virtual time)"
            );
            if let Some(profile) = &self.profile {
                anyhow::ensure!(
                    self.endpoint.is_none(),
                    "--profile with --endpoint: a real server has no profile (--profile alone \
                     runs a twin in virtual time, --simulate --profile serves one)"
                );
                anyhow::ensure!(
                    !self.no_reset_prefix_cache,
                    "--no-reset-prefix-cache: a twin's runs (--profile without --simulate) \
                     always start with an empty prefix cache"
                );
                return Ok(CapacityTarget::Twin {
                    profile: profile.clone(),
                });
            }
        }
        let speedup = self.speedup.unwrap_or(1.0);
        anyhow::ensure!(
            speedup.is_finite() && (1.0..=simulator::MAX_SPEEDUP).contains(&speedup),
            "--speedup must be a number from 1 to {}, got {speedup}",
            simulator::MAX_SPEEDUP
        );
        Ok(match (&self.endpoint, self.simulate) {
            (Some(e), false) => CapacityTarget::Endpoint(e.clone()),
            _ => CapacityTarget::Simulated {
                profile: self.profile.clone().unwrap_or_else(|| "tiny".into()),
                speedup,
            },
        })
    }

    /// The settings, with `duration` (profile seconds) for the sweep.
    pub fn settings(&self, duration: Option<f64>) -> anyhow::Result<CapacitySettings> {
        let target = self.target()?;
        let api_key = self.connection.api_key(self.backend.api_key_env())?;
        let tls = self.connection.tls("");
        Ok(CapacitySettings {
            trace: self.trace.clone(),
            backend: self.backend,
            target,
            dir: self.output.clone(),
            model: self.model.clone(),
            concurrency: self.concurrency,
            timeout: self.timeout.map(|t| positive("--timeout", t)).transpose()?,
            max_requests: match self.max_requests {
                Some(0) => {
                    anyhow::bail!("--max-requests must be at least 1 (0 would replay nothing)")
                }
                n => n,
            },
            duration: duration.map(|d| positive("--duration", d)).transpose()?,
            pause: secs("--pause", self.pause)?,
            force: self.force,
            progress: !self.quiet,
            api_key,
            tls,
            pool_idle_timeout: self.connection.pool_idle_timeout()?,
            reset_prefix_cache: !self.no_reset_prefix_cache,
        })
    }
}

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Offered rates in requests/s (`1,2,4,8`), or `auto`: double from --start-rate until
    /// saturation, then fill in 3 rates below it.
    #[arg(long, allow_hyphen_values = true)]
    pub rates: String,
    /// First rate of --rates auto (default: the trace's rate / 8).
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub start_rate: Option<f64>,
    /// Stop dispatching each run after this many seconds (the rest is logged not_sent).
    #[arg(long, value_name = "S")]
    pub duration: Option<f64>,
    /// SLO lines for the curve figures, e.g. ttft_p99=0.5,tpot_p99=0.05.
    #[arg(long)]
    pub slo: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    // An early error leaves no empty output directory behind.
    let created = llm_infer_bench::capacity_dir::Created::note(&args.target.output);
    let r = sweep_into(args);
    if r.is_err() {
        created.remove_if_empty();
    }
    r
}

fn sweep_into(args: Args) -> anyhow::Result<Exit> {
    let plan = RatePlan::parse(&args.rates).map_err(|e| anyhow!("--rates: {e}"))?;
    if let Some(r) = args.start_rate {
        llm_infer_bench::capacity::check_rate("--start-rate", r).map_err(|e| anyhow!(e))?;
    }
    let slo = args
        .slo
        .as_deref()
        .map(analyzer::capacity::SloTargets::parse)
        .transpose()
        .map_err(|e| anyhow!("--slo: {e}"))?;
    let settings = args.target.settings(args.duration)?;
    let rt = super::runtime()?;
    let signals = super::on_signals(&rt)?;
    let result = rt.block_on(async {
        let bench = Bench::start(settings, signals.stop.clone()).await?;
        let r = sweep::sweep(&bench, &plan, args.start_rate, slo.clone()).await;
        bench.shutdown().await?;
        anyhow::Ok(r?)
    })?;
    if let Some(r) = result.saturated_at {
        eprintln!("sweep: saturated at {} req/s", analyzer::report::fmt_qps(r));
    } else if matches!(plan, RatePlan::Auto { .. }) && !result.interrupted {
        eprintln!(
            "sweep: no saturation within {} probes (raise --start-rate)",
            sweep::MAX_PROBES
        );
    }
    let exit = super::capacity_analysis(&result.dir, slo)?;
    if result.interrupted || signals.interrupted() {
        eprintln!(
            "sweep interrupted: run it again to resume (complete runs in {} are kept)",
            result.dir.display()
        );
        return Ok(Exit::Interrupted);
    }
    // A server that failed mid-sweep: the runs measured are analysed and kept, and the
    // failure is the command's error (exit 2), as for `search`.
    if let Some(why) = &result.failure {
        let n = result.runs.len();
        anyhow::bail!(
            "sweep stopped: {why} ({n} run{} measured before, kept and analysed in {}; run \
             it again to resume)",
            if n == 1 { "" } else { "s" },
            result.dir.display()
        );
    }
    Ok(exit)
}
