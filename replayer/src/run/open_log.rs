//! Phase 4 of a run (see `run/mod.rs`): the clock starts, the run log is created with
//! its header (what was asked, of which server, with which options) and the writer
//! thread starts. From here on every trace request ends as one record.

use std::sync::mpsc::Sender;
use std::thread::JoinHandle;
use std::time::Duration;

use formats::{
    BackendInfo, LogHeader, LogWriter, PrefixCacheReset, ReplayOptions, ServerIdentity,
    ServerMetricsRef, TraceRef, WarmConnections,
};

use crate::clock::RunClock;
use crate::config::{ReplayConfig, ServerMetricsSource};
use crate::error::ReplayError;
use crate::run::prepare::Plan;
use crate::run::start_at;
use crate::run::sys;
use crate::run::writer::{self, WriterMsg, WriterReport};

/// What the log header records about the server besides its URL.
pub(super) struct ServerState {
    pub(super) identity: Option<ServerIdentity>,
    pub(super) reset: Option<PrefixCacheReset>,
}

/// The run clock and the log writer thread, with the channel records reach it by.
pub(super) struct LogSink {
    pub(super) clock: RunClock,
    pub(super) tx: Sender<WriterMsg>,
    pub(super) writer: JoinHandle<WriterReport>,
}

/// Phase 4: starts the clock, creates the run log with its header and starts the
/// writer thread.
pub(super) fn open_log(
    config: &ReplayConfig,
    plan: &Plan,
    warm: &WarmConnections,
    model_discovered: bool,
    server: ServerState,
) -> Result<LogSink, ReplayError> {
    let mut options = replay_options(config, plan.any_ignore_eos, warm);
    options.model_discovered = model_discovered;
    options.shard = plan.shard.clone();
    let clock = match config.start_at_unix_ns {
        Some(t) => {
            let (clock, info) = start_at::clock_at(t)?;
            options.start_at = Some(info);
            clock
        }
        None => RunClock::start_in(Duration::from_millis(50)),
    };
    let mut header = log_header(config, plan, &clock, options);
    header.server_identity = server.identity;
    header.prefix_cache_reset = server.reset.map(|mut r| {
        r.before_start_ns = clock.started_unix_ns.saturating_sub(r.at_unix_ns);
        r
    });
    let log = if config.overwrite {
        LogWriter::create(&config.output, &header)
    } else {
        LogWriter::create_new(&config.output, &header)
    };
    let log = log.map_err(|e| ReplayError::Log {
        path: config.output.clone(),
        message: e.to_string(),
    })?;
    let mut expected: Vec<writer::Expected> = plan
        .schedule
        .iter()
        .map(|p| writer::Expected {
            id: p.id,
            scheduled_ns: p.scheduled_ns,
            prompt_tokens: p.prompt_tokens,
            max_tokens: p.max_tokens,
            warmup: p.warmup,
            session_id: p.session_id,
            turn: p.turn,
        })
        .collect();
    if !expected.is_sorted_by_key(|e| e.id) {
        // With sessions: open-loop requests, then later turns (two sorted runs, merged
        // in one pass). The writer looks records up by id.
        expected.sort_by_key(|e| e.id);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let writer = std::thread::Builder::new()
        .name("llmib-log-writer".into())
        .spawn(move || writer::run(rx, log, expected))
        .map_err(|e| ReplayError::Internal(format!("starting the log writer: {e}")))?;
    Ok(LogSink { clock, tx, writer })
}

/// The options recorded in the log header (never header values or API keys).
fn replay_options(
    config: &ReplayConfig,
    any_ignore_eos: bool,
    warm: &WarmConnections,
) -> ReplayOptions {
    let openai = config.backend.is_openai();
    ReplayOptions {
        stream: config.stream,
        concurrency: config.concurrency,
        warmup: config.warmup,
        timeout_ms: config.timeout.map(|t| t.as_millis() as u64),
        time_scale: config.time_scale,
        max_requests: config.max_requests,
        duration_ms: config.duration.map(|d| d.as_millis() as u64),
        send_ignore_eos: any_ignore_eos,
        send_min_tokens: config.fields.min_tokens && openai,
        send_include_usage: config.fields.stream_usage && openai && config.stream,
        send_continuous_usage: config.fields.continuous_usage && openai && config.stream,
        prompt_as_token_ids: config.fields.prompt_token_ids,
        header_names: config
            .headers
            .iter()
            .map(|(k, _)| k.trim().to_string())
            .collect(),
        warm_connections: Some(warm.clone()),
        tls_insecure: config.tls.insecure,
        tls_cacert: config.tls.cacert.as_ref().map(|p| p.display().to_string()),
        pool_idle_timeout_ms: Some(config.pool_idle_timeout.as_millis() as u64),
        model_discovered: false,
        max_model_len: config.max_model_len,
        server_metrics: config.server_metrics.as_ref().map(|s| ServerMetricsRef {
            url: match s {
                ServerMetricsSource::Url(u) => formats::redact_url(u),
                ServerMetricsSource::Auto => String::new(),
            },
            interval_ns: config.server_metrics_interval.as_nanos() as u64,
        }),
        shard: None,
        start_at: None,
        merged_from: Vec::new(),
        offered_rate: config.offered_rate,
    }
}

fn log_header(
    config: &ReplayConfig,
    plan: &Plan,
    clock: &RunClock,
    options: ReplayOptions,
) -> LogHeader {
    LogHeader::new(
        TraceRef {
            name: plan.trace.name.clone(),
            sha256: plan.sha256.clone(),
            request_count: plan.trace.request_count,
            spec: Some(plan.trace.spec.clone()),
        },
        BackendInfo {
            kind: config.backend.as_str().to_string(),
            endpoint: formats::redact_url(&config.endpoint),
            model: config.model.clone(),
            simulated: config.simulated.clone(),
        },
        clock.started_unix_ns,
        env!("CARGO_PKG_VERSION"),
        sys::hostname(),
        options,
    )
}
