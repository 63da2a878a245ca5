//! `llmib import`: a production trace (Azure, Mooncake, BurstGPT) or a chat dataset
//! (ShareGPT, JSONL) as a request trace.

use std::path::{Path, PathBuf};

use formats::OutputGuard;
use generator::dataset::{arrival_from_flags, parse_length_dist};
use generator::session::parse_think_time;
use generator::{
    AzureOptions, BurstGptOptions, DatasetOptions, DatasetReport, ImportReport, MooncakeOptions,
    PromptSource,
};

use super::Exit;
use super::generate::ArrivalArg;

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
    /// ShareGPT conversation JSON (a list of {id, conversations: [{from, value}]}): the
    /// first human turn of each conversation as the prompt (--sessions: every turn).
    Sharegpt(DatasetArgs),
    /// Prompt JSONL ({prompt | messages, max_tokens | output_tokens, timestamp} per line).
    Jsonl(DatasetArgs),
}

/// The files every import reads and writes.
#[derive(clap::Args)]
struct ImportFiles {
    /// The file to import.
    file: PathBuf,
    /// Output trace file.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace an existing output file (never the file imported or the tokenizer read).
    #[arg(long)]
    force: bool,
    /// Hugging Face tokenizer.json for exact prompt token ids (and, for ShareGPT, the
    /// answers' lengths).
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Name recorded for the tokenizer (default: its file name).
    #[arg(long, requires = "tokenizer")]
    tokenizer_name: Option<String>,
}

impl ImportFiles {
    /// Checks the output path against the inputs (`what` names the imported file) and
    /// loads the prompt source.
    fn prepare(&self, what: &'static str) -> anyhow::Result<PromptSource> {
        let mut guard = OutputGuard::new(self.force).input(&self.file, what);
        if let Some(t) = &self.tokenizer {
            guard.add_input(t, "the tokenizer file");
        }
        guard.check_file(&self.output)?;
        Ok(match &self.tokenizer {
            Some(p) => PromptSource::from_tokenizer_file(p, self.tokenizer_name.as_deref())?,
            None => PromptSource::builtin(),
        })
    }
}

#[derive(clap::Args)]
struct DatasetArgs {
    #[command(flatten)]
    io: ImportFiles,
    /// Sample this many requests without replacement (default: every eligible item, in
    /// file order).
    #[arg(long)]
    requests: Option<u64>,
    /// Seed of the sampling, arrival and output-length streams.
    #[arg(long, default_value_t = 0, value_parser = super::seed_arg)]
    seed: u64,
    /// Output lengths from this distribution, as in a spec file, e.g.
    /// '{ dist = "capped_exponential", mean = 128, cap = 512 }' (default: the dataset's).
    #[arg(long)]
    output_tokens: Option<String>,
    /// Leave out items whose prompt has fewer tokens.
    #[arg(long, default_value_t = 1)]
    min_prompt_tokens: u32,
    /// Leave out items whose prompt has more tokens.
    #[arg(long)]
    max_prompt_tokens: Option<u32>,
    /// Leave out items whose dataset output length is above this.
    #[arg(long)]
    max_output_tokens: Option<u32>,
    /// Arrival process (default: JSONL timestamps when every line has one, else burst;
    /// --rate alone is poisson, with --burstiness gamma).
    #[arg(long, value_enum)]
    arrival: Option<ArrivalArg>,
    /// Arrival rate (requests/s).
    #[arg(long)]
    rate: Option<f64>,
    /// Gamma burstiness (shape; 1 = Poisson).
    #[arg(long)]
    burstiness: Option<f64>,
    /// Trace name (default: the file stem).
    #[arg(long)]
    name: Option<String>,
    /// ignore_eos of every request.
    #[arg(long, default_value_t = true)]
    ignore_eos: bool,
    /// Keep conversations as multi-turn sessions: one request per user turn, sending the
    /// recorded conversation up to it (ShareGPT: each conversation; JSONL: the lines of
    /// each session_id). --requests then counts turns.
    #[arg(long)]
    sessions: bool,
    /// Think time between the turns of a session, seconds: fixed:S, uniform:LO:HI or
    /// exponential:MEAN (default: JSONL timestamp gaps when every line has one, else 0).
    #[arg(long)]
    think_time: Option<String>,
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
    #[command(flatten)]
    io: ImportFiles,
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
    #[arg(long, default_value_t = 0, value_parser = super::seed_arg)]
    seed: u64,
    /// Trace name (default: the file stem).
    #[arg(long)]
    name: Option<String>,
    /// ignore_eos of every request.
    #[arg(long, default_value_t = true)]
    ignore_eos: bool,
}

#[derive(clap::Args)]
struct AzureArgs {
    #[command(flatten)]
    io: ImportFiles,
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
    #[arg(long, default_value_t = 0, value_parser = super::seed_arg)]
    seed: u64,
    /// Trace name (default: the file stem).
    #[arg(long)]
    name: Option<String>,
    /// ignore_eos of every request.
    #[arg(long, default_value_t = true)]
    ignore_eos: bool,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    match args.source {
        Source::Mooncake(a) => mooncake(a),
        Source::Sharegpt(a) => dataset(
            a,
            "the ShareGPT file being imported",
            generator::import_sharegpt,
        ),
        Source::Jsonl(a) => dataset(a, "the JSONL being imported", generator::import_jsonl),
        Source::Azure(a) => {
            let source = a.io.prepare("the CSV being imported")?;
            let r = generator::import_azure(&a.io.file, &a.options(), &source, &a.io.output)?;
            report(&r, "rows")
        }
        Source::Burstgpt(b) => {
            let source = b.csv.io.prepare("the CSV being imported")?;
            let opts = BurstGptOptions {
                base: b.csv.options(),
                model: b.model,
                log_type: b.log_type,
            };
            let r = generator::import_burstgpt(&b.csv.io.file, &opts, &source, &b.csv.io.output)?;
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

fn mooncake(a: MooncakeArgs) -> anyhow::Result<Exit> {
    let source = a.io.prepare("the JSONL being imported")?;
    let opts = MooncakeOptions {
        name: a.name,
        seed: a.seed,
        time_scale: a.time_scale,
        max_requests: a.max_requests,
        block_tokens: a.block_tokens,
        ignore_eos: a.ignore_eos,
    };
    let r = generator::import_mooncake(&a.io.file, &opts, &source, &a.io.output)?;
    report(&r, "records")
}

type DatasetImport =
    fn(&Path, &DatasetOptions, &PromptSource, &Path) -> generator::Result<DatasetReport>;

fn dataset(a: DatasetArgs, what: &'static str, import: DatasetImport) -> anyhow::Result<Exit> {
    let arrival = arrival_from_flags(a.arrival.map(ArrivalArg::kind), a.rate, a.burstiness)?;
    let output_tokens = a
        .output_tokens
        .as_deref()
        .map(parse_length_dist)
        .transpose()?;
    let think = a.think_time.as_deref().map(parse_think_time).transpose()?;
    let source = a.io.prepare(what)?;
    let opts = DatasetOptions {
        name: a.name,
        seed: a.seed,
        requests: a.requests,
        output_tokens,
        min_prompt_tokens: a.min_prompt_tokens,
        max_prompt_tokens: a.max_prompt_tokens,
        max_output_tokens: a.max_output_tokens,
        arrival,
        ignore_eos: a.ignore_eos,
        sessions: a.sessions,
        think,
    };
    let r = import(&a.io.file, &opts, &source, &a.io.output)?;
    if !opts.sessions {
        report(&r.import, "items")?;
        println!(
            "left out {} items by the length filters and {} without a prompt and answer",
            r.filtered, r.unusable
        );
        return Ok(Exit::Success);
    }
    let i = &r.import;
    println!(
        "wrote {} ({} requests in {} sessions from {} conversations, {} prompt tokens, {} output tokens, sha256 {})",
        i.path.display(),
        i.requests,
        r.sessions,
        i.rows,
        i.prompt_tokens,
        i.output_tokens,
        formats::sha256_file(&i.path)?
    );
    println!(
        "left out {} conversations by the length filters, {} without a user turn and answer, and {} later turns after a turn that failed them",
        r.filtered, r.unusable, r.cut_turns
    );
    Ok(Exit::Success)
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
