//! `llmib merge`: the shard logs of one sharded run (`llmib replay --shard I/N`) written
//! as one ordinary run log, for tools that read one log per run.
//!
//! Flags only; the checks and the merge are in `analyzer::merge` (same trace, same start
//! instant, same shard count, disjoint ids, every shard given unless `--allow-missing`).

use std::path::PathBuf;

use anyhow::Context;
use formats::OutputGuard;

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// The shard logs of one run (any order).
    #[arg(required = true, value_name = "SHARD_LOG")]
    shards: Vec<PathBuf>,
    /// Merged run log to write (must not exist, unless --force).
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing log at --output (never one of the shard logs).
    #[arg(long)]
    force: bool,
    /// Write the merge even when shards are missing (they are named; the merged log's
    /// trailer then says the run is not complete).
    #[arg(long)]
    allow_missing: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut guard = OutputGuard::new(args.force);
    for s in &args.shards {
        guard = guard.input(s, "a shard log being merged");
    }
    guard.check_file(&args.output)?;
    let m = analyzer::merge::merge_logs(&args.shards, &args.output, args.force, args.allow_missing)
        .with_context(|| format!("merging into {}", args.output.display()))?;
    println!(
        "merged {} records of {} shard logs (of {}) into {}{}",
        m.records,
        args.shards.len(),
        m.shards,
        args.output.display(),
        if m.complete {
            ""
        } else {
            " (not complete: see `llmib analyze`)"
        }
    );
    if let Some(note) = m.missing {
        eprintln!("warning: {note}");
    }
    Ok(Exit::Success)
}
