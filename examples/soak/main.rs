//! Soak benchmark (not a test): 200,000 requests at 2,000 req/s through the real `llmib`
//! binaries with 5% injected faults, checked request by request.
//!
//! Why: the tests replay hundreds of requests in-process; only a long run at a realistic
//! rate, with the server in another process, shows that the client keeps its promises
//! under load: exactly one record per request, every server-side fault recorded as what
//! it was and no client error without a cause, flat memory, and a log that reaches the
//! disk at least every second (the writer promises every 500 ms).
//!
//! What it does, with the binaries a user runs:
//! 1. `llmib generate` writes a trace from a spec (Poisson or constant arrivals, small
//!    prompts and outputs: see `plan.rs`);
//! 2. `llmib sim --profile null` serves it with faults spread over 429, 500, 503,
//!    mid-stream disconnect, stall and slow first byte, and writes its truth log;
//! 3. `llmib replay` replays it; meanwhile the soak samples the client's RSS every
//!    ~100 ms and decodes the log as it grows (`tail.rs`), stamping when each record
//!    became readable;
//! 4. the simulator is stopped with SIGINT (it flushes its truth log), and the checks of
//!    `verify.rs` and `faults.rs` run. Results are printed as Markdown tables; the exit
//!    status is 1 if any check failed, 2 if the soak itself could not run.
//!
//! Run (release; the `llmib` binary is taken from beside the example, `--llmib` or
//! `$LLMIB_BIN` to override):
//! `cargo build --release -p llm-infer-bench --bins --examples` then
//! `cargo run --release --example soak` (full: 200k requests, ~100 s) or
//! `cargo run --release --example soak -- --quick` (10k requests, ~5 s);
//! `--requests N --rate R --arrival constant|poisson --dialect tgi|vllm|lightllm|openai
//! --faults F --seed S --dir DIR` (keeps the trace, logs and `samples.csv` in DIR).

mod faults;
mod measure;
mod monitor;
mod plan;
mod procs;
mod report;
mod tail;
mod verify;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::faults::Injected;
use crate::monitor::Observed;
use crate::plan::Plan;
use crate::verify::Check;

/// Most the client's steady RSS growth per completed request, bytes (see
/// `measure::steady_growth`). The replayer keeps 25 B per request by design (three u64
/// lateness/delay samples for exact percentiles and a one-record flag); a leaked record
/// (~450 B on disk), body or connection buffer (kilobytes) per request exceeds the limit.
const RSS_SLOPE_LIMIT_BYTES: f64 = 64.0;
/// Shorter runs are dominated by the allocator's warm-up (10k requests: 80-170 B per
/// request), so the growth per request is judged only from this many requests on.
const RSS_SLOPE_MIN_REQUESTS: u64 = 100_000;
/// Gross bound on the growth from the first to the last tenth of the run, as a share of
/// the starting RSS: one-off high-water marks after a client stall (+9 MiB seen under
/// load) pass, unbounded growth does not.
const RSS_DRIFT_LIMIT: f64 = 0.25;
/// The promise: the log reaches the disk at least every second.
const FLUSH_LIMIT: Duration = Duration::from_secs(1);

#[derive(Parser)]
#[command(about = "Soak benchmark: replay through the real llmib binaries with faults")]
struct Args {
    /// Requests in the trace (default 200,000; 10,000 with --quick).
    #[arg(long)]
    requests: Option<u64>,
    /// Arrival rate, requests/s.
    #[arg(long, default_value_t = 2000.0)]
    rate: f64,
    /// Arrival process: poisson or constant.
    #[arg(long, default_value = "poisson", value_parser = ["poisson", "constant"])]
    arrival: String,
    /// Simulator dialect and replay backend.
    #[arg(long, default_value = "tgi", value_parser = ["tgi", "vllm", "lightllm", "openai"])]
    dialect: String,
    /// Share of requests with an injected fault.
    #[arg(long, default_value_t = 0.05)]
    faults: f64,
    /// Seed of the trace and of the fault draws.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A short run (10,000 requests) to check the set-up.
    #[arg(long)]
    quick: bool,
    /// Keep the trace, spec, logs and samples.csv in this directory (default: a
    /// temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The llmib binary (default: $LLMIB_BIN, else target/<profile>/llmib).
    #[arg(long)]
    llmib: Option<PathBuf>,
}

fn main() -> ExitCode {
    match soak(Args::parse()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("soak: some checks FAILED (see the table above)");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("soak: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The files of one soak, in a directory of their own.
struct Files {
    spec: PathBuf,
    trace: PathBuf,
    truth: PathBuf,
    log: PathBuf,
    samples: PathBuf,
}

impl Files {
    fn new(dir: &Path) -> anyhow::Result<Files> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let f = |name: &str| dir.join(name);
        let files = Files {
            spec: f("soak.toml"),
            trace: f("trace.msgpack"),
            truth: f("truth.jsonl"),
            log: f("run.msgpack"),
            samples: f("samples.csv"),
        };
        for p in [
            &files.spec,
            &files.trace,
            &files.truth,
            &files.log,
            &files.samples,
        ] {
            if p.exists() {
                bail!("{} exists: give --dir a fresh directory", p.display());
            }
        }
        Ok(files)
    }
}

fn plan(args: &Args) -> anyhow::Result<Plan> {
    let plan = Plan {
        requests: args
            .requests
            .unwrap_or(if args.quick { 10_000 } else { 200_000 }),
        rate: args.rate,
        arrival: args.arrival.clone(),
        dialect: args.dialect.clone(),
        fault_rate: args.faults,
        seed: args.seed,
    };
    if plan.requests == 0 || !(plan.rate > 0.0 && plan.rate.is_finite()) {
        bail!("--requests and --rate must be positive");
    }
    if !(0.0..=1.0).contains(&plan.fault_rate) {
        bail!("--faults is a share of requests, from 0 to 1");
    }
    Ok(plan)
}

fn soak(args: Args) -> anyhow::Result<bool> {
    let plan = plan(&args)?;
    let llmib = procs::find_llmib(args.llmib)?;
    let temp = tempfile::tempdir().context("cannot create a temporary directory")?;
    let files = Files::new(args.dir.as_deref().unwrap_or(temp.path()))?;
    let load_before = procs::load_average();
    eprintln!(
        "soak: {} requests at {} req/s ({}), {} dialect, {:.1}% faults; llmib {}; load {load_before}",
        plan.requests,
        plan.rate,
        plan.arrival,
        plan.dialect,
        100.0 * plan.fault_rate,
        llmib.display()
    );
    let (observed, sim_ok) = run(&llmib, &plan, &files)?;
    let load_after = procs::load_average();
    std::fs::write(&files.samples, measure::samples_csv(&observed.samples))
        .context("writing samples.csv")?;
    let truth = simulator::truth::read_truth_log(&files.truth)
        .with_context(|| format!("reading the truth log {}", files.truth.display()))?;
    let injected = Injected {
        faults: plan.faults(),
        seed: plan.seed,
    };
    let (checks, tally) = evaluate(&plan, &observed, &truth, &injected, sim_ok);
    report::print(&report::Report {
        title: format!(
            "soak: llmib replay vs llmib sim --profile null ({} dialect, streamed)",
            plan.dialect
        ),
        load_before,
        load_after,
        replay_summary: &observed.summary,
        requests: plan.requests,
        rate: plan.rate,
        arrival: &plan.arrival,
        replay_wall_s: observed.wall.as_secs_f64(),
        faults: &tally,
        records: observed.tailed.records.len() as u64,
        trailer: &trailer_text(&observed),
        rss: measure::rss(&observed.samples, plan.requests),
        flush: measure::flush(&observed.tailed.records),
        lateness: measure::lateness(&observed.tailed.records),
        major_faults: measure::major_faults(&observed.samples, plan.requests),
        checks: &checks,
    });
    if let Some(dir) = &args.dir {
        eprintln!("soak: files kept in {}", dir.display());
    }
    Ok(checks.iter().all(|c| c.ok))
}

/// Generates the trace, serves it with faults and replays it; true if the simulator
/// stopped cleanly (its truth log complete).
fn run(llmib: &Path, plan: &Plan, files: &Files) -> anyhow::Result<(Observed, bool)> {
    std::fs::write(&files.spec, plan.spec()).context("writing the spec")?;
    let (spec, trace) = (files.spec.display(), files.trace.display());
    procs::run_llmib(
        llmib,
        &["generate", &spec.to_string(), "-o", &trace.to_string()],
    )?;
    let (sim, url) = procs::start_sim(llmib, &plan.sim_args(&files.truth))?;
    let replay_args = plan.replay_args(&files.trace, &url, &files.log);
    let observed = monitor::observe(llmib, plan, &replay_args, &files.log)?;
    let sim_status = sim.stop(libc::SIGINT, Duration::from_secs(30))?;
    Ok((observed, sim_status.success()))
}

fn trailer_text(o: &Observed) -> String {
    match &o.tailed.end {
        Ok(formats::LogEnd::Trailer(t)) if t.complete => "complete, verified".into(),
        Ok(formats::LogEnd::Trailer(_)) => "verified, run incomplete".into(),
        Ok(formats::LogEnd::Truncated { .. }) => "missing".into(),
        Err(e) => format!("unreadable: {e}"),
    }
}

/// Every check of the run, and the per-fault tally.
fn evaluate(
    plan: &Plan,
    o: &Observed,
    truth: &[simulator::truth::TruthRecord],
    inj: &Injected,
    sim_ok: bool,
) -> (Vec<Check>, Vec<faults::FaultTally>) {
    let n = plan.requests;
    let records = &o.tailed.records;
    let ids = verify::by_id(records, n);
    let truth_ids = faults::truth_by_id(truth, n);
    let tally = faults::fault_tally(truth, &ids, inj);
    let mut checks = vec![
        Check::new(
            "processes exited cleanly",
            o.status.success() && !o.overran && sim_ok,
            format!(
                "replay {}{}, simulator {}",
                o.status,
                if o.overran {
                    " (overran, interrupted)"
                } else {
                    ""
                },
                if sim_ok { "ok" } else { "failed" }
            ),
        ),
        verify::one_record_per_request(records, n),
        verify::trailer(&o.tailed.end, n),
        verify::truth_covers_trace(truth, n),
        verify::truth_faults_are_the_draws(truth, inj),
        faults::faults_accounted(truth, &tally, plan.fault_rate > 0.0),
        faults::no_unexplained_errors(records, &truth_ids),
        faults::clean_requests(truth, &ids),
    ];
    checks.extend(resource_checks(o, n));
    (checks, tally)
}

/// Flat memory and a log that reaches the disk at least every second.
fn resource_checks(o: &Observed, n: u64) -> [Check; 2] {
    [
        rss_check(&measure::rss(&o.samples, n), n),
        flush_check(&measure::flush(&o.tailed.records)),
    ]
}

fn rss_check(rss: &measure::Rss, n: u64) -> Check {
    if rss.start == 0 {
        return Check::new(
            "client RSS flat",
            false,
            "no RSS sample while requests were completing".into(),
        );
    }
    let slope_judged = n >= RSS_SLOPE_MIN_REQUESTS;
    let drift_limit = (rss.start as f64 * RSS_DRIFT_LIMIT) as i64;
    Check::new(
        "client RSS flat",
        rss.drift <= drift_limit
            && (!slope_judged || rss.bytes_per_request <= RSS_SLOPE_LIMIT_BYTES),
        format!(
            "start {} KiB, peak {} KiB, end {} KiB; drift {} KiB (limit {drift_limit}), steady growth {:.1} B per request ({})",
            rss.start,
            rss.peak,
            rss.end,
            rss.drift,
            rss.bytes_per_request,
            if slope_judged {
                format!("limit {RSS_SLOPE_LIMIT_BYTES}")
            } else {
                format!("not judged below {RSS_SLOPE_MIN_REQUESTS} requests")
            }
        ),
    )
}

fn flush_check(flush: &measure::Flush) -> Check {
    let limit = FLUSH_LIMIT.as_nanos() as u64;
    Check::new(
        "log flushed at least every second",
        flush.max_gap_ns <= limit && flush.max_delay_ns <= limit,
        format!(
            "longest on-disk standstill while requests completed {}, longest completion-to-disk {} (writer promise 500 ms)",
            replayer::fmt_ns(flush.max_gap_ns),
            replayer::fmt_ns(flush.max_delay_ns)
        ),
    )
}
