//! The simulated server itself: binds the socket, starts the engine thread and the truth
//! log, builds the router of the configured dialect (plus `/health` and `/metrics`),
//! stamps every answer with [`SIMULATOR_HEADER`], and shuts it all down in order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::dialect::state::{AppState, EngineHandle, health, metrics};
use crate::dialect::{cache_admin, lightllm, llamacpp, openai, sglang, tgi, vllm};
use crate::engine::clock::Clock;
use crate::engine::realtime::EngineThread;
use crate::engine::scheduler::Core;
use crate::metrics::EngineGauges;
use crate::truth::TruthWriter;
use crate::{Dialect, SimConfig, SimError};

/// Response header naming the simulator on every answer, so a client can never mistake
/// simulated numbers for a real server's: `x-llmib-simulator: profile=NAME; dialect=D`,
/// and `; speedup=K` when the profile runs `K` times faster
/// ([`Profile::sped_up`](crate::Profile::sped_up)).
pub use formats::SIMULATOR_HEADER;

/// A running simulated server.
pub struct SimServer {
    addr: SocketAddr,
    started_unix_ns: u64,
    shutdown_tx: Option<tokio::sync::oneshot::Sender<()>>,
    serve_task: tokio::task::JoinHandle<std::io::Result<()>>,
    engine: Option<EngineThread>,
    truth: Option<TruthWriter>,
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

/// The routes of `dialect`'s wire format (and its cache-reset endpoint, where the real
/// server has one).
fn dialect_routes(dialect: Dialect) -> axum::Router<Arc<AppState>> {
    match dialect {
        Dialect::Tgi => tgi::routes(),
        Dialect::Vllm => vllm::routes().merge(cache_admin::vllm_routes()),
        Dialect::Lightllm => lightllm::routes(),
        Dialect::Openai => openai::routes().merge(cache_admin::vllm_routes()),
        Dialect::Sglang => sglang::routes().merge(cache_admin::sglang_routes()),
        Dialect::Llamacpp => llamacpp::routes(),
    }
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
    let clock = Clock::new();
    let truth = match &config.truth_log {
        Some(path) => Some(TruthWriter::create(path)?),
        None => None,
    };
    let policy = config.policy_in_use();
    let gauges = Arc::new(EngineGauges::default());
    let (engine, engine_thread) = match config.profile.engine(policy) {
        Some(params) if !config.profile.is_null() => {
            let core = Core::new(params.clone(), policy);
            let (thread, tx) =
                EngineThread::spawn(core, clock, gauges.clone()).map_err(SimError::Serve)?;
            let fits = Core::new(params.clone(), policy);
            (Some(EngineHandle { tx, fits }), Some(thread))
        }
        _ => (None, None),
    };
    let state = Arc::new(AppState::new(
        &config,
        clock,
        engine,
        truth.as_ref().map(|t| t.sender()),
        gauges,
    ));
    let router = dialect_routes(config.dialect)
        .route("/health", axum::routing::get(health))
        .route("/metrics", axum::routing::get(metrics))
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
        virtual_time: false,
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
