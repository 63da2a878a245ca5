//! The state every handler gets: the dialect, profile, clock, engine handle, truth-log
//! sender, faults and seed, the `/metrics` counters; and the two routes every dialect
//! serves, `GET /health` and `GET /metrics`.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use tokio::sync::mpsc;

use crate::dialect::respond::response;
use crate::engine::clock::Clock;
use crate::engine::realtime::EngineInput;
use crate::engine::scheduler::Core;
use crate::faults::{Faults, mix};
use crate::truth::Msg;
use crate::{Dialect, Profile, SimConfig};

pub(crate) struct EngineHandle {
    pub tx: mpsc::UnboundedSender<EngineInput>,
    /// A core with the same parameters, used only for `fits` checks.
    pub fits: Core,
}

pub(crate) struct AppState {
    pub dialect: Dialect,
    pub profile: Profile,
    /// Reasoning-model behaviour (OpenAI chat).
    pub reasoning: Option<crate::Reasoning>,
    pub clock: Clock,
    pub(crate) engine: Option<EngineHandle>,
    pub(crate) truth: Option<std::sync::Mutex<std::sync::mpsc::Sender<Msg>>>,
    pub(crate) faults: Faults,
    pub(crate) seed: u64,
    pub(crate) next_seq: AtomicU64,
    pub(crate) null_interval: Duration,
    pub(crate) null_first: Duration,
    /// SSE keep-alive interval of the dialects that send them.
    pub keep_alive: Duration,
    /// What ends each streamed vLLM object.
    pub vllm_separator: crate::VllmSeparator,
    /// See [`SimConfig::stream_end_gap`].
    pub(crate) stream_end_gap: Duration,
    /// What `GET /metrics` shows.
    pub metrics: crate::metrics::ServerMetrics,
}

impl AppState {
    pub(crate) fn new(
        config: &SimConfig,
        clock: Clock,
        engine: Option<EngineHandle>,
        truth: Option<std::sync::mpsc::Sender<Msg>>,
        gauges: Arc<crate::metrics::EngineGauges>,
    ) -> AppState {
        let null_interval = Duration::from_micros(
            config
                .profile
                .null
                .as_ref()
                .map(|n| n.inter_token_us)
                .unwrap_or(0),
        );
        let null_first = config
            .profile
            .null
            .as_ref()
            .and_then(|n| n.first_token_us)
            .map_or(null_interval, Duration::from_micros);
        AppState {
            dialect: config.dialect,
            profile: config.profile.clone(),
            reasoning: config.reasoning,
            clock,
            engine,
            truth: truth.map(std::sync::Mutex::new),
            faults: config.faults.clone(),
            seed: config.seed,
            next_seq: AtomicU64::new(0),
            null_interval,
            null_first,
            keep_alive: config.keep_alive,
            vllm_separator: config.vllm_separator,
            stream_end_gap: config.stream_end_gap,
            metrics: server_metrics(config, gauges),
        }
    }

    /// Asks the engine to drop its prefix cache (see `cache_admin.rs`): `Some(false)`
    /// when it refused (requests hold cached blocks; with `require_idle`, any request is
    /// in the engine); `None` when there is no engine or it has no prefix cache.
    pub(crate) async fn reset_prefix_cache(&self, require_idle: bool) -> Option<bool> {
        let engine = self.engine.as_ref()?;
        let (answer, rx) = tokio::sync::oneshot::channel();
        engine
            .tx
            .send(EngineInput::ResetPrefixCache {
                require_idle,
                answer,
            })
            .ok()?;
        rx.await.ok()?
    }

    /// A deterministic draw for request `seq` (seeded like the faults), for `purpose`.
    pub(crate) fn draw(&self, seq: u64, purpose: u64) -> u64 {
        mix(self.seed, seq, purpose)
    }

    /// A hasher for a prompt's blocks when the engine has a prefix cache.
    pub(crate) fn block_hasher(&self) -> Option<crate::engine::prefix::BlockHasher> {
        let bs = self.engine.as_ref()?.fits.prefix_block_size()?;
        Some(crate::engine::prefix::BlockHasher::new(bs))
    }

    /// Whether the engine can ever hold this request (beyond the profile's limits).
    pub(crate) fn engine_fits(&self, prompt_tokens: u32, max_tokens: u32) -> bool {
        match &self.engine {
            Some(e) => e.fits.fits(prompt_tokens, max_tokens),
            None => true,
        }
    }
}

/// What `GET /metrics` shows: the engine's gauges, and its cache settings when it has
/// an engine (`vllm:cache_config_info`).
fn server_metrics(
    config: &SimConfig,
    gauges: Arc<crate::metrics::EngineGauges>,
) -> crate::metrics::ServerMetrics {
    let m = crate::metrics::ServerMetrics::new(&config.profile.model, gauges);
    let policy = config.policy_in_use();
    match config.profile.engine(policy) {
        Some(e) if !config.profile.is_null() => m.with_cache_info(
            e.block_size,
            e.kv_capacity_tokens,
            e.prefix_cache && policy.pages_kv(),
        ),
        _ => m,
    }
}

/// `GET /health`: 200, empty body (TGI, vLLM, LightLLM all answer so).
pub(crate) async fn health() -> StatusCode {
    StatusCode::OK
}

/// `GET /metrics`: the engine's gauges and the request counters in the Prometheus text
/// format (see [`crate::metrics`]).
pub(crate) async fn metrics(
    axum::extract::State(st): axum::extract::State<Arc<AppState>>,
) -> Response {
    response(
        StatusCode::OK,
        Some("text/plain; version=0.0.4; charset=utf-8"),
        st.metrics.render(),
    )
}
