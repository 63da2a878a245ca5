//! `llmib generate`: a seeded, reproducible trace from a spec file, or a canonical suite.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::ValueEnum;
use formats::OutputGuard;
use generator::{ArrivalKind, Overrides, PromptSource};

use super::Exit;

#[derive(Clone, Copy, ValueEnum)]
pub enum ArrivalArg {
    Burst,
    Constant,
    Poisson,
    Gamma,
}

impl ArrivalArg {
    pub fn kind(self) -> ArrivalKind {
        match self {
            ArrivalArg::Burst => ArrivalKind::Burst,
            ArrivalArg::Constant => ArrivalKind::Constant,
            ArrivalArg::Poisson => ArrivalKind::Poisson,
            ArrivalArg::Gamma => ArrivalKind::Gamma,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// Spec file (TOML; see generator/README.md). Omit with --suite.
    #[arg(required_unless_present = "suite", conflicts_with = "suite")]
    spec: Option<PathBuf>,
    /// Output trace file, or the output directory with --suite.
    #[arg(short, long)]
    output: PathBuf,
    /// Replace existing output files (never the spec or tokenizer read).
    #[arg(long)]
    force: bool,
    /// Write a canonical suite instead (`seed`: the original benchmark's 8 traces).
    #[arg(long)]
    suite: Option<String>,
    /// Hugging Face tokenizer.json: prompts re-encode to exactly their token counts.
    #[arg(long)]
    tokenizer: Option<PathBuf>,
    /// Name recorded for the tokenizer (default: its file name).
    #[arg(long, requires = "tokenizer")]
    tokenizer_name: Option<String>,
    /// Override the spec's name.
    #[arg(long)]
    name: Option<String>,
    /// Override the spec's seed.
    #[arg(long, value_parser = super::seed_arg)]
    seed: Option<u64>,
    /// Override the number of requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Override the arrival process.
    #[arg(long, value_enum)]
    arrival: Option<ArrivalArg>,
    /// Override the arrival rate (requests/s).
    #[arg(long)]
    rate: Option<f64>,
    /// Override the gamma burstiness (shape; 1 = Poisson).
    #[arg(long)]
    burstiness: Option<f64>,
    /// Override the output-length cap.
    #[arg(long)]
    output_cap: Option<u32>,
    /// Override the output-length mean (exponential distributions).
    #[arg(long)]
    output_mean: Option<f64>,
    /// Override ignore_eos.
    #[arg(long)]
    ignore_eos: Option<bool>,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let mut guard = OutputGuard::new(args.force);
    if let Some(spec) = &args.spec {
        guard.add_input(spec, "the spec file");
    }
    if let Some(t) = &args.tokenizer {
        guard.add_input(t, "the tokenizer file");
    }
    let source = match &args.tokenizer {
        Some(path) => PromptSource::from_tokenizer_file(path, args.tokenizer_name.as_deref())?,
        None => PromptSource::builtin(),
    };
    let overrides = Overrides {
        name: args.name,
        seed: args.seed,
        requests: args.requests,
        arrival: args.arrival.map(ArrivalArg::kind),
        rate: args.rate,
        burstiness: args.burstiness,
        output_cap: args.output_cap,
        output_mean: args.output_mean,
        ignore_eos: args.ignore_eos,
    };
    if let Some(suite) = &args.suite {
        let o = &overrides;
        if o.name.is_some()
            || o.requests.is_some()
            || o.arrival.is_some()
            || o.rate.is_some()
            || o.burstiness.is_some()
            || o.output_cap.is_some()
            || o.output_mean.is_some()
            || o.ignore_eos.is_some()
        {
            bail!("--suite writes fixed specs; of the overrides only --seed applies");
        }
        let mut specs = generator::suite(suite)?;
        if let Some(seed) = o.seed {
            // Distinct seeds per trace, as in the canonical suite: no shared prompts.
            for (i, s) in specs.iter_mut().enumerate() {
                s.seed = seed.wrapping_add(i as u64);
            }
        }
        guard.check_dir(&args.output)?;
        let outputs = generator::suite_outputs(&args.output, &specs);
        guard.check_files(outputs.iter().map(|p| p.as_path()))?;
        let traces = generator::write_suite(&args.output, &specs, &source)
            .with_context(|| format!("writing suite {suite} to {}", args.output.display()))?;
        for t in traces {
            println!("wrote {}", t.display());
        }
        println!("wrote {}", args.output.join("MANIFEST").display());
        return Ok(Exit::Success);
    }
    let path = args.spec.expect("clap requires SPEC without --suite");
    guard.check_file(&args.output)?;
    let mut spec = generator::load_spec(&path)?;
    overrides.apply(&mut spec)?;
    let report = generator::generate_trace(&spec, &source, &args.output)?;
    println!(
        "wrote {} ({} requests, {} prompt tokens, {} output tokens, sha256 {})",
        report.path.display(),
        report.requests,
        report.prompt_tokens,
        report.output_tokens,
        formats::sha256_file(&report.path)?
    );
    Ok(Exit::Success)
}
