//! `llmib replay`: replay a trace against a backend, open loop, writing a raw run log.
//!
//! Flags only; the work is in the `replayer` crate. Ctrl-C or SIGTERM once stops
//! dispatching and gives in-flight requests `--grace` seconds; a second signal cancels
//! them at once. The log is completed with its trailer either way, and the exit status
//! is 130. A run in which no request succeeded exits 1.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use formats::{Outcome, OutputGuard};
use replayer::{BackendKind, IgnoreEos, ReplayConfig, RequestFields};

use super::Exit;
use super::endpoint::EndpointArgs;

#[derive(clap::Args)]
pub struct Args {
    /// Trace file to replay.
    trace: PathBuf,
    /// Wire format: tgi, vllm, lightllm, openai, openai-chat, openai-responses, anthropic,
    /// sglang or llamacpp.
    #[arg(long)]
    backend: BackendKind,
    /// Server base URL, e.g. http://127.0.0.1:8080 or https://llm.example.com (TLS).
    #[arg(long)]
    endpoint: String,
    /// Model name sent to OpenAI-style servers (default: the only model the server
    /// lists at GET /v1/models; several are an error naming them).
    #[arg(long)]
    model: Option<String>,
    /// Stream responses (the default).
    #[arg(long, overrides_with = "no_stream")]
    stream: bool,
    /// Ask for whole answers instead of streams.
    #[arg(long)]
    no_stream: bool,
    /// Run log to write (must not exist, unless --force).
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing run log (never the trace being replayed).
    #[arg(long)]
    force: bool,
    /// Cap on requests in flight; later requests wait in trace order (logged with their
    /// wait, never dropped). Default: unbounded (open loop).
    #[arg(long)]
    concurrency: Option<u32>,
    /// Keep-alive connections to open before the clock starts, so that no request pays
    /// for connection setup inside its timings. Default: the --concurrency cap, or
    /// without one the most requests due within any one second (at most 1024, and
    /// within the open-file limit). 0 disables the warm-up.
    #[arg(long, value_name = "N")]
    connections: Option<u32>,
    /// Mark the first N requests as warmup (excluded from metrics by the analyzer).
    #[arg(long, default_value_t = 0)]
    warmup: u32,
    /// Per-request timeout in seconds (> 0), from dispatch to the end of the response.
    #[arg(long)]
    timeout: Option<f64>,
    /// Replay K times faster (arrival offsets divided by K).
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Replay only the first N requests.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Stop dispatching after this many seconds (the rest is logged not_sent).
    #[arg(long)]
    duration: Option<f64>,
    /// After a stop, seconds in-flight requests may still finish before being cancelled.
    #[arg(long, default_value_t = 5.0)]
    grace: f64,
    /// Extra request header `K:V` (repeatable; values are never logged).
    #[arg(long = "header", value_name = "K:V")]
    headers: Vec<String>,
    #[command(flatten)]
    connection: EndpointArgs,
    /// Always send ignore_eos (default: as each trace request says).
    #[arg(long, conflicts_with = "no_ignore_eos")]
    ignore_eos: bool,
    /// Never send ignore_eos (strict servers refuse unknown fields).
    #[arg(long)]
    no_ignore_eos: bool,
    /// OpenAI dialect: send min_tokens = max_tokens.
    #[arg(long)]
    min_tokens: bool,
    /// OpenAI dialect, streaming: send stream_options.include_usage (the default).
    #[arg(long, overrides_with = "no_stream_usage")]
    stream_usage: bool,
    /// Do not send stream_options at all.
    #[arg(long)]
    no_stream_usage: bool,
    /// OpenAI dialect: ask for usage on every chunk (continuous_usage_stats; vLLM, SGLang),
    /// the exact way to count tokens per event.
    #[arg(long)]
    continuous_usage: bool,
    /// Send prompts as token ids (openai completions, sglang, llamacpp; the trace must
    /// hold them).
    #[arg(long)]
    prompt_token_ids: bool,
    /// The server's context limit (vLLM's --max-model-len), when known: vLLM's legacy
    /// server caps output at N - prompt + 1 tokens instead of refusing, so counts
    /// assumed from max_tokens are capped likewise (and flagged per record).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    max_model_len: Option<u32>,
    /// Replay only shard I of N (0 <= I < N) of the trace: requests (whole sessions)
    /// dealt out in arrival order, see the README's Sharded replay. The log holds only
    /// this shard's records; merge the N logs with `llmib merge` or analyse them together.
    #[arg(long, value_name = "I/N", conflicts_with = "shards")]
    shard: Option<replayer::Shard>,
    /// Shard count N, the index I taken from the environment: JOB_COMPLETION_INDEX
    /// (Kubernetes Indexed Job), else SLURM_ARRAY_TASK_ID (Slurm job array, --array=0-N-1).
    #[arg(long, value_name = "N", value_parser = super::shard_count_arg)]
    shards: Option<u32>,
    /// Start the run clock at this wall-clock instant: UNIX_TIME_NS (ns since the epoch,
    /// e.g. from `date +%s%N`), computed once and given to every shard of one run; or
    /// +SECONDS from this process's start (a single replay). An instant already past,
    /// or more than 7 days ahead, is an error. Ctrl-C or SIGTERM while waiting for it
    /// ends the command at once (exit 130), with nothing sent and no log written.
    #[arg(long, value_name = "UNIX_TIME_NS|+SECONDS")]
    start_at: Option<String>,
    /// Scrape the server's Prometheus metrics during the run (queue, running, KV-cache
    /// usage) into RUN_LOG.server-metrics.jsonl: `auto` (/metrics on the endpoint's
    /// host; a warning if it does not answer) or a URL (must answer, or the run fails).
    #[arg(long, value_name = "URL|auto")]
    server_metrics: Option<replayer::ServerMetricsSource>,
    /// Seconds between two scrapes of --server-metrics (at least 0.01).
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 0.5,
        requires = "server_metrics"
    )]
    server_metrics_interval: f64,
    /// Drop the server's prefix cache just before the run starts (vLLM POST
    /// /reset_prefix_cache, SGLang POST /flush_cache), so the run starts cold; recorded
    /// in the run log's header. A server without the endpoint is a warning, not a failure.
    #[arg(long)]
    reset_prefix_cache: bool,
    /// Skip the connectivity check before the run.
    #[arg(long)]
    no_check: bool,
    /// No progress bar.
    #[arg(short, long)]
    quiet: bool,
}

fn parse_header(h: &str) -> anyhow::Result<(String, String)> {
    match h.split_once(':') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.trim().to_string())),
        _ => bail!("--header `{h}`: expected K:V"),
    }
}

/// Environment variables giving the shard index with `--shards N`, in precedence order.
pub const SHARD_INDEX_ENV: [&str; 2] = ["JOB_COMPLETION_INDEX", "SLURM_ARRAY_TASK_ID"];

/// The shard to replay: `--shard I/N`, or `--shards N` with I from the first of
/// [`SHARD_INDEX_ENV`] that `env` has.
fn resolve_shard(
    shard: Option<replayer::Shard>,
    shards: Option<u32>,
    env: impl Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<replayer::Shard>> {
    let Some(n) = shards else {
        return Ok(shard);
    };
    let Some((name, value)) = SHARD_INDEX_ENV
        .iter()
        .find_map(|name| env(name).map(|v| (*name, v)))
    else {
        bail!(
            "--shards {n}: neither JOB_COMPLETION_INDEX nor SLURM_ARRAY_TASK_ID is set (give --shard I/N)"
        );
    };
    let i: u32 = value
        .trim()
        .parse()
        .with_context(|| format!("--shards {n}: {name}={value} is not a shard index"))?;
    let s = replayer::Shard::new(i, n)
        .with_context(|| format!("--shards {n}: {name}={i} is not below the shard count"))?;
    Ok(Some(s))
}

/// `--start-at`: ns since the epoch, or `+SECONDS` from `now_ns`.
fn parse_start_at(v: &str, now_ns: u64) -> anyhow::Result<u64> {
    if let Some(rel) = v.strip_prefix('+') {
        let d = rel
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|s| Duration::try_from_secs_f64(s).ok())
            .with_context(|| {
                format!("--start-at {v}: expected +SECONDS (a non-negative number)")
            })?;
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        return Ok(now_ns.saturating_add(ns));
    }
    let ns: u64 = v.trim().parse().with_context(|| {
        format!("--start-at {v}: expected UNIX_TIME_NS (an integer) or +SECONDS")
    })?;
    anyhow::ensure!(
        ns >= 1_000_000_000_000_000,
        "--start-at {v}: this looks like seconds, not nanoseconds since the epoch (use `date +%s%N`)"
    );
    Ok(ns)
}

fn seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .with_context(|| format!("{what} must be a non-negative number of seconds"))
}

/// A positive number of seconds.
fn positive_seconds(what: &str, s: f64) -> anyhow::Result<Duration> {
    let d = seconds(what, s)?;
    anyhow::ensure!(!d.is_zero(), "{what} must be greater than 0 seconds");
    Ok(d)
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let config = config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("llmib-replay")
        .build()
        .context("starting the async runtime")?;
    let signals = super::on_signals(&runtime)?;
    announce_start_at(config.start_at_unix_ns);
    let tls = config.tls.clone();
    let summary = runtime.block_on(async {
        if !args.no_check {
            replayer::check_endpoint_with(&args.endpoint, &tls, Duration::from_secs(5)).await?;
        }
        anyhow::Ok(replayer::replay(&args.trace, config, signals.stop.clone()).await)
    })?;
    report(summary, signals.interrupted())
}

/// The replay's configuration: every flag checked (one-line errors), the output file
/// allowed.
fn config(args: &Args) -> anyhow::Result<ReplayConfig> {
    anyhow::ensure!(
        args.max_requests != Some(0),
        "--max-requests must be at least 1 (0 would replay nothing)"
    );
    OutputGuard::new(args.force)
        .input(&args.trace, "the trace being replayed")
        .check_file(&args.output)?;
    let api_key = args.connection.api_key(args.backend.api_key_env())?;
    let mut config = ReplayConfig::new(args.backend, args.endpoint.clone(), args.output.clone());
    config.overwrite = args.force;
    config.model = args.model.clone();
    config.stream = !args.no_stream;
    config.fields = request_fields(args);
    config.concurrency = args.concurrency;
    config.max_model_len = args.max_model_len;
    config.connections = args.connections;
    config.warmup = args.warmup;
    config.timeout = args
        .timeout
        .map(|t| positive_seconds("--timeout", t))
        .transpose()?;
    config.time_scale = args.time_scale;
    config.max_requests = args.max_requests;
    config.duration = args
        .duration
        .map(|d| seconds("--duration", d))
        .transpose()?;
    config.grace = seconds("--grace", args.grace)?;
    config.headers = args
        .headers
        .iter()
        .map(|h| parse_header(h))
        .collect::<anyhow::Result<_>>()?;
    config.api_key = api_key;
    if let Some(d) = args.connection.pool_idle_timeout()? {
        config.pool_idle_timeout = d;
    }
    config.tls = args.connection.tls(" (recorded in the run log)");
    config.progress = !args.quiet;
    config.identify_server = true;
    config.reset_prefix_cache = args.reset_prefix_cache;
    config.server_metrics = args.server_metrics.clone();
    config.server_metrics_interval =
        positive_seconds("--server-metrics-interval", args.server_metrics_interval)?;
    config.shard = resolve_shard(args.shard, args.shards, |k| std::env::var(k).ok())?;
    config.start_at_unix_ns = args
        .start_at
        .as_deref()
        .map(|v| parse_start_at(v, unix_now_ns()))
        .transpose()?;
    Ok(config)
}

/// The optional request fields the flags ask for.
fn request_fields(args: &Args) -> RequestFields {
    RequestFields {
        ignore_eos: if args.ignore_eos {
            IgnoreEos::Always
        } else if args.no_ignore_eos {
            IgnoreEos::Never
        } else {
            IgnoreEos::FromTrace
        },
        min_tokens: args.min_tokens,
        stream_usage: !args.no_stream_usage,
        continuous_usage: args.continuous_usage,
        prompt_token_ids: args.prompt_token_ids,
    }
}

/// Says how long `--start-at` makes the run wait, when it does.
fn announce_start_at(start_at_unix_ns: Option<u64>) {
    let ahead = start_at_unix_ns.map(|t| Duration::from_nanos(t.saturating_sub(unix_now_ns())));
    if let Some(a) = ahead.filter(|a| !a.is_zero() && *a <= replayer::START_AT_MAX_AHEAD) {
        eprintln!(
            "waiting for --start-at: the run starts in {:.1} s (Ctrl-C cancels it)",
            a.as_secs_f64()
        );
    }
}

/// The run's end: its summary, and the exit status (130 when a signal stopped it, 1
/// when no request succeeded).
fn report(
    summary: Result<replayer::ReplaySummary, replayer::ReplayError>,
    interrupted: bool,
) -> anyhow::Result<Exit> {
    let summary = match summary {
        Ok(s) => s,
        Err(replayer::ReplayError::Interrupted(why)) => {
            eprintln!("interrupted: {why}");
            return Ok(Exit::Interrupted);
        }
        Err(e) => return Err(e.into()),
    };
    println!("{summary}");
    if interrupted {
        eprintln!(
            "interrupted: the run log {} is complete up to the stop and valid",
            summary.log.display()
        );
        return Ok(Exit::Interrupted);
    }
    if summary.count(Outcome::Ok) == 0 {
        eprintln!(
            "no request succeeded ({} records in {}): see their errors with `llmib analyze`",
            summary.records,
            summary.log.display()
        );
        return Ok(Exit::NothingSucceeded);
    }
    Ok(Exit::Success)
}

fn unix_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn the_shard_comes_from_the_flag_or_the_environment() {
        let s = replayer::Shard::new(1, 4);
        assert_eq!(resolve_shard(s, None, env(&[])).unwrap(), s);
        assert_eq!(resolve_shard(None, None, env(&[])).unwrap(), None);
        let both = [("JOB_COMPLETION_INDEX", "2"), ("SLURM_ARRAY_TASK_ID", "3")];
        assert_eq!(
            resolve_shard(None, Some(4), env(&both)).unwrap(),
            replayer::Shard::new(2, 4)
        );
        let slurm = [("SLURM_ARRAY_TASK_ID", "3")];
        assert_eq!(
            resolve_shard(None, Some(4), env(&slurm)).unwrap(),
            replayer::Shard::new(3, 4)
        );
        let e = resolve_shard(None, Some(4), env(&[]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither JOB_COMPLETION_INDEX"), "{e}");
        let e = format!(
            "{:#}",
            resolve_shard(None, Some(4), env(&slurm[..0])).unwrap_err()
        );
        assert!(!e.contains('\n'));
        let high = [("SLURM_ARRAY_TASK_ID", "4")];
        let e = resolve_shard(None, Some(4), env(&high))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not below the shard count"), "{e}");
    }

    #[test]
    fn start_at_is_absolute_ns_or_relative_seconds() {
        let now = 1_800_000_000_000_000_000;
        assert_eq!(parse_start_at("+2.5", now).unwrap(), now + 2_500_000_000);
        assert_eq!(
            parse_start_at("1800000000123456789", now).unwrap(),
            1_800_000_000_123_456_789
        );
        let e = parse_start_at("1800000000", now).unwrap_err().to_string();
        assert!(e.contains("looks like seconds"), "{e}");
        assert!(parse_start_at("+x", now).is_err());
        assert!(parse_start_at("+-1", now).is_err());
        assert!(parse_start_at("soon", now).is_err());
    }
}
