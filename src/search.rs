//! `llmib search`: the highest offered rate that meets every SLO.
//!
//! Each trial replays the first `N = ceil(rate x run_duration)` requests of the trace
//! (at least [`MIN_REQUESTS`]), offered at the rate, so every run lasts about
//! `--run-duration` whatever its rate. A run **meets** the SLO when every target
//! statistic is within its limit (and, with `--goodput G`, at least `G` of its requests
//! meet the per-request form of the SLO); a rate meets it when the majority of its runs
//! do (a tie fails). The search:
//! 1. **bracket**: from the start rate, double while the rate meets (or halve while it
//!    fails) until a meeting rate `lo` and a failing rate `hi` are found;
//! 2. **bisect**: run `(lo + hi) / 2` until `hi / lo - 1 <= tolerance`;
//! 3. **repeat**: run `lo` and `hi` until each has `--repeats` runs; when a majority
//!    flips, the bracket moves to the nearest rates whose verdicts still hold and the
//!    search bisects again (at most [`MAX_ROUNDS`] rounds).
//!
//! The answer is `lo`, with `[lo, hi]` as its interval at the search's resolution; the
//! noise of the boundary is the spread of each target's statistic over the repeats at
//! `lo` and `hi`, and how many of them met. `--budget` bounds the total time: a run that
//! would not end within it is not started, and the bracket reached is the answer.
//! `--grid LO:HI:STEP` replaces the search by brute force over that grid (the same
//! runs), to check it.

use std::time::Duration;

use analyzer::AnalyzeOptions;
use analyzer::capacity::manifest::{FORMAT, Manifest, ManifestRun, SEARCH_MANIFEST};
use analyzer::capacity::{Point, SloTargets};

use crate::capacity::{Bench, log_name, point_with};
use crate::pipeline::PipelineError;
use crate::sweep::file_name;

/// Fewest requests of a search run.
pub const MIN_REQUESTS: u64 = 10;
/// Bracket-bisect-repeat rounds at most.
pub const MAX_ROUNDS: u32 = 3;
/// Doublings or halvings while bracketing, at most.
const MAX_BRACKET: u32 = 16;

/// The search's settings (the `llmib search` flags).
#[derive(Debug, Clone)]
pub struct SearchSpec {
    pub slo: SloTargets,
    pub goodput: Option<f64>,
    /// Wall time the whole search may take.
    pub budget: Option<Duration>,
    /// Each run spans this much of the trace at its rate (profile time).
    pub run_duration: Duration,
    pub repeats: u32,
    pub start_rate: Option<f64>,
    /// Relative width of the bracket at which bisection stops.
    pub tolerance: f64,
    /// Brute force over these rates instead of searching.
    pub grid: Option<Vec<f64>>,
}

/// One run of the search.
#[derive(Debug, Clone)]
pub struct Trial {
    pub rate: f64,
    pub point: Point,
    pub meets: bool,
    /// Worst statistic / limit over the targets.
    pub ratio: f64,
}

/// Why the search stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    Budget,
    Interrupted,
}

/// The search in progress.
pub struct Search<'a> {
    bench: &'a Bench,
    spec: &'a SearchSpec,
    opts: AnalyzeOptions,
    pub trials: Vec<Trial>,
    pub manifest: Manifest,
}

impl<'a> Search<'a> {
    pub fn new(bench: &'a Bench, spec: &'a SearchSpec) -> Search<'a> {
        let k = bench.settings.speedup();
        let mut opts = AnalyzeOptions::default();
        if spec.goodput.is_some() {
            // Per-request checks see the profile's times (the analyzer dilates a
            // sped-up run back by K when it loads the log): the limits as given.
            opts.metrics.slo = Some(spec.slo.per_request());
        }
        let mut settings = bench.settings.to_json();
        settings["run_duration_s"] = serde_json::json!(spec.run_duration.as_secs_f64());
        settings["repeats"] = serde_json::json!(spec.repeats);
        settings["budget_s"] = serde_json::json!(spec.budget.map(|b| b.as_secs_f64()));
        settings["start_rate"] = serde_json::json!(spec.start_rate);
        settings["tolerance"] = serde_json::json!(spec.tolerance);
        settings["grid"] = serde_json::json!(spec.grid);
        let manifest = Manifest {
            format: FORMAT.into(),
            version: 1,
            kind: "search".into(),
            trace: bench.trace.manifest(),
            backend: bench.settings.backend.as_str().into(),
            endpoint: bench.endpoint.clone(),
            model: bench.settings.model.clone(),
            simulated: bench.simulated.clone(),
            speedup: k,
            settings,
            slo: Some(spec.slo.clone()),
            goodput: spec.goodput,
            runs: Vec::new(),
            result: None,
        };
        Search {
            bench,
            spec,
            opts,
            trials: Vec::new(),
            manifest,
        }
    }

    /// Requests of a run at `rate`.
    pub fn requests(&self, rate: f64) -> u64 {
        let n = (rate * self.spec.run_duration.as_secs_f64()).ceil() as u64;
        n.max(MIN_REQUESTS).min(self.bench.trace.len())
    }

    fn at(&self, rate: f64) -> impl Iterator<Item = &Trial> {
        self.trials.iter().filter(move |t| t.rate == rate)
    }

    /// Majority verdict of the runs at `rate` (`None`: not run).
    pub fn verdict(&self, rate: f64) -> Option<bool> {
        let (n, met) = self
            .at(rate)
            .fold((0, 0), |(n, m), t| (n + 1, m + u32::from(t.meets)));
        (n > 0).then_some(2 * met > n)
    }

    /// One more run at `rate`.
    async fn trial(&mut self, rate: f64, phase: &str) -> Result<bool, Stopped> {
        let b = self.bench;
        let n = self.requests(rate);
        let expected = b.expected_wall(rate, n) + b.settings.pause;
        if let Some(budget) = self.spec.budget
            && b.progress.elapsed() + expected > budget
        {
            return Err(Stopped::Budget);
        }
        if !self.trials.is_empty() {
            b.cool_down().await;
        }
        if b.stop.is_stopped() {
            return Err(Stopped::Interrupted);
        }
        let remaining = self
            .spec
            .budget
            .map(|bu| bu.saturating_sub(b.progress.elapsed()));
        b.progress.run("search", rate, None, remaining);
        let repeat = self.at(rate).count() as u32 + 1;
        let out = b
            .run(rate, n, &log_name("rate", rate, repeat))
            .await
            .map_err(|e| {
                eprintln!("search: run at {rate} req/s failed: {e}");
                Stopped::Interrupted
            })?;
        if out.interrupted {
            return Err(Stopped::Interrupted);
        }
        let point = point_with(&out.log, &self.opts).map_err(|e| {
            eprintln!("search: {e}");
            Stopped::Interrupted
        })?;
        let (meets, ratio) = point.meets(&self.spec.slo, self.spec.goodput);
        self.manifest.runs.push(ManifestRun {
            rate,
            time_scale: out.time_scale,
            requests: out.requests,
            log: file_name(&out.log),
            phase: phase.into(),
            repeat,
            complete: out.complete,
            saturated: None,
            meets_slo: Some(meets),
            slo_ratio: Some(ratio),
        });
        let _ = self.manifest.write(&b.settings.dir.join(SEARCH_MANIFEST));
        self.trials.push(Trial {
            rate,
            point,
            meets,
            ratio,
        });
        Ok(meets)
    }

    /// Runs `rate` until it has `n` runs; returns its verdict.
    async fn ensure(&mut self, rate: f64, n: u32, phase: &str) -> Result<bool, Stopped> {
        while (self.at(rate).count() as u32) < n {
            self.trial(rate, phase).await?;
        }
        Ok(self.verdict(rate).unwrap_or(false))
    }
}

/// The search's answer.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchResult {
    /// Highest rate found to meet the SLO (`null`: none did, down to the lowest tried).
    pub rate: Option<f64>,
    /// Lowest rate found to fail it (`null`: none did, up to the highest tried).
    pub fails_at: Option<f64>,
    /// `[rate, fails_at]`: where the boundary lies at the search's resolution.
    pub interval: (Option<f64>, Option<f64>),
    pub runs: usize,
    pub wall_s: f64,
    /// `budget` or `interrupted` when the search stopped before it converged.
    pub stopped: Option<&'static str>,
    /// How noisy the boundary was: each bracketing rate's runs.
    pub noise: Vec<Noise>,
    /// `search` or `grid`.
    pub method: &'static str,
}

/// The runs at one bracketing rate.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Noise {
    pub rate: f64,
    pub runs: usize,
    pub met: usize,
    /// Each target's statistic over the runs: (key, min, max).
    pub targets: Vec<(String, Option<f64>, Option<f64>)>,
}

fn noise(s: &Search, rate: f64) -> Noise {
    let trials: Vec<&Trial> = s.at(rate).collect();
    let targets = s
        .spec
        .slo
        .0
        .iter()
        .map(|t| {
            let vals: Vec<f64> = trials
                .iter()
                .filter_map(|tr| t.value(tr.point.stats(t.metric)))
                .collect();
            let min = vals.iter().copied().reduce(f64::min);
            let max = vals.iter().copied().reduce(f64::max);
            (t.key(), min, max)
        })
        .collect();
    Noise {
        rate,
        runs: trials.len(),
        met: trials.iter().filter(|t| t.meets).count(),
        targets,
    }
}

/// Brackets, bisects and repeats (see the module docs).
async fn search_rates(s: &mut Search<'_>) -> (Option<f64>, Option<f64>, Option<Stopped>) {
    let start = match s.spec.start_rate {
        Some(r) => r,
        None => s.bench.trace.rate(s.bench.trace.len()).unwrap_or(1.0) / 8.0,
    };
    let (mut lo, mut hi) = (None, None);
    let mut r = start;
    for _ in 0..MAX_BRACKET {
        match s.trial(r, "bracket").await {
            Err(e) => return (lo, hi, Some(e)),
            Ok(true) => lo = Some(r),
            Ok(false) => hi = Some(r),
        }
        match (lo, hi) {
            (Some(_), Some(_)) => break,
            (Some(_), None) => r *= 2.0,
            _ => r /= 2.0,
        }
    }
    for _ in 0..MAX_ROUNDS {
        let (Some(mut l), Some(mut h)) = (lo, hi) else {
            return (lo, hi, None);
        };
        while h / l - 1.0 > s.spec.tolerance {
            let mid = (l + h) / 2.0;
            match s.trial(mid, "bisect").await {
                Err(e) => return (Some(l), Some(h), Some(e)),
                Ok(true) => l = mid,
                Ok(false) => h = mid,
            }
        }
        (lo, hi) = (Some(l), Some(h));
        let lo_ok = match s.ensure(l, s.spec.repeats, "repeat").await {
            Err(e) => return (lo, hi, Some(e)),
            Ok(v) => v,
        };
        let hi_ok = match s.ensure(h, s.spec.repeats, "repeat").await {
            Err(e) => return (lo, hi, Some(e)),
            Ok(v) => v,
        };
        if lo_ok && !hi_ok {
            return (lo, hi, None);
        }
        // A majority flipped: the nearest verdicts that still hold bound the boundary.
        let rates: Vec<f64> = s.trials.iter().map(|t| t.rate).collect();
        lo = rates
            .iter()
            .copied()
            .filter(|&x| s.verdict(x) == Some(true) && x < h.max(l))
            .reduce(f64::max);
        hi = rates
            .iter()
            .copied()
            .filter(|&x| s.verdict(x) == Some(false) && lo.is_none_or(|lo| x > lo))
            .reduce(f64::min);
    }
    (lo, hi, None)
}

/// Brute force: every grid rate (with `--repeats` runs each); the answer is the highest
/// rate that meets the SLO, the boundary the lowest above it that fails.
async fn grid_rates(
    s: &mut Search<'_>,
    grid: &[f64],
) -> (Option<f64>, Option<f64>, Option<Stopped>) {
    for &r in grid {
        if let Err(e) = s.ensure(r, s.spec.repeats.max(1), "grid").await {
            let (lo, hi) = grid_answer(s, grid);
            return (lo, hi, Some(e));
        }
    }
    let (lo, hi) = grid_answer(s, grid);
    (lo, hi, None)
}

fn grid_answer(s: &Search, grid: &[f64]) -> (Option<f64>, Option<f64>) {
    let lo = grid
        .iter()
        .copied()
        .filter(|&r| s.verdict(r) == Some(true))
        .reduce(f64::max);
    let hi = grid
        .iter()
        .copied()
        .filter(|&r| s.verdict(r) == Some(false) && lo.is_none_or(|l| r > l))
        .reduce(f64::min);
    (lo, hi)
}

/// Runs the search (or the grid) and writes the manifest with its answer.
pub async fn search(
    bench: &Bench,
    spec: &SearchSpec,
) -> Result<(SearchResult, Manifest), PipelineError> {
    let mut s = Search::new(bench, spec);
    let (lo, hi, stopped) = match &spec.grid {
        Some(g) => grid_rates(&mut s, g).await,
        None => search_rates(&mut s).await,
    };
    let result = SearchResult {
        rate: lo,
        fails_at: hi,
        interval: (lo, hi),
        runs: s.trials.len(),
        wall_s: bench.progress.elapsed().as_secs_f64(),
        stopped: stopped.map(|st| match st {
            Stopped::Budget => "budget",
            Stopped::Interrupted => "interrupted",
        }),
        noise: [lo, hi]
            .into_iter()
            .flatten()
            .map(|r| noise(&s, r))
            .collect(),
        method: if spec.grid.is_some() {
            "grid"
        } else {
            "search"
        },
    };
    s.manifest.result = Some(serde_json::to_value(&result).expect("result serializes"));
    s.manifest
        .write(&bench.settings.dir.join(SEARCH_MANIFEST))?;
    Ok((result, s.manifest))
}

/// Parses `--grid LO:HI:STEP`.
pub fn parse_grid(s: &str) -> Result<Vec<f64>, String> {
    let parts: Vec<f64> = s
        .split(':')
        .map(|p| {
            p.trim()
                .parse::<f64>()
                .map_err(|_| format!("bad --grid `{s}`: expected LO:HI:STEP"))
        })
        .collect::<Result<_, _>>()?;
    let [lo, hi, step] = parts[..] else {
        return Err(format!("bad --grid `{s}`: expected LO:HI:STEP"));
    };
    if !(lo > 0.0 && hi >= lo && step > 0.0 && (hi - lo) / step <= 1000.0) {
        return Err(format!(
            "bad --grid `{s}`: need 0 < LO <= HI, STEP > 0, at most 1000 rates"
        ));
    }
    let n = ((hi - lo) / step + 1e-9).floor() as u64;
    Ok((0..=n).map(|i| lo + i as f64 * step).collect())
}

#[cfg(test)]
mod tests {
    use super::parse_grid;

    #[test]
    fn grid_rates() {
        assert_eq!(parse_grid("1:2:0.5").unwrap(), vec![1.0, 1.5, 2.0]);
        assert_eq!(parse_grid("2:2:1").unwrap(), vec![2.0]);
        for bad in ["1:2", "0:2:1", "2:1:1", "1:2:0", "a:b:c", "1:100000:1"] {
            assert!(parse_grid(bad).is_err(), "{bad}");
        }
    }
}
