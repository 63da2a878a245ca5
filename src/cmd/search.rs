//! `llmib search TRACE --slo ttft_p99=0.5,... -o DIR`: the highest offered rate meeting
//! every SLO (see `llm_infer_bench::search`), with its interval and noise.

use anyhow::anyhow;
use llm_infer_bench::capacity::Bench;
use llm_infer_bench::search::{self, SearchSpec};

use super::Exit;
use super::sweep::{TargetArgs, secs};

#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Targets: METRIC_STAT=SECONDS, metric ttft|tpot|e2e|itl, stat p50|p90|p95|p99|mean
    /// (e.g. ttft_p99=0.5,tpot_p99=0.05).
    #[arg(long)]
    pub slo: String,
    /// Also require this share of requests to meet the per-request SLO (goodput).
    #[arg(long, value_name = "FRACTION")]
    pub goodput: Option<f64>,
    /// Total time the search may take, e.g. 30m, 90s, 1h (no new run starts past it).
    #[arg(long, value_name = "TIME")]
    pub budget: Option<String>,
    /// Each run spans this much of the trace at its rate, e.g. 60s.
    #[arg(long, value_name = "TIME", default_value = "60s")]
    pub run_duration: String,
    /// Runs at each of the two bracketing rates.
    #[arg(long, default_value_t = 3)]
    pub repeats: u32,
    /// First rate tried (default: the trace's rate / 8).
    #[arg(long, value_name = "R", allow_negative_numbers = true)]
    pub start_rate: Option<f64>,
    /// Bisect until the bracket is this narrow (relative).
    #[arg(long, default_value_t = 0.05)]
    pub tolerance: f64,
    /// Brute force over LO:HI:STEP instead of searching (to check a search).
    #[arg(long, value_name = "LO:HI:STEP", allow_hyphen_values = true)]
    pub grid: Option<String>,
}

/// `90`, `90s`, `30m`, `1h`, `1.5e3s` as a duration.
fn parse_time(what: &str, s: &str) -> anyhow::Result<std::time::Duration> {
    let s = s.trim();
    // The unit is the trailing letters after the last digit (`1e3s`: `s`, not `e3s`).
    let split = s
        .rfind(|c: char| c.is_ascii_digit() || c == '.')
        .map_or(0, |i| i + 1);
    let (num, unit) = s.split_at(split);
    let k = match unit.trim() {
        "" | "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(anyhow!("{what} `{s}`: unit must be s, m or h")),
    };
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| anyhow!("{what} `{s}`: expected a number with s, m or h"))?;
    const MAX_SECS: f64 = 1e9; // about 31 years
    anyhow::ensure!(
        v.is_nan() || v * k <= MAX_SECS,
        "{what} `{s}`: out of range (at most {MAX_SECS:e} seconds)"
    );
    let d = secs(what, v * k)?;
    anyhow::ensure!(!d.is_zero(), "{what} must be greater than 0");
    Ok(d)
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    // An early error leaves no empty output directory behind.
    let created = llm_infer_bench::capacity_dir::Created::note(&args.target.output);
    let r = search_into(args);
    if r.is_err() {
        created.remove_if_empty();
    }
    r
}

fn search_into(args: Args) -> anyhow::Result<Exit> {
    let slo =
        analyzer::capacity::SloTargets::parse(&args.slo).map_err(|e| anyhow!("--slo: {e}"))?;
    if let Some(g) = args.goodput {
        anyhow::ensure!(g > 0.0 && g <= 1.0, "--goodput must be in (0, 1]");
    }
    if let Some(r) = args.start_rate {
        llm_infer_bench::capacity::check_rate("--start-rate", r).map_err(|e| anyhow!(e))?;
    }
    anyhow::ensure!(args.repeats >= 1, "--repeats must be at least 1");
    anyhow::ensure!(
        args.tolerance > 0.0 && args.tolerance < 1.0,
        "--tolerance must be in (0, 1)"
    );
    let spec = SearchSpec {
        slo: slo.clone(),
        goodput: args.goodput,
        budget: args
            .budget
            .as_deref()
            .map(|b| parse_time("--budget", b))
            .transpose()?,
        run_duration: parse_time("--run-duration", &args.run_duration)?,
        repeats: args.repeats,
        start_rate: args.start_rate,
        tolerance: args.tolerance,
        grid: args
            .grid
            .as_deref()
            .map(search::parse_grid)
            .transpose()
            .map_err(|e| anyhow!(e))?,
    };
    let settings = args.target.settings(None)?;
    let dir = settings.dir.clone();
    let rt = super::runtime()?;
    let signals = super::on_signals(&rt)?;
    let (result, _) = rt.block_on(async {
        let bench = Bench::start(settings, signals.stop.clone()).await?;
        let r = search::search(&bench, &spec).await;
        bench.shutdown().await?;
        anyhow::Ok(r?)
    })?;
    // A server that failed mid-search: the runs measured are analysed and kept, the
    // answer so far printed, and the failure is the command's error (exit 2).
    let failure = result.failure.as_ref().filter(|_| !signals.interrupted());
    let too_short = result.fillable_rate.map(|max| {
        let n = (max * spec.run_duration.as_secs_f64()).round() as u64;
        search::too_short_line(n, spec.run_duration, max)
    });
    if let (Some(line), 0) = (&too_short, result.runs) {
        anyhow::bail!("search: {line}");
    }
    let exit = match (failure, result.runs) {
        (Some(_), 0) => Exit::NothingSucceeded,
        _ => super::capacity_analysis(&dir, Some(slo.clone()))?,
    };
    print_result(&result, &slo);
    if let Some(line) = too_short {
        eprintln!("search: no failing rate found: {line}; the rate found is a lower bound");
    }
    if result.stopped == Some("interrupted") || signals.interrupted() {
        return Ok(Exit::Interrupted);
    }
    if let Some(why) = failure {
        anyhow::bail!(
            "search stopped: {why} ({} run{} measured before, kept in {})",
            result.runs,
            if result.runs == 1 { "" } else { "s" },
            dir.display()
        );
    }
    Ok(exit)
}

fn rate(r: Option<f64>) -> String {
    r.map_or("-".into(), analyzer::report::fmt_qps)
}

fn print_result(r: &search::SearchResult, slo: &analyzer::capacity::SloTargets) {
    if r.runs == 0 {
        return;
    }
    match r.rate {
        Some(x) => println!(
            "highest rate meeting {slo}: {}{} req/s (boundary in [{}, {}] req/s; {} runs, {:.0} s)",
            if r.fillable_rate.is_some() {
                "at least "
            } else {
                ""
            },
            analyzer::report::fmt_qps(x),
            rate(r.interval.0),
            rate(r.interval.1),
            r.runs,
            r.wall_s
        ),
        None => println!(
            "no rate tried meets {slo} (lowest failing: {} req/s)",
            rate(r.fails_at)
        ),
    }
    for n in &r.noise {
        let spread: Vec<String> = n
            .targets
            .iter()
            .map(|(k, lo, hi)| format!("{k} {}..{}", rate(*lo), rate(*hi)))
            .collect();
        println!(
            "  at {} req/s: {}/{} runs met; {}",
            analyzer::report::fmt_qps(n.rate),
            n.met,
            n.runs,
            spread.join(", ")
        );
    }
    if let Some(why) = r.stopped {
        println!("search stopped early ({why}): the answer is the bracket reached");
    }
}
