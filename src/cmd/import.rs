//! `llmib import`: a production trace (Azure, Mooncake, BurstGPT) as a request trace.

use std::path::{Path, PathBuf};

use formats::OutputGuard;
use generator::{AzureOptions, BurstGptOptions, ImportReport, MooncakeOptions, PromptSource};

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    source: Source,
}

#[derive(clap::Subcommand)]
enum Source {
    /// Azure LLM inference trace CSV (TIMESTAMP,ContextTokens,GeneratedTokens).
    Azure(AzureArgs),
    /// Mooncake trace JSONL ({timestamp, input_length, output_length, hash_ids} per line),
    /// prompt text keeping the trace's prefix reuse.
    Mooncake(MooncakeArgs),
    /// BurstGPT trace CSV (Timestamp,Model,Request tokens,Response tokens,Total
    /// tokens,Log Type); failed requests (Response tokens 0) are skipped.
    Burstgpt(BurstGptArgs),
}

#[derive(clap::Args)]
struct BurstGptArgs {
    #[command(flatten)]
    csv: AzureArgs,
    /// Keep only rows of this Model (e.g. ChatGPT, GPT-4).
    #[arg(long)]
    model: Option<String>,
    /// Keep only rows of this Log Type (e.g. "Conversation log", "API log").
    #[arg(long)]
    log_type: Option<String>,
}

#[derive(clap::Args)]
struct MooncakeArgs {
    /// The JSONL file.
    file: PathBuf,
    /// Output trace file.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing output file (never the JSONL or tokenizer read).
    #[arg(long)]
    force: bool,
    /// Speed-up factor: arrival offsets are divided by it.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Keep at most this many requests (in timestamp order).
    #[arg(long)]
    max_requests: Option<u64>,
    /// Tokens per hash id (the last block of a prompt may be shorter).
    #[arg(long, default_value_t = 512)]
    block_tokens: u32,
    /// Seed of the block text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Trace name (default: the file stem).
    #[arg(long)]
    name: Option<String>,
    /// ignore_eos of every request.
    #[arg(long, default_value_t = true)]
    ignore_eos: bool,
    /// Hugging Face tokenizer.json for exact prompt token ids.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Name recorded for the tokenizer (default: its file name).
    #[arg(long, requires = "tokenizer")]
    tokenizer_name: Option<String>,
}

#[derive(clap::Args)]
struct AzureArgs {
    /// The CSV file.
    file: PathBuf,
    /// Output trace file.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing output file (never the CSV or tokenizer read).
    #[arg(long)]
    force: bool,
    /// Window start, seconds after the first (kept) row.
    #[arg(long, default_value_t = 0.0)]
    start_s: f64,
    /// Window length in seconds (default: to the end).
    #[arg(long)]
    duration_s: Option<f64>,
    /// Speed-up factor: arrival offsets are divided by it.
    #[arg(long, default_value_t = 1.0)]
    time_scale: f64,
    /// Clamp prompt lengths to this many tokens.
    #[arg(long)]
    max_prompt_tokens: Option<u32>,
    /// Clamp output lengths to this many tokens.
    #[arg(long)]
    max_output_tokens: Option<u32>,
    /// Keep at most this many requests.
    #[arg(long)]
    max_requests: Option<u64>,
    /// Seed of the prompt text.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Trace name (default: the file stem).
    #[arg(long)]
    name: Option<String>,
    /// ignore_eos of every request.
    #[arg(long, default_value_t = true)]
    ignore_eos: bool,
    /// Hugging Face tokenizer.json for exact prompt token ids.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Name recorded for the tokenizer (default: its file name).
    #[arg(long, requires = "tokenizer")]
    tokenizer_name: Option<String>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.source {
        Source::Mooncake(a) => mooncake(a),
        Source::Azure(a) => {
            let source = a.prepare("the CSV being imported")?;
            let r = generator::import_azure(&a.file, &a.options(), &source, &a.output)?;
            report(&r, "rows")
        }
        Source::Burstgpt(b) => {
            let source = b.csv.prepare("the CSV being imported")?;
            let opts = BurstGptOptions {
                base: b.csv.options(),
                model: b.model,
                log_type: b.log_type,
            };
            let r = generator::import_burstgpt(&b.csv.file, &opts, &source, &b.csv.output)?;
            report(&r.import, "rows")?;
            println!(
                "skipped {} failed requests (Response tokens 0) and {} rows of other models or log types",
                r.failed, r.filtered
            );
            Ok(Exit::Success)
        }
    }
}

impl AzureArgs {
    fn prepare(&self, what: &'static str) -> anyhow::Result<PromptSource> {
        prepare(
            &self.file,
            what,
            &self.output,
            self.force,
            self.tokenizer.as_deref(),
            self.tokenizer_name.as_deref(),
        )
    }

    fn options(&self) -> AzureOptions {
        AzureOptions {
            name: self.name.clone(),
            seed: self.seed,
            start_s: self.start_s,
            duration_s: self.duration_s,
            time_scale: self.time_scale,
            max_prompt_tokens: self.max_prompt_tokens,
            max_output_tokens: self.max_output_tokens,
            max_requests: self.max_requests,
            ignore_eos: self.ignore_eos,
        }
    }
}

/// Checks the output path and loads the prompt source.
fn prepare(
    file: &Path,
    what: &'static str,
    out: &Path,
    force: bool,
    tokenizer: Option<&Path>,
    tokenizer_name: Option<&str>,
) -> anyhow::Result<PromptSource> {
    let mut guard = OutputGuard::new(force).input(file, what);
    if let Some(t) = tokenizer {
        guard.add_input(t, "the tokenizer file");
    }
    guard.check_file(out)?;
    Ok(match tokenizer {
        Some(p) => PromptSource::from_tokenizer_file(p, tokenizer_name)?,
        None => PromptSource::builtin(),
    })
}

fn mooncake(a: MooncakeArgs) -> anyhow::Result<Exit> {
    let source = prepare(
        &a.file,
        "the JSONL being imported",
        &a.output,
        a.force,
        a.tokenizer.as_deref(),
        a.tokenizer_name.as_deref(),
    )?;
    let opts = MooncakeOptions {
        name: a.name,
        seed: a.seed,
        time_scale: a.time_scale,
        max_requests: a.max_requests,
        block_tokens: a.block_tokens,
        ignore_eos: a.ignore_eos,
    };
    let r = generator::import_mooncake(&a.file, &opts, &source, &a.output)?;
    report(&r, "records")
}

fn report(r: &ImportReport, unit: &str) -> anyhow::Result<Exit> {
    println!(
        "wrote {} ({} of {} {unit}, {} prompt tokens, {} output tokens, sha256 {})",
        r.path.display(),
        r.requests,
        r.rows,
        r.prompt_tokens,
        r.output_tokens,
        formats::sha256_file(&r.path)?
    );
    Ok(Exit::Success)
}
