//! `llmib`: the command-line front of llm-infer-bench.
//!
//! A thin layer: each subcommand parses its flags (in `cmd/<name>.rs`) and calls the
//! library crate that does the work. Every failure is printed as one line on stderr and
//! exits with status 2; the other statuses are in [`cmd::Exit`] (0 success, 1 nothing
//! succeeded or nothing to analyse, 130 interrupted).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Deterministic trace-replay benchmark for LLM serving backends.
#[derive(Parser)]
#[command(name = "llmib", version, about, long_about = None, after_help = cmd::EXIT_STATUS_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a seeded, reproducible request trace from a spec file (or the seed suite).
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Generate(cmd::generate::Args),
    /// Import a production trace (Azure CSV, Mooncake JSONL, BurstGPT CSV) or a chat dataset
    /// (ShareGPT JSON, prompt JSONL) as a request trace.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Import(cmd::import::Args),
    /// Inspect trace files.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Trace(cmd::trace::Args),
    /// Serve a simulated backend (TGI, vLLM, LightLLM or OpenAI wire format).
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Sim(cmd::sim::Args),
    /// Replay a trace against a backend, open loop, writing a raw run log.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Replay(cmd::replay::Args),
    /// Compute metrics, tables and figures from run logs.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Analyze(cmd::analyze::Args),
    /// Merge the shard logs of one sharded replay (--shard I/N) into one run log.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Merge(cmd::merge::Args),
    /// Export run logs as requests and events tables (parquet or CSV).
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Export(cmd::export::Args),
    /// Run a benchmark suite (replays, then analysis).
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Run(cmd::run::Args),
    /// Replay one trace at several offered rates (listed or found), then draw its
    /// throughput-latency curves.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Sweep(cmd::sweep::Args),
    /// Find the highest offered rate that meets latency SLOs.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Search(cmd::search::Args),
    /// Run the original benchmark's suites on the embedded simulator.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Demo(cmd::demo::Args),
    /// Fit an engine profile (a twin the simulator can serve) to run logs of one server.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Calibrate(cmd::calibrate::Args),
    /// Predict a trace's latencies and throughput on an engine profile, in virtual time.
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Predict(cmd::predict::Args),
    /// Is B really faster than A? Paired per-request comparison of runs, with intervals,
    /// p-values, verdicts and a CI gate (--fail-if).
    #[command(after_help = cmd::EXIT_STATUS_HELP)]
    Compare(cmd::compare::Args),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help and --version print to stdout and exit 0.
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            eprintln!("error: {}", usage_line(&e.render().to_string()));
            return ExitCode::from(2);
        }
    };
    let result = match cli.command {
        Command::Generate(a) => cmd::generate::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Trace(a) => cmd::trace::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Replay(a) => cmd::replay::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Calibrate(a) => cmd::calibrate::run(a),
        Command::Predict(a) => cmd::predict::run(a),
        Command::Compare(a) => cmd::compare::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Sweep(a) => cmd::sweep::run(a),
        Command::Search(a) => cmd::search::run(a),
    };
    match result {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line. A cause that repeats what is already said
/// is left out, and a context that only names what its cause names too (the path) is
/// replaced by the cause.
fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string().trim().to_string();
        if parts.iter().any(|p| p.contains(&text)) {
            continue;
        }
        match parts.last_mut() {
            Some(last) if text.starts_with(last.as_str()) => *last = text,
            _ => parts.push(text),
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// A command-line error from clap (several lines: the error, details, usage, a hint
/// to try --help) as one line: the error and its details, then where to look.
fn usage_line(rendered: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for line in rendered.lines().map(str::trim) {
        if line.starts_with("Usage:") || line.starts_with("For more information") {
            break;
        }
        if !line.is_empty() {
            parts.push(line);
        }
    }
    let text = parts.join(" ");
    let text = text.strip_prefix("error: ").unwrap_or(&text);
    format!("{text} (see --help)")
}

#[cfg(test)]
mod tests {
    use super::{one_line, usage_line};

    #[test]
    fn clap_errors_become_one_line() {
        let rendered = "error: invalid value 'x' for '--seed <SEED>': expected a whole number\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered),
            "invalid value 'x' for '--seed <SEED>': expected a whole number (see --help)"
        );
        let rendered = "error: the following required arguments were not provided:\n  \
                        --output <OUTPUT>\n\nUsage: llmib generate --output <OUTPUT> <SPEC>\n\n\
                        For more information, try '--help'.\n";
        assert_eq!(
            usage_line(rendered),
            "the following required arguments were not provided: --output <OUTPUT> (see --help)"
        );
    }
    use anyhow::Context;

    #[test]
    fn one_line_says_each_thing_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "x.msgpack: not found");
        let e = Err::<(), _>(io).context("x.msgpack").unwrap_err();
        assert_eq!(one_line(&e), "x.msgpack: not found");
        let e = Err::<(), _>(anyhow::anyhow!("bad\nvalue"))
            .context("reading spec")
            .unwrap_err();
        assert_eq!(one_line(&e), "reading spec: bad value");
    }
}
