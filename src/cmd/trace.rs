//! `llmib trace`: look into trace files.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;

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

pub fn run(args: Args) -> anyhow::Result<()> {
    match args.command {
        TraceCommand::Inspect { file, jsonl: false } => {
            let s = generator::TraceSummary::from_path(&file)?;
            print!("{s}");
            Ok(())
        }
        TraceCommand::Inspect { file, jsonl: true } => {
            let reader = formats::TraceReader::open(&file)?;
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::new(stdout.lock());
            let header = serde_json::json!({ "header": reader.header() });
            writeln!(out, "{header}").context("writing to stdout")?;
            for r in reader {
                let r = r?;
                serde_json::to_writer(&mut out, &r).context("writing to stdout")?;
                out.write_all(b"\n").context("writing to stdout")?;
            }
            out.flush().context("writing to stdout")?;
            Ok(())
        }
    }
}
