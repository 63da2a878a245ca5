//! `llmib sim`: serve a simulated backend until SIGINT (Ctrl-C) or SIGTERM.
//!
//! Either signal shuts the server down gracefully and completes the truth log (flushed
//! and synced), then exits 0: a signal is how a server is meant to stop. A second signal
//! during the shutdown exits at once with status 130.
//!
//! Prints the listening address (`http://HOST:PORT`) as the only line on stdout, so a
//! script can start it with `--port 0` and read the port.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;

use anyhow::Context;
use formats::OutputGuard;

use super::Exit;

#[derive(clap::Args)]
pub struct Args {
    /// Wire format: tgi, vllm, lightllm, openai, sglang or llamacpp.
    #[arg(long)]
    dialect: String,
    /// Speed profile: a built-in name (tiny, null, a800-llama2-13b) or a TOML file.
    #[arg(long, default_value = "tiny")]
    profile: String,
    /// Run the profile K times faster (every engine cost divided by K; 1 <= K <= 1000),
    /// announced in the `x-llmib-simulator` header (`speedup=K`) and recorded in run
    /// logs; replay at `--time-scale K` to keep the profile's schedule.
    #[arg(long, value_name = "K", default_value_t = 1.0)]
    speedup: f64,
    /// Reasoning model (openai dialect, chat): the first N output tokens of every chat
    /// completion stream as reasoning (`delta.reasoning`) before the answer
    /// (`delta.content`); a request turns it off with
    /// `"chat_template_kwargs": {"enable_thinking": false}`.
    #[arg(long, value_name = "N")]
    reasoning_tokens: Option<u32>,
    /// Field of the reasoning text: reasoning (vLLM today; the default),
    /// reasoning_content (SGLang, llama.cpp, older vLLM) or both (vLLM while it kept
    /// the old name in sync).
    #[arg(long, value_name = "FIELD", requires = "reasoning_tokens")]
    reasoning_field: Option<String>,
    /// vllm dialect: what ends each streamed object: nul (the 2023 api_server, the
    /// default) or newline (the same server from late 2024, commit 9e37266).
    #[arg(long, value_name = "nul|newline")]
    vllm_separator: Option<String>,
    /// Milliseconds between a stream's last event and the end of its body (the HTTP
    /// chunked terminator), as uvicorn (vLLM, SGLang) writes them separately; 0: together.
    #[arg(long, value_name = "MS", default_value_t = 0.0)]
    stream_end_gap_ms: f64,
    /// Scheduling policy (tgi, vllm, lightllm: 2023; vllm-v1: vLLM 0.8+ with chunked
    /// prefill); default: the dialect's own.
    #[arg(long)]
    policy: Option<String>,
    /// Port to listen on (0 = any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
    #[arg(long, default_value = "127.0.0.1")]
    host: IpAddr,
    /// Write the ground-truth log (JSON Lines) to this file (must not exist, unless
    /// --force).
    #[arg(long)]
    truth_log: Option<PathBuf>,
    /// Replace an existing truth log.
    #[arg(long)]
    force: bool,
    /// Seed of fault decisions and early-EOS lengths.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Fraction of requests answered with HTTP 429.
    #[arg(long, default_value_t = 0.0)]
    fault_429: f64,
    /// Fraction of requests answered with HTTP 500.
    #[arg(long, default_value_t = 0.0)]
    fault_500: f64,
    /// Fraction of requests answered with HTTP 503.
    #[arg(long, default_value_t = 0.0)]
    fault_503: f64,
    /// Fraction of responses cut mid-stream.
    #[arg(long, default_value_t = 0.0)]
    fault_disconnect: f64,
    /// Fraction of responses that stall once for --stall-ms.
    #[arg(long, default_value_t = 0.0)]
    fault_stall: f64,
    #[arg(long, default_value_t = 1000)]
    stall_ms: u64,
    /// Fraction of responses whose headers are delayed by --slow-first-byte-ms.
    #[arg(long, default_value_t = 0.0)]
    fault_slow_first_byte: f64,
    #[arg(long, default_value_t = 1000)]
    slow_first_byte_ms: u64,
    /// tgi dialect: fraction of requests whose generation fails (TGI's generation
    /// error: HTTP 424 on /generate; a 200 stream ending in an error event after some
    /// tokens on /generate_stream).
    #[arg(long, default_value_t = 0.0)]
    fault_generation_error: f64,
}

/// `--reasoning-tokens` and `--reasoning-field`, for the dialect that streams reasoning.
fn reasoning(
    args: &Args,
    dialect: simulator::Dialect,
) -> anyhow::Result<Option<simulator::Reasoning>> {
    let Some(tokens) = args.reasoning_tokens else {
        return Ok(None);
    };
    if dialect != simulator::Dialect::Openai {
        anyhow::bail!(
            "--reasoning-tokens needs --dialect openai (chat completions carry reasoning)"
        );
    }
    Ok(Some(simulator::Reasoning {
        tokens,
        field: match &args.reasoning_field {
            Some(f) => f.parse()?,
            None => simulator::ReasoningField::default(),
        },
    }))
}

/// `--stream-end-gap-ms`: at most a minute.
fn stream_end_gap(ms: f64) -> anyhow::Result<std::time::Duration> {
    if !(0.0..=60_000.0).contains(&ms) {
        anyhow::bail!("--stream-end-gap-ms must be between 0 and 60000 (got {ms})");
    }
    Ok(std::time::Duration::from_secs_f64(ms / 1000.0))
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    if let Some(truth) = &args.truth_log {
        let mut guard = OutputGuard::new(args.force);
        let profile = std::path::Path::new(&args.profile);
        if profile.is_file() {
            guard.add_input(profile, "the profile file");
        }
        guard.check_file(truth)?;
    }
    let dialect: simulator::Dialect = args.dialect.parse()?;
    let profile = simulator::Profile::load(&args.profile)?.sped_up(args.speedup)?;
    let mut config = simulator::SimConfig::new(dialect, profile);
    config.reasoning = reasoning(&args, dialect)?;
    if let Some(sep) = &args.vllm_separator {
        if dialect != simulator::Dialect::Vllm {
            anyhow::bail!("--vllm-separator needs --dialect vllm");
        }
        config.vllm_separator = sep.parse()?;
    }
    config.stream_end_gap = stream_end_gap(args.stream_end_gap_ms)?;
    config.host = args.host;
    config.port = args.port;
    config.truth_log = args.truth_log;
    config.seed = args.seed;
    config.policy = args.policy.as_deref().map(str::parse).transpose()?;
    config.faults = simulator::Faults {
        http_429: args.fault_429,
        http_500: args.fault_500,
        http_503: args.fault_503,
        disconnect: args.fault_disconnect,
        stall: args.fault_stall,
        stall_ms: args.stall_ms,
        slow_first_byte: args.fault_slow_first_byte,
        slow_first_byte_ms: args.slow_first_byte_ms,
        generation_error: args.fault_generation_error,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    rt.block_on(async move {
        // Handlers first: a signal that arrives once the address is printed must find
        // them installed.
        let mut signals = super::Signals::new()?;
        let server = simulator::start(config).await?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "{}", server.base_url())?;
            out.flush()?;
        }
        let name = signals.next().await;
        eprintln!("{name}: shutting down (the truth log is completed)");
        tokio::spawn(async move {
            let name = signals.next().await;
            eprintln!("{name}: exiting at once");
            std::process::exit(i32::from(Exit::Interrupted.code()));
        });
        server.shutdown().await?;
        Ok(Exit::Success)
    })
}
