//! `llmib trace`: look into trace files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TraceCommand,
}

#[derive(clap::Subcommand)]
enum TraceCommand {
    /// Summary (counts, length and gap statistics, time span, sha256), fully verified.
    Inspect {
        file: PathBuf,
        /// Print the records instead, one JSON object per line (header first).
        #[arg(long)]
        jsonl: bool,
    },
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.command {
        TraceCommand::Inspect { file, jsonl: false } => {
            let s = generator::TraceSummary::from_path(&file).with_context(|| in_file(&file))?;
            quiet_pipe(std::io::stdout().lock().write_all(s.to_string().as_bytes()))?;
            Ok(Exit::Success)
        }
        TraceCommand::Inspect { file, jsonl: true } => {
            let reader = formats::TraceReader::open(&file).with_context(|| in_file(&file))?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let header = serde_json::json!({ "header": reader.header() });
            quiet_pipe(writeln!(out, "{header}"))?;
            for r in reader {
                let r = r.with_context(|| in_file(&file))?;
                let mut line = serde_json::to_vec(&r).context("encoding a record as JSON")?;
                line.push(b'\n');
                quiet_pipe(out.write_all(&line))?;
            }
            quiet_pipe(out.flush())?;
            Ok(Exit::Success)
        }
    }
}

/// Error context naming the file (formats errors about contents do not).
fn in_file(file: &std::path::Path) -> String {
    file.display().to_string()
}

/// A reader that went away (`| head`) ends the output quietly; other write errors are
/// errors.
fn quiet_pipe(r: std::io::Result<()>) -> anyhow::Result<()> {
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        other => other.context("writing to stdout"),
    }
}
