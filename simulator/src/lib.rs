//! A simulated LLM serving backend: the wire formats of TGI, vLLM, LightLLM and the
//! OpenAI API over a continuous-batching engine model, with a ground-truth log and seeded
//! fault injection.
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
//! Layout: [`engine`] (scheduler core, real-time and virtual-time drivers), [`profile`]
//! (TOML speed profiles), [`truth`] (the ground-truth log), [`faults`], `server` (what the
//! dialects share: request life cycle, token sources, streaming) and one module per
//! dialect (`tgi`, `vllm`, `lightllm`, `openai`, `sglang`, `llamacpp`).

// Handlers return `Result<_, Response>` once per request: boxing the error answer would
// only add an allocation on the error path.
#![allow(clippy::result_large_err)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub mod calibration;
pub mod engine;
pub mod faults;
pub mod metrics;
pub mod prefix;
pub mod profile;
pub mod realtime;
pub mod reasoning;
mod sampling;
mod server;
pub mod truth;
pub mod words;

mod cache_admin;
mod lightllm;
mod llamacpp;
mod openai;
mod sglang;
mod tgi;
mod vllm;

pub use engine::{VirtualRequest, VirtualResult, simulate};
pub use faults::Faults;
pub use profile::{EngineParams, MAX_SPEEDUP, Policy, Profile};
pub use reasoning::{Reasoning, ReasoningField};
pub use vllm::VllmSeparator;

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
    /// Scheduling policy; `None` = the dialect's own ([`Dialect::default_policy`]).
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

/// A running simulated server.
pub struct SimServer {
    addr: SocketAddr,
    started_unix_ns: u64,
    shutdown_tx: Option<tokio::sync::oneshot::Sender<()>>,
    serve_task: tokio::task::JoinHandle<std::io::Result<()>>,
    engine: Option<realtime::EngineThread>,
    truth: Option<truth::TruthWriter>,
}

/// Backlog of the listening socket (the kernel caps it at `net.core.somaxconn`).
///
/// tokio (through mio) listens with std's 128: a burst of more new connections than that
/// overflows the accept queue and the dropped SYNs are retried only after a second, so a
/// 1,000-connection burst measured 1 s of extra TTFT on the unlucky requests. Real servers
/// listen deeper (uvicorn 2048, for vLLM and SGLang); so does the simulator.
const LISTEN_BACKLOG: u32 = 4096;

/// A listening socket on `addr` with [`LISTEN_BACKLOG`].
fn listen(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Bind and serve in background tasks on the current tokio runtime.
pub async fn start(config: SimConfig) -> Result<SimServer, SimError> {
    config.faults.validate()?;
    if config.faults.generation_error > 0.0 && config.dialect != Dialect::Tgi {
        return Err(SimError::Config(
            "the generation_error fault is TGI's (HTTP 424): use it with the tgi dialect".into(),
        ));
    }
    let addr = SocketAddr::new(config.host, config.port);
    let listener = listen(addr).map_err(|source| SimError::Bind { addr, source })?;
    let addr = listener.local_addr().map_err(SimError::Serve)?;
    let clock = engine::Clock::new();
    let truth = match &config.truth_log {
        Some(path) => Some(truth::TruthWriter::create(path)?),
        None => None,
    };
    let policy = config.policy.unwrap_or(config.dialect.default_policy());
    let gauges = Arc::new(metrics::EngineGauges::default());
    let (engine, engine_thread) = match config.profile.engine(policy) {
        Some(params) if !config.profile.is_null() => {
            let core = engine::Core::new(params.clone(), policy);
            let (thread, tx) = realtime::EngineThread::spawn(core, clock, gauges.clone())
                .map_err(SimError::Serve)?;
            let fits = engine::Core::new(params.clone(), policy);
            (Some(server::EngineHandle { tx, fits }), Some(thread))
        }
        _ => (None, None),
    };
    let state = Arc::new(server::AppState::new(
        &config,
        clock,
        engine,
        truth.as_ref().map(|t| t.sender()),
        gauges,
    ));
    let router = match config.dialect {
        Dialect::Tgi => tgi::routes(),
        Dialect::Vllm => vllm::routes().merge(cache_admin::vllm_routes()),
        Dialect::Lightllm => lightllm::routes(),
        Dialect::Openai => openai::routes().merge(cache_admin::vllm_routes()),
        Dialect::Sglang => sglang::routes().merge(cache_admin::sglang_routes()),
        Dialect::Llamacpp => llamacpp::routes(),
    }
    .route("/health", axum::routing::get(server::health))
    .route("/metrics", axum::routing::get(server::metrics))
    .with_state(state.clone())
    .layer(axum::middleware::map_response(identify(
        config.dialect,
        config.profile.name().to_string(),
        config.profile.speedup,
    )));
    let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let serve_task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                let _ = shutdown_rx.await;
            })
            .await
    });
    Ok(SimServer {
        addr,
        started_unix_ns: clock.started_unix_ns,
        shutdown_tx: Some(shutdown_tx),
        serve_task,
        engine: engine_thread,
        truth,
    })
}

/// Response header naming the simulator on every answer, so a client can never mistake
/// simulated numbers for a real server's: `x-llmib-simulator: profile=NAME; dialect=D`,
/// and `; speedup=K` when the profile runs `K` times faster ([`Profile::sped_up`]).
pub use formats::SIMULATOR_HEADER;

/// The middleware that adds [`SIMULATOR_HEADER`].
fn identify(
    dialect: Dialect,
    profile: String,
    speedup: f64,
) -> impl Fn(axum::response::Response) -> std::future::Ready<axum::response::Response> + Clone {
    let info = formats::SimulatedInfo {
        dialect: dialect.to_string(),
        profile,
        speedup: (speedup != 1.0).then_some(speedup),
    };
    let value = axum::http::HeaderValue::from_str(&info.header_value())
        .unwrap_or_else(|_| axum::http::HeaderValue::from_static("profile=unnamed"));
    move |mut res: axum::response::Response| {
        res.headers_mut().insert(SIMULATOR_HEADER, value.clone());
        std::future::ready(res)
    }
}

impl SimServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Wall-clock time (ns since the Unix epoch) of the instant the truth log's times count
    /// from: truth time + this - a run log's `started_unix_ns` is that time on the run's
    /// clock (same machine; wall-clock precision).
    pub fn started_unix_ns(&self) -> u64 {
        self.started_unix_ns
    }

    /// `http://HOST:PORT` (IPv6 hosts in brackets).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop serving (in-flight responses get up to 2 s to finish, then are cut), stop the
    /// engine, and flush and close the truth log.
    pub async fn shutdown(mut self) -> Result<(), SimError> {
        if let Some(tx) = self.shutdown_tx.take() {
            let _ = tx.send(());
        }
        let serve_result =
            match tokio::time::timeout(Duration::from_secs(2), &mut self.serve_task).await {
                Ok(Ok(r)) => r.map_err(SimError::Serve),
                Ok(Err(_join)) => Ok(()),
                Err(_) => {
                    self.serve_task.abort();
                    let _ = (&mut self.serve_task).await;
                    Ok(())
                }
            };
        // Stop the engine: open token channels close, so any response still streaming ends.
        if let Some(engine) = self.engine.take() {
            engine.stop().await;
        }
        if let Some(truth) = self.truth.take() {
            truth.close().await?;
        }
        serve_result
    }
}
