//! Before the clock starts (phases 1 to 3 of a run, see `run/mod.rs`): the options and
//! paths checked, the model and the server's identity asked for, the trace prepared,
//! the client built and its connections warmed up. Whatever can fail on the user's
//! input fails here, before anything is sent.

use std::path::Path;
use std::sync::Arc;

use formats::{PrefixCacheReset, ServerIdentity, WarmConnections};
use reqwest::header::HeaderMap;

use crate::config::ReplayConfig;
use crate::error::ReplayError;
use crate::net::cache_reset;
use crate::net::conn_count::ConnCount;
use crate::net::http::{build_client, build_headers, detect_simulator, probe_url, request_url};
use crate::net::standby::Standby;
use crate::net::warm;
use crate::run::prepare::Plan;
use crate::run::start_at;
use crate::run::sys;
use crate::server_metrics;

/// Where requests go, the fixed headers they carry and the TLS they use.
pub(super) struct Target {
    pub(super) url: reqwest::Url,
    pub(super) headers: HeaderMap,
    pub(super) tls: rustls::ClientConfig,
}

/// Phase 1: everything that can be checked without reading the trace or the network:
/// the options, the output path (never the trace, never an existing log unless
/// `overwrite`), the URL, the headers and the TLS setup (`--cacert` is read here).
pub(super) fn validate(trace: &Path, config: &ReplayConfig) -> Result<Target, ReplayError> {
    validate_options(config)?;
    let url = request_url(&config.endpoint, config.backend, config.stream)?;
    let guard =
        formats::OutputGuard::new(config.overwrite).input(trace, "the trace being replayed");
    guard
        .check_file(&config.output)
        .map_err(|e| ReplayError::Config(e.to_string()))?;
    if config.server_metrics.is_some() {
        // The sidecar obeys the log's rules, checked now rather than once the log is
        // written (see `server_metrics::setup`).
        guard
            .check_file_no_follow(&formats::sidecar_path(&config.output))
            .map_err(|e| ReplayError::Config(format!("--server-metrics: {e}")))?;
    }
    let headers = build_headers(&config.headers, config.api_key.as_deref(), config.backend)
        .map_err(ReplayError::Config)?;
    let tls = crate::net::tls::client_config(&config.tls, url.scheme() == "https")?;
    Ok(Target { url, headers, tls })
}

/// Phase 1b: an OpenAI dialect without `--model` asks the server for its only model
/// (see [`crate::net::models`]), before the bodies are serialized. Returns whether the
/// model was discovered.
pub(super) async fn discover_model(
    config: &mut ReplayConfig,
    target: &Target,
) -> Result<bool, ReplayError> {
    if !config.backend.serves_v1_models() || config.model.is_some() {
        return Ok(false);
    }
    let limit = config.timeout.map_or(warm::LIMIT, |t| t.min(warm::LIMIT));
    let client = crate::net::http::client_builder(&target.tls)
        .build()
        .map_err(|e| ReplayError::Internal(format!("building the HTTP client: {e}")))?;
    let url = probe_url(&target.url, config.backend)?;
    let model = crate::net::models::discover(&client, &url, &target.headers, limit).await?;
    config.model = Some(model);
    Ok(true)
}

/// Phase 1c: what the server says about itself (see [`crate::identity`]), when asked.
pub(super) async fn identify(config: &ReplayConfig, target: &Target) -> Option<ServerIdentity> {
    if !config.identify_server {
        return None;
    }
    Some(crate::identity::identify(&target.url, &target.headers, &target.tls).await)
}

/// Phase 1d: llama.cpp's `llama-server` (as built from llama-cpp-python 0.3.36, measured
/// in issue 21) answers a streamed request with `Keep-Alive`, then closes the
/// connection: a request sent on it before the close arrived was lost ("connection
/// closed before message completed", 9 of 60 at `--concurrency 4`). So against it every
/// streamed request says `Connection: close` and needs a connection of its own, which
/// standby connections opened ahead of it provide (`net/standby.rs`, started by the
/// run); the returned note says so.
pub(super) fn close_after_streams(
    config: &ReplayConfig,
    target: &mut Target,
    identity: Option<&ServerIdentity>,
) -> Option<String> {
    let server = identity?.server_header.as_deref()?;
    if !config.stream || !server.trim().to_ascii_lowercase().starts_with("llama.cpp") {
        return None;
    }
    target.headers.insert(
        reqwest::header::CONNECTION,
        reqwest::header::HeaderValue::from_static("close"),
    );
    Some(
        "llama.cpp's server closes a kept-alive connection after a streamed answer \
         (losing the next request sent on it): each streamed request has its own \
         connection (Connection: close), opened ahead of it on standby (a request that \
         found none has connect_ns)"
            .into(),
    )
}

/// Phase 3c: `--reset-prefix-cache`, the last request before the clock starts (see
/// [`crate::net::cache_reset`]); the endpoint follows the server's identity when known.
pub(super) async fn reset_cache(
    config: &ReplayConfig,
    target: &Target,
    identity: Option<&ServerIdentity>,
) -> Option<PrefixCacheReset> {
    if !config.reset_prefix_cache {
        return None;
    }
    let kind = identity.and_then(|i| i.kind.as_deref());
    let candidates = cache_reset::candidates(config.backend, kind);
    Some(cache_reset::reset(&target.url, &target.headers, &target.tls, &candidates).await)
}

fn validate_options(config: &ReplayConfig) -> Result<(), ReplayError> {
    if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
        return Err(ReplayError::Config(format!(
            "time scale must be a positive number, got {}",
            formats::readable(config.time_scale)
        )));
    }
    if config.timeout.is_some_and(|t| t.is_zero()) {
        return Err(ReplayError::Config(
            "timeout must be greater than 0 (omit it for no timeout)".into(),
        ));
    }
    if config.pool_idle_timeout.is_zero() {
        return Err(ReplayError::Config(
            "the pool idle timeout must be greater than 0".into(),
        ));
    }
    if config.concurrency == Some(0) {
        return Err(ReplayError::Config("concurrency must be at least 1".into()));
    }
    if config.max_requests == Some(0) {
        return Err(ReplayError::Config(
            "--max-requests must be at least 1 (0 would replay nothing)".into(),
        ));
    }
    server_metrics::setup::check_interval(config)?;
    if let Some(s) = config.shard
        && s.index >= s.count
    {
        return Err(ReplayError::Config(format!(
            "shard {s}: the index must be below the shard count"
        )));
    }
    if let Some(t) = config.start_at_unix_ns {
        start_at::check_future(t, "at launch")?;
    }
    if config.fields.prompt_token_ids && !config.backend.accepts_token_ids() {
        return Err(ReplayError::Config(format!(
            "backend {} does not accept prompts as token ids (openai, sglang and llamacpp do)",
            config.backend
        )));
    }
    Ok(())
}

/// Phase 2: reads and verifies the trace and serializes every request body, on a
/// blocking thread, before the clock starts.
pub(super) async fn prepare(trace: &Path, config: &ReplayConfig) -> Result<Plan, ReplayError> {
    let trace = trace.to_path_buf();
    let config = config.clone();
    tokio::task::spawn_blocking(move || crate::run::prepare::plan(&trace, &config))
        .await
        .map_err(|e| ReplayError::Internal(e.to_string()))?
}

/// Idle connections kept beyond the peak in flight (see [`connect`]).
const POOL_SPARES: u64 = 16;

/// What the connect phase leaves for the run.
pub(super) struct Connected {
    pub(super) client: reqwest::Client,
    /// Every connection the client established (see [`crate::net::connect`]).
    pub(super) count: ConnCount,
    /// The client's standby connections (`net/standby.rs`), off unless a keeper runs.
    pub(super) standby: Arc<Standby>,
    /// The warm-up's probe, which the standby keeper sends too.
    pub(super) probe: reqwest::Url,
    /// Connections established before the clock started.
    pub(super) opened_before: u64,
    pub(super) warm: WarmConnections,
    /// The warnings so far.
    pub(super) warnings: Vec<String>,
}

/// Phase 3: the open-file limit and the HTTP client, both sized for the peak of open
/// connections; the connection warm-up (`--connections`), which leaves keep-alive
/// connections idle in the client's pool before the clock starts; whether the server
/// is the simulator (recorded in `config`).
pub(super) async fn connect(
    config: &mut ReplayConfig,
    target: &Target,
    plan: &Plan,
) -> Result<Connected, ReplayError> {
    let mut warnings = Vec::new();
    sys::keep_freed_memory();
    let n = plan.schedule.len() as u64;
    let peak = config.concurrency.map_or(n, |c| (c as u64).min(n));
    let asked = config.connections.unwrap_or(0) as u64;
    if let Some(w) = sys::raise_nofile(peak.max(asked) + warm::FD_RESERVE) {
        warnings.push(w);
    }
    let scheduled: Vec<u64> = plan.schedule.iter().map(|p| p.scheduled_ns).collect();
    let goal = warm::goal(
        config.connections,
        config.concurrency,
        &scheduled,
        sys::open_file_limit(),
    );
    // Room for spares: a request that takes a slot just freed can start a connect
    // before the freed connection is back in the pool (see `connect.rs`); the idle pool
    // keeps the spare it leaves, so the race fades instead of recurring.
    let pool = (peak.max(goal.count as u64) + POOL_SPARES).min(65536) as usize;
    let count = ConnCount::default();
    let standby = Arc::new(Standby::default());
    let client = build_client(config, &target.tls, pool, (&count, &standby))?;
    // Warm-up first, on the empty pool it needs; the probe then reuses a connection.
    let probe = probe_url(&target.url, config.backend)?;
    let limit = config.timeout.map_or(warm::LIMIT, |t| t.min(warm::LIMIT));
    let (warm, note) = warm::warm_up(&client, &probe, &target.headers, goal, &count, limit).await;
    warnings.extend(note);
    if config.simulated.is_none() {
        config.simulated = detect_simulator(&client, &target.url).await;
    }
    Ok(Connected {
        client,
        opened_before: count.opened(),
        count,
        standby,
        probe,
        warm,
        warnings,
    })
}
