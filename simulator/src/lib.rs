//! A simulated LLM serving backend: the wire formats of TGI, vLLM, LightLLM, the OpenAI
//! API, SGLang and llama.cpp over a continuous-batching engine model, with a ground-truth
//! log and seeded fault injection.
//!
//! Why it exists: every test of the replayer needs a server that speaks the real wire
//! formats, users need to try the whole pipeline without a GPU, and a simulator that
//! queues, batches and runs out of KV cache like a real engine makes a demo's tables
//! meaningful. Its truth log (server-side times of every token write) measures how far a
//! client's measurements are from the truth.
//!
//! ```no_run
//! # async fn f() -> Result<(), simulator::SimError> {
//! use simulator::{Dialect, Profile, SimConfig};
//! let server = simulator::start(SimConfig::new(Dialect::Tgi, Profile::builtin("tiny").unwrap())).await?;
//! println!("{}", server.base_url());
//! server.shutdown().await?;
//! # Ok(()) }
//! ```
//!
//! Layout (`README.md` has the map): `server` (the HTTP server: [`start`], [`SimServer`])
//! -> `dialect` (one module per wire format: `tgi`, `vllm`, `lightllm`, `openai`,
//! `sglang`, `llamacpp`, and what they share: server state, a request's life, token
//! sources, streaming) -> [`engine`] (scheduler core, real-time and virtual-time
//! drivers, prefix cache) -> [`profile`] (TOML speed profiles); beside them [`truth`]
//! (the ground-truth log), [`faults`], [`metrics`], [`reasoning`], [`words`] and
//! [`calibration`]. This file holds the configuration types and re-exports.

// Handlers return `Result<_, Response>` once per request: boxing the error answer would
// only add an allocation on the error path.
#![allow(clippy::result_large_err)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

pub mod calibration;
mod dialect;
pub mod engine;
pub mod faults;
pub mod fit;
pub mod metrics;
pub mod profile;
pub mod reasoning;
mod server;
pub mod truth;
pub mod virtual_run;
pub mod words;

pub use dialect::vllm::VllmSeparator;
pub use engine::virtual_time::{
    VirtualOptions, VirtualRequest, VirtualResult, simulate, simulate_with,
};
pub use engine::{prefix, realtime};
pub use faults::Faults;
pub use profile::{EngineParams, MAX_SPEEDUP, Policy, Profile};
pub use reasoning::{Reasoning, ReasoningField};
pub use server::{SIMULATOR_HEADER, SimServer, start};

/// Errors of the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("profile: {0}")]
    Profile(String),
    #[error("{0}")]
    Config(String),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("truth log {path}: {source}")]
    TruthLog {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("truth log {path} line {line}: {message}")]
    TruthParse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// The wire format the server speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// text-generation-inference 1.0.2: `/generate`, `/generate_stream`.
    Tgi,
    /// vLLM's legacy api_server (2023): `/generate`, NUL-separated stream.
    Vllm,
    /// LightLLM (Aug 2023): `/generate`, `/generate_stream`.
    Lightllm,
    /// OpenAI-compatible (as vLLM serves it): `/v1/completions`, `/v1/chat/completions`.
    Openai,
    /// SGLang's native `/generate` (cumulative text and counts, `[DONE]`).
    Sglang,
    /// llama.cpp `llama-server`'s native `/completion`.
    Llamacpp,
}

impl Dialect {
    pub const ALL: [Dialect; 6] = [
        Dialect::Tgi,
        Dialect::Vllm,
        Dialect::Lightllm,
        Dialect::Openai,
        Dialect::Sglang,
        Dialect::Llamacpp,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            Dialect::Tgi => "tgi",
            Dialect::Vllm => "vllm",
            Dialect::Lightllm => "lightllm",
            Dialect::Openai => "openai",
            Dialect::Sglang => "sglang",
            Dialect::Llamacpp => "llamacpp",
        }
    }

    /// The scheduling policy a server of this dialect uses unless overridden (OpenAI:
    /// vLLM's, the most common server of that API; SGLang and llama.cpp: vLLM's too,
    /// the closest of the three: admission while the KV cache has room).
    pub fn default_policy(&self) -> Policy {
        match self {
            Dialect::Tgi => Policy::Tgi,
            Dialect::Vllm | Dialect::Openai | Dialect::Sglang | Dialect::Llamacpp => Policy::Vllm,
            Dialect::Lightllm => Policy::Lightllm,
        }
    }
}

impl std::str::FromStr for Dialect {
    type Err = SimError;
    fn from_str(s: &str) -> Result<Self, SimError> {
        match s {
            "tgi" => Ok(Dialect::Tgi),
            "vllm" => Ok(Dialect::Vllm),
            "lightllm" => Ok(Dialect::Lightllm),
            "openai" => Ok(Dialect::Openai),
            "sglang" => Ok(Dialect::Sglang),
            "llamacpp" => Ok(Dialect::Llamacpp),
            other => Err(SimError::Config(format!(
                "unknown dialect `{other}` (expected tgi, vllm, lightllm, openai, sglang or \
                 llamacpp)"
            ))),
        }
    }
}

impl std::fmt::Display for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything a simulated server needs.
#[derive(Clone, Debug)]
pub struct SimConfig {
    pub dialect: Dialect,
    pub profile: Profile,
    pub host: IpAddr,
    /// 0 = a free port chosen by the OS (see [`SimServer::addr`]).
    pub port: u16,
    /// Write the ground-truth log (JSON Lines) here.
    pub truth_log: Option<PathBuf>,
    pub faults: Faults,
    /// Seeds fault decisions and early-EOS output lengths (per request, by arrival order).
    pub seed: u64,
    /// Scheduling policy; `None` = the profile's `scheduler` (a calibrated twin names the
    /// policy it was fitted for), else the dialect's own ([`Dialect::default_policy`]).
    pub policy: Option<Policy>,
    /// OpenAI chat completions stream this many reasoning tokens before the answer
    /// (see [`reasoning`]); `None`: no reasoning.
    pub reasoning: Option<Reasoning>,
    /// A stream silent this long gets a `:` keep-alive comment, where the dialect's
    /// server sends them (TGI: axum's SSE keep-alive, 15 s).
    pub keep_alive: Duration,
    /// What ends each streamed object of the vLLM dialect: NUL (2023, the default) or
    /// newline (the same server from late 2024).
    pub vllm_separator: VllmSeparator,
    /// How long after a stream's last event the body ends (the HTTP chunked
    /// terminator). Zero: with the last event. uvicorn, under vLLM's and SGLang's
    /// OpenAI servers, writes the two separately (about 0.04 ms apart), and a client
    /// that stops reading at the end marker then loses its kept-alive connection.
    pub stream_end_gap: Duration,
}

impl SimConfig {
    /// The policy the engine runs: `--policy`, else the profile's, else the dialect's.
    pub fn policy_in_use(&self) -> Policy {
        self.policy
            .or(self.profile.scheduler)
            .unwrap_or(self.dialect.default_policy())
    }

    /// 127.0.0.1, a free port, no faults, no truth log, seed 0.
    pub fn new(dialect: Dialect, profile: Profile) -> Self {
        SimConfig {
            dialect,
            profile,
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            truth_log: None,
            faults: Faults::default(),
            seed: 0,
            policy: None,
            reasoning: None,
            keep_alive: Duration::from_secs(15),
            vllm_separator: VllmSeparator::Nul,
            stream_end_gap: Duration::ZERO,
        }
    }
}
