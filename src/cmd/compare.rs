//! `llmib compare A B [--fail-if RULE]...`: is B really faster than A? Paired per request
//! when both replayed the same trace (see `analyzer::compare`), with intervals, p-values,
//! verdicts, the context that makes the comparison fair, and a CI gate.

use std::path::{Path, PathBuf};

use analyzer::compare::gate::Rule;
use analyzer::compare::{CompareSpec, compare, render};
use anyhow::{Context, anyhow};
use formats::RunLog;

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// Run logs, or directories holding one run each (one run log, or the shard logs of
    /// one sharded run): A then B; with --vs, all of them are A; with --baseline, each
    /// is compared against the baseline.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// B's runs, when each side has several (`A1 A2 A3 --vs B1 B2 B3`).
    #[arg(long, num_args = 1.., value_name = "RUN")]
    vs: Vec<PathBuf>,
    /// A: every other run is compared against it.
    #[arg(long, value_name = "RUN", conflicts_with = "vs")]
    baseline: Option<PathBuf>,
    /// Statistics compared per metric: p50, p90, p95, p99, mean.
    #[arg(long, value_delimiter = ',', default_value = "p50,p90")]
    stat: Vec<String>,
    /// Level of the intervals and verdicts.
    #[arg(long, default_value_t = 0.05)]
    alpha: f64,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 2000)]
    resamples: u32,
    /// The bootstrap's block length in requests (consecutive in arrival order), or
    /// `auto`: the requests A had in flight on average, at most sqrt(n). 1 resamples
    /// requests one by one.
    #[arg(long, default_value = "auto", value_name = "N|auto")]
    block: String,
    /// Goodput SLOs in seconds (as `analyze --slo`), e.g. ttft=0.5,tpot=0.05: adds good
    /// requests/s per run, run level.
    #[arg(long)]
    slo: Option<String>,
    /// Seed of the bootstrap's draws.
    #[arg(long, default_value_t = analyzer::compare::DEFAULT_SEED, value_parser = super::seed_arg)]
    seed: u64,
    /// Compare the distributions even when both sides replayed the same trace.
    #[arg(long, conflicts_with = "paired")]
    unpaired: bool,
    /// Demand pairing: refuse sides of different traces.
    #[arg(long)]
    paired: bool,
    /// Latencies from: dispatch (default), sent, scheduled.
    #[arg(long, default_value = "dispatch")]
    from: String,
    /// Write the comparison as JSON.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write the rows as CSV.
    #[arg(long, value_name = "FILE")]
    csv: Option<PathBuf>,
    /// Draw the figures into DIR: the forest plot of every row's difference and
    /// interval, and per metric the CDF of the paired per-request differences (unpaired:
    /// of each side's values).
    #[arg(short, long, value_name = "DIR")]
    output: Option<PathBuf>,
    /// Exit 1 when a difference is significant and beyond the threshold, e.g.
    /// `tpot_p50>+5%`, `throughput<-3%` (repeatable).
    #[arg(long = "fail-if", value_name = "RULE")]
    fail_if: Vec<String>,
}

/// The forest plot and the per-metric CDFs of one comparison into `dir`.
fn figures(dir: &Path, suffix: &str, c: &analyzer::compare::Comparison) -> anyhow::Result<()> {
    use analyzer::compare::stat_name;
    let level = 100.0 * (1.0 - c.spec.alpha);
    let rows: Vec<analyzer::figures::ForestRow> = c
        .rows
        .iter()
        .map(|r| {
            let label = format!("{} {}", r.metric.name(), stat_name(r.stat));
            (label, r.relative, r.interval.lo, r.interval.hi)
        })
        .collect();
    let title = format!("B against A: differences and {level:.0}% intervals");
    analyzer::figures::write_forest(dir, &format!("compare-forest{suffix}"), &title, &rows)?;
    for s in &c.samples {
        let unit = s.metric.unit();
        let (series, title, x) = if c.paired {
            let d: Vec<f64> = s.a.iter().zip(&s.b).map(|(a, b)| b - a).collect();
            (
                vec![("B - A, per request".to_string(), d)],
                format!("{}: paired per-request differences", s.metric.name()),
                format!("B - A ({unit})"),
            )
        } else {
            (
                vec![
                    ("A".to_string(), s.a.clone()),
                    ("B".to_string(), s.b.clone()),
                ],
                format!("{}: A and B (unpaired)", s.metric.name()),
                format!("{} ({unit})", s.metric.name()),
            )
        };
        let name = format!("compare-{}{suffix}", s.metric.name());
        analyzer::figures::write_cdf(dir, &name, &title, &x, &series)?;
    }
    Ok(())
}

/// The run logs in a directory (`*.msgpack`), sorted.
fn logs_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("{}: cannot read the directory", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|f| f.extension().is_some_and(|x| x == "msgpack"))
        .collect();
    logs.sort();
    Ok(logs)
}

/// The shard logs `logs` of one sharded run, merged in memory; an error when they are
/// not exactly the shards of one run, every shard present.
fn read_shard_set(dir: &Path, logs: Vec<PathBuf>) -> anyhow::Result<RunLog> {
    let n = logs.len();
    let mut headers = Vec::with_capacity(n);
    for p in logs {
        let r = formats::LogReader::open(&p).map_err(|e| anyhow!("{}: {e}", p.display()))?;
        headers.push((p, r.header().clone()));
    }
    let (single, mut sets) = analyzer::merge::group(headers)?;
    anyhow::ensure!(
        single.is_empty() && sets.len() == 1,
        "{}: {n} run logs in it and they are not the shards of one run; name the run (a directory stands for one run)",
        dir.display()
    );
    let set = sets.remove(0);
    if let Some(note) = set.missing_note() {
        anyhow::bail!("{}: {note}: a side needs every shard", dir.display());
    }
    Ok(set.read()?)
}

/// A run: a log file, a directory holding one, or a directory of one run's shard logs.
fn read(p: &Path) -> anyhow::Result<(String, RunLog)> {
    if !p.is_dir() {
        let log = formats::read_log(p).map_err(|e| anyhow!("{}: {e}", p.display()))?;
        return Ok((p.display().to_string(), log));
    }
    let mut logs = logs_in(p)?;
    match logs.len() {
        0 => Err(anyhow!("{}: no run log (*.msgpack) in it", p.display())),
        1 => {
            let path = logs.remove(0);
            let log = formats::read_log(&path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
            Ok((path.display().to_string(), log))
        }
        n => {
            let log = read_shard_set(p, logs)?;
            Ok((format!("{} ({n} shards)", p.display()), log))
        }
    }
}

fn spec(args: &Args) -> anyhow::Result<CompareSpec> {
    anyhow::ensure!(
        args.alpha > 0.0 && args.alpha < 0.5,
        "--alpha must be in (0, 0.5)"
    );
    anyhow::ensure!(args.resamples >= 100, "--resamples must be at least 100");
    let stats = args
        .stat
        .iter()
        .map(|s| {
            analyzer::stats::Stat::parse(s.trim()).ok_or_else(|| {
                anyhow!("--stat: unknown statistic `{s}` (p50, p90, p95, p99, mean)")
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let from = analyzer::metrics::options::LatencyFrom::parse(&args.from)
        .ok_or_else(|| anyhow!("--from: expected dispatch, sent or scheduled"))?;
    Ok(CompareSpec {
        alpha: args.alpha,
        stats,
        resamples: args.resamples,
        seed: args.seed,
        paired: match (args.paired, args.unpaired) {
            (true, _) => Some(true),
            (_, true) => Some(false),
            _ => None,
        },
        from,
        block: match args.block.as_str() {
            "auto" => None,
            n => Some(
                n.parse::<usize>()
                    .ok()
                    .filter(|b| *b >= 1)
                    .ok_or_else(|| anyhow!("--block: expected auto or a whole number >= 1"))?,
            ),
        },
        slo: args
            .slo
            .as_deref()
            .map(analyzer::slo::Slo::parse)
            .transpose()
            .map_err(|e| anyhow!("--slo: {e}"))?,
    })
}

/// The comparisons asked: (A's runs, B's runs) pairs of run lists.
fn sides(args: &Args) -> anyhow::Result<Vec<(Vec<PathBuf>, Vec<PathBuf>)>> {
    if !args.vs.is_empty() {
        return Ok(vec![(args.runs.clone(), args.vs.clone())]);
    }
    if let Some(base) = &args.baseline {
        let others: Vec<PathBuf> = args.runs.iter().filter(|r| *r != base).cloned().collect();
        anyhow::ensure!(
            !others.is_empty(),
            "--baseline: no other run to compare against it"
        );
        return Ok(others
            .into_iter()
            .map(|o| (vec![base.clone()], vec![o]))
            .collect());
    }
    anyhow::ensure!(
        args.runs.len() == 2,
        "give two runs (A B), several a side with --vs (A1 A2 --vs B1 B2), or --baseline"
    );
    Ok(vec![(
        vec![args.runs[0].clone()],
        vec![args.runs[1].clone()],
    )])
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let spec = spec(&args)?;
    let rules = args
        .fail_if
        .iter()
        .map(|r| Rule::parse(r).map_err(|e| anyhow!(e)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let plan = sides(&args)?;
    // Everything is read and compared before anything is written.
    let mut results = Vec::new();
    for (a, b) in &plan {
        let ra = a
            .iter()
            .map(|p| read(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let rb = b
            .iter()
            .map(|p| read(p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ca: Vec<(&str, &RunLog)> = ra.iter().map(|(n, l)| (n.as_str(), l)).collect();
        let cb: Vec<(&str, &RunLog)> = rb.iter().map(|(n, l)| (n.as_str(), l)).collect();
        let c = compare(&ca, &cb, &spec)?;
        let names =
            |v: &[(String, RunLog)]| v.iter().map(|x| x.0.clone()).collect::<Vec<_>>().join(", ");
        results.push((names(&ra), names(&rb), c));
    }
    let mut failed = false;
    let mut json = Vec::new();
    let mut csv = String::new();
    for (i, (a, b, c)) in results.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("A: {a}\nB: {b}\n");
        print!("{}", render::markdown(c));
        for rule in &rules {
            let o = rule.check(c);
            failed |= o.failed;
            println!("{}", o.line);
        }
        let mut j = render::json(c);
        j["a"] = serde_json::json!(a);
        j["b"] = serde_json::json!(b);
        json.push(j);
        let body = render::csv(c);
        if i == 0 {
            csv.push_str(&body);
        } else {
            csv.push_str(body.split_once('\n').map_or("", |x| x.1));
        }
    }
    if let Some(dir) = &args.output {
        for (i, (_, _, c)) in results.iter().enumerate() {
            let suffix = if results.len() > 1 {
                format!("-{}", i + 1)
            } else {
                String::new()
            };
            figures(dir, &suffix, c)?;
        }
    }
    if let Some(p) = &args.json {
        let v = if json.len() == 1 {
            json.remove(0)
        } else {
            serde_json::Value::Array(json)
        };
        formats::write_atomic(p, serde_json::to_string_pretty(&v)?.as_bytes())?;
    }
    if let Some(p) = &args.csv {
        formats::write_atomic(p, csv.as_bytes())?;
    }
    Ok(if failed {
        Exit::Regression
    } else {
        Exit::Success
    })
}
