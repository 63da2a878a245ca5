//! `llmib sweep`: one trace replayed at several offered rates, one run log per rate,
//! then the analysis with its throughput-latency curves.
//!
//! Rates are listed (`--rates 1,2,4,8`) or found (`--rates auto`): from the start rate
//! (`--start-rate`, default the trace's own rate / 8) the rate doubles until a run is
//! saturated ([`analyzer::capacity::saturation`]: achieved rate < 90% of offered, or
//! TTFT p50 > 10x the first run's), at most [`MAX_PROBES`] runs; then [`FILL_POINTS`]
//! rates are filled in between the last unsaturated rate `L` and the saturated `2L`,
//! geometrically (`L x 2^(i/4)`, i = 1..3), so the knee is located within a factor of
//! 2^(1/4) (19%). Every run replays the same requests in the same order. The manifest
//! (`sweep.json`) is rewritten after each run, so an interrupted sweep keeps every
//! finished run, and running it again reuses every complete log.

use std::path::PathBuf;

use analyzer::capacity::manifest::{Manifest, ManifestRun, SWEEP_MANIFEST};
use analyzer::capacity::{Point, SloTargets, saturation};

use crate::capacity::{Bench, RunOutcome};
use crate::pipeline::PipelineError;

/// Most probing runs of `--rates auto` before it gives up finding saturation.
pub const MAX_PROBES: u32 = 12;
/// Rates filled in between the last unsaturated and the first saturated probe.
pub const FILL_POINTS: u32 = 3;

/// Which rates to run.
#[derive(Debug, Clone, PartialEq)]
pub enum RatePlan {
    List(Vec<f64>),
    Auto { start: Option<f64> },
}

impl RatePlan {
    /// Parses `1,2,4,8` or `auto`.
    pub fn parse(s: &str) -> Result<RatePlan, String> {
        if s.trim() == "auto" {
            return Ok(RatePlan::Auto { start: None });
        }
        let mut rates = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let r: f64 = part
                .parse()
                .map_err(|_| format!("bad rate `{part}`: expected a positive number"))?;
            rates.push(crate::capacity::check_rate(
                &format!("bad rate `{part}`"),
                r,
            )?);
        }
        if rates.is_empty() {
            return Err("expected rates like 1,2,4,8 or auto".into());
        }
        rates.sort_by(f64::total_cmp);
        rates.dedup();
        Ok(RatePlan::List(rates))
    }
}

/// What a sweep did.
#[derive(Debug)]
pub struct SweepResult {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub runs: Vec<RunOutcome>,
    pub interrupted: bool,
    /// Auto: the first saturated rate, when one was reached.
    pub saturated_at: Option<f64>,
    /// Why the sweep stopped early when a run failed (the server died, the log could not
    /// be written): the runs before it are kept and analysed.
    pub failure: Option<String>,
}

/// The sweep in progress: its manifest, kept on disk after every run.
struct Sweep<'a> {
    bench: &'a Bench,
    manifest: Manifest,
    runs: Vec<RunOutcome>,
    n: u64,
    interrupted: bool,
    failure: Option<String>,
}

impl<'a> Sweep<'a> {
    fn path(&self) -> PathBuf {
        self.bench.settings.dir.join(SWEEP_MANIFEST)
    }

    /// Runs `rate` (announcing it) and records it; its point, or `None` when the sweep
    /// must stop: interrupted, or the run failed after others were measured (`failure`:
    /// those are kept and analysed). A failure of the first run is the sweep's error.
    async fn run(
        &mut self,
        rate: f64,
        phase: &str,
        remaining: Option<&[f64]>,
    ) -> Result<Option<Point>, PipelineError> {
        if self.bench.stop.is_stopped() {
            self.interrupted = true;
            return Ok(None);
        }
        match self.try_run(rate, phase, remaining).await {
            Ok((point, false)) => Ok(Some(point)),
            Ok((_, true)) => {
                self.interrupted = true;
                Ok(None)
            }
            Err(_) if self.bench.stop.is_stopped() => {
                self.interrupted = true;
                Ok(None)
            }
            Err(e) if self.runs.is_empty() => Err(e),
            Err(e) => {
                let rate_s = analyzer::report::fmt_qps(rate);
                self.failure = Some(format!("the run at {rate_s} req/s failed: {e}"));
                Ok(None)
            }
        }
    }

    async fn try_run(
        &mut self,
        rate: f64,
        phase: &str,
        remaining: Option<&[f64]>,
    ) -> Result<(Point, bool), PipelineError> {
        let eta = remaining.map(|r| {
            r.iter()
                .chain([&rate])
                .map(|x| self.bench.expected_wall(*x, self.n) + self.bench.settings.pause)
                .sum()
        });
        let bench = self.bench;
        bench
            .progress
            .run("sweep", rate, remaining.map(|r| r.len()), eta);
        let out = bench.run(rate, self.n, 1).await?;
        let p = &out.point;
        if p.ok == 0 && p.requests > 0 && p.unconnected == p.requests {
            // Its log stays in the directory, out of the manifest and the curves.
            return Err(PipelineError::Config(format!(
                "no request could connect to {}: the server is down",
                bench.endpoint
            )));
        }
        if out.reused {
            eprintln!(
                "sweep: {} req/s already complete in {} (use --force to replay)",
                analyzer::report::fmt_qps(rate),
                out.log.display()
            );
        }
        let first = self.runs.first().map(|r| r.point.clone());
        let sat = first.as_ref().and_then(|f| saturation(&out.point, f));
        self.manifest.runs.push(ManifestRun {
            rate,
            time_scale: out.time_scale,
            requests: out.requests,
            log: file_name(&out.log),
            phase: phase.into(),
            repeat: 1,
            complete: out.complete,
            saturated: sat,
            meets_slo: None,
            slo_ratio: None,
        });
        self.manifest.prefix_cache = bench.prefix_cache_note();
        self.manifest.write(&self.path())?;
        let (point, interrupted) = (out.point.clone(), out.interrupted);
        self.runs.push(out);
        Ok((point, interrupted || bench.stop.is_stopped()))
    }
}

pub(crate) fn file_name(p: &std::path::Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs the sweep; `slo` is recorded for the figures' SLO lines.
pub async fn sweep(
    bench: &Bench,
    plan: &RatePlan,
    start_rate: Option<f64>,
    slo: Option<SloTargets>,
) -> Result<SweepResult, PipelineError> {
    let n = bench
        .settings
        .max_requests
        .unwrap_or(bench.trace.len())
        .min(bench.trace.len());
    let manifest = bench.manifest("sweep", settings_json(bench, plan, start_rate), slo, None);
    let mut s = Sweep {
        bench,
        manifest,
        runs: Vec::new(),
        n,
        interrupted: false,
        failure: None,
    };
    let mut saturated_at = None;
    match plan {
        RatePlan::List(rates) => {
            for (i, &r) in rates.iter().enumerate() {
                if i > 0 {
                    bench.cool_down().await;
                }
                if s.run(r, "rates", Some(&rates[i + 1..])).await?.is_none() {
                    break;
                }
            }
        }
        RatePlan::Auto { .. } => {
            let start = match start_rate {
                Some(r) => r,
                None => bench.trace.rate(n)? / 8.0,
            };
            saturated_at = auto(&mut s, start).await?;
        }
    }
    s.manifest.result = Some(result_json(&s, saturated_at));
    s.manifest.write(&s.path())?;
    Ok(SweepResult {
        dir: bench.settings.dir.clone(),
        manifest: s.manifest,
        runs: s.runs,
        interrupted: s.interrupted,
        saturated_at,
        failure: s.failure,
    })
}

/// `--rates auto`: doubling probes, then the fill. Returns the first saturated rate
/// (an interruption or a failure is on `s`).
async fn auto(s: &mut Sweep<'_>, start: f64) -> Result<Option<f64>, PipelineError> {
    let bench = s.bench;
    let mut rate = start;
    let mut last_good = None;
    let mut saturated = None;
    for probe in 0..MAX_PROBES {
        if probe > 0 {
            bench.cool_down().await;
        }
        let Some(p) = s.run(rate, "probe", None).await? else {
            return Ok(None);
        };
        // The first run is its own TTFT reference: only its achieved rate can fail it.
        if saturation(&p, &s.runs[0].point).is_some() {
            saturated = Some(rate);
            break;
        }
        last_good = Some(rate);
        rate *= 2.0;
    }
    let (Some(hi), Some(lo)) = (saturated, last_good) else {
        return Ok(saturated);
    };
    let fill: Vec<f64> = (1..=FILL_POINTS)
        .map(|i| lo * (hi / lo).powf(i as f64 / (FILL_POINTS + 1) as f64))
        .collect();
    for (i, &r) in fill.iter().enumerate() {
        bench.cool_down().await;
        if s.run(r, "fill", Some(&fill[i + 1..])).await?.is_none() {
            break;
        }
    }
    Ok(saturated)
}

fn settings_json(bench: &Bench, plan: &RatePlan, start_rate: Option<f64>) -> serde_json::Value {
    let mut v = bench.settings.to_json();
    let rates = match plan {
        RatePlan::List(r) => serde_json::json!(r),
        RatePlan::Auto { .. } => serde_json::json!("auto"),
    };
    v["rates"] = rates;
    v["start_rate"] = serde_json::json!(start_rate);
    v
}

/// The knee of the runs made (the curve's, see [`analyzer::capacity::knee_of`]), and
/// why the sweep stopped early when a run failed.
fn result_json(s: &Sweep, saturated_at: Option<f64>) -> serde_json::Value {
    let mut points: Vec<Point> = s.runs.iter().map(|r| r.point.clone()).collect();
    let knee = analyzer::capacity::knee_of(&mut points);
    let mut v = serde_json::json!({
        "knee_rate": knee.map(|k| k.offered_rate),
        "saturated_at": saturated_at,
    });
    if let Some(why) = &s.failure {
        v["stopped"] = serde_json::json!("server_failed");
        v["failure"] = serde_json::json!(why);
    }
    v
}
