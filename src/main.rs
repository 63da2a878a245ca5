//! `llmib`: the command-line front of llm-infer-bench.
//!
//! A thin layer: each subcommand parses its flags (in `cmd/<name>.rs`) and calls the
//! library crate that does the work. Every failure is printed as one line on stderr and
//! exits with status 2.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Deterministic trace-replay benchmark for LLM serving backends.
#[derive(Parser)]
#[command(name = "llmib", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a seeded, reproducible request trace from a spec file (or the seed suite).
    Generate(cmd::generate::Args),
    /// Import a production trace (Azure LLM inference CSV) as a request trace.
    Import(cmd::import::Args),
    /// Inspect trace files.
    Trace(cmd::trace::Args),
    /// Serve a simulated backend (TGI, vLLM, LightLLM or OpenAI wire format).
    Sim(cmd::sim::Args),
    /// Replay a trace against a backend, open loop, writing a raw run log.
    Replay(cmd::replay::Args),
    /// Compute metrics, tables and figures from run logs.
    Analyze(cmd::analyze::Args),
    /// Export run logs as requests and events tables (parquet or CSV).
    Export(cmd::export::Args),
    /// Run a benchmark suite (replays, then analysis).
    Run(cmd::run::Args),
    /// Run the original benchmark's suites on the embedded simulator.
    Demo(cmd::demo::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Generate(a) => cmd::generate::run(a),
        Command::Import(a) => cmd::import::run(a),
        Command::Trace(a) => cmd::trace::run(a),
        Command::Sim(a) => cmd::sim::run(a),
        Command::Replay(a) => cmd::replay::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Export(a) => cmd::export::run(a),
        Command::Run(a) => cmd::run::run(a),
        Command::Demo(a) => cmd::demo::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes on one line.
fn one_line(e: &anyhow::Error) -> String {
    let mut s = String::new();
    for (i, cause) in e.chain().enumerate() {
        let text = cause.to_string();
        if i > 0 {
            if s.contains(&text) {
                continue;
            }
            s.push_str(": ");
        }
        s.push_str(text.trim());
    }
    s.replace('\n', " ")
}
