//! A run log made by the engine model in virtual time instead of a replay over HTTP:
//! `llmib sweep` and `llmib search` with `--profile` (a twin from `llmib calibrate`, or
//! any profile) and no `--endpoint`.
//!
//! Why a genuine run log rather than a table of predictions: everything downstream
//! (the analysis, capacity curves, SLO checks, manifests, `llmib analyze` long after)
//! reads run logs, so a virtual run is analysed exactly as a measured one and a search
//! on the twin runs the same code as a search on the server. The log says what it is:
//! `backend.simulated.virtual_time` is true, the endpoint is `virtual:<profile>`, the
//! host is `virtual`, and the analysis labels its rows `(simulated, <profile>, virtual
//! time)`.
//!
//! What the client does is modelled, not measured: a request is sent at its scheduled
//! time (open loop) or when a slot of `--concurrency` frees; its answer's head arrives
//! at once; each output token arrives at the end of the engine step that made it, one
//! event per token (`per_event`). `--duration` stops sending as a replay does: requests
//! due later are `not_sent`, those still answering `grace` after it are `cancelled` with
//! the tokens they had. `--timeout` ends a request as a replay does (`timeout`); the
//! engine model still computes its whole answer (a server may go on too). Prompts that
//! share text share prefix-cache blocks ([`crate::prefix::trace_prompt_hashes`]). Every
//! run starts with an empty cache, as after a prefix-cache reset.

use std::path::{Path, PathBuf};
use std::time::Duration;

use formats::{
    BackendInfo, Events, LogHeader, LogRecord, LogWriter, Outcome, PrefixCacheReset, ReplayOptions,
    SimulatedInfo, TraceRef, TraceRequest,
};

use crate::engine::prefix::{bytes_per_token, trace_prompt_hashes};
use crate::engine::virtual_time::{VirtualOptions, VirtualRequest, VirtualResult, simulate_with};
use crate::profile::{EngineParams, Policy};

/// Host recorded in a virtual run's header: no client machine took part.
pub const VIRTUAL_HOST: &str = "virtual";

/// One virtual run: the trace, the engine, and the replay options it models.
#[derive(Debug, Clone)]
pub struct VirtualRun {
    pub trace: PathBuf,
    /// The run log to write (replaced if it exists).
    pub log: PathBuf,
    /// The profile as the user named it (recorded).
    pub profile: String,
    pub params: EngineParams,
    pub policy: Policy,
    /// The wire format recorded as the run's backend kind (`openai`, `vllm`...).
    pub backend: String,
    pub model: Option<String>,
    /// Arrival offsets are divided by it (as `replay --time-scale`).
    pub time_scale: f64,
    pub max_requests: Option<u64>,
    pub concurrency: Option<u32>,
    pub timeout: Option<Duration>,
    pub duration: Option<Duration>,
    /// How long requests in flight may go on once `duration` stopped the sending.
    pub grace: Duration,
    pub offered_rate: Option<f64>,
}

/// What a virtual run wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VirtualRunSummary {
    pub records: u64,
    pub ok: u64,
    pub not_sent: u64,
    /// The log's trailer says complete: no request was left unsent or cut off.
    pub complete: bool,
    /// End of the run, ns of virtual time after its start.
    pub ended_ns: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum VirtualRunError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("{0}")]
    Unsupported(String),
}

fn file_err(path: &Path, e: impl std::fmt::Display) -> VirtualRunError {
    VirtualRunError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Runs the trace through the engine model and writes its run log.
pub fn write_log(run: &VirtualRun) -> Result<VirtualRunSummary, VirtualRunError> {
    let (header, mut requests) =
        formats::read_trace(&run.trace).map_err(|e| file_err(&run.trace, e))?;
    if let Some(r) = requests.iter().find(|r| r.turn.is_some_and(|t| t > 0)) {
        return Err(VirtualRunError::Unsupported(format!(
            "{}: request {} is a later turn of a session; virtual runs replay open-loop \
             traces (a turn's arrival depends on the previous turn's end)",
            run.trace.display(),
            r.id
        )));
    }
    let n = run
        .max_requests
        .map_or(requests.len(), |m| (m as usize).min(requests.len()));
    requests.truncate(n);
    let scheduled = scheduled_times(&requests, run.time_scale)?;
    let records = simulate_records(run, &requests, &scheduled);
    let sha256 = formats::sha256_file(&run.trace).map_err(|e| file_err(&run.trace, e))?;
    let log_header = log_header(run, &header, sha256, any_ignore_eos(&requests));
    let mut writer = LogWriter::create(&run.log, &log_header).map_err(|e| file_err(&run.log, e))?;
    let mut summary = VirtualRunSummary {
        records: 0,
        ok: 0,
        not_sent: 0,
        complete: true,
        ended_ns: 0,
    };
    for r in &records {
        writer.write(r).map_err(|e| file_err(&run.log, e))?;
        summary.records += 1;
        summary.ok += (r.outcome == Outcome::Ok) as u64;
        summary.not_sent += (r.outcome == Outcome::NotSent) as u64;
        summary.complete &= !matches!(r.outcome, Outcome::NotSent | Outcome::Cancelled);
        summary.ended_ns = summary.ended_ns.max(r.end_ns.unwrap_or(0));
    }
    writer
        .finish(summary.complete, summary.ended_ns)
        .map_err(|e| file_err(&run.log, e))?;
    Ok(summary)
}

fn any_ignore_eos(requests: &[TraceRequest]) -> bool {
    requests.iter().any(|r| r.ignore_eos)
}

/// Each request's due time: its arrival over the time scale, ns (as the replayer).
fn scheduled_times(
    requests: &[TraceRequest],
    time_scale: f64,
) -> Result<Vec<u64>, VirtualRunError> {
    if !(time_scale.is_finite() && time_scale > 0.0) {
        return Err(VirtualRunError::Unsupported(format!(
            "time scale {time_scale}: expected a positive number"
        )));
    }
    const MAX_NS: f64 = (1u64 << 62) as f64;
    requests
        .iter()
        .map(|r| {
            let x = (r.arrival_ns as f64 / time_scale).round();
            if x <= MAX_NS {
                Ok(x as u64)
            } else {
                Err(VirtualRunError::Unsupported(format!(
                    "time scale {time_scale} puts request {} more than 146 years after the start",
                    r.id
                )))
            }
        })
        .collect()
}

/// The engine model's run of the requests sent (those due before `duration`), and a
/// record for every request.
fn simulate_records(
    run: &VirtualRun,
    requests: &[TraceRequest],
    scheduled: &[u64],
) -> Vec<LogRecord> {
    let stop_ns = run.duration.map(|d| d.as_nanos() as u64);
    let sent: Vec<usize> = (0..requests.len())
        .filter(|&i| stop_ns.is_none_or(|s| scheduled[i] <= s))
        .collect();
    let virtual_requests: Vec<VirtualRequest> = sent
        .iter()
        .map(|&i| VirtualRequest {
            arrival_ns: scheduled[i],
            ..VirtualRequest::from(&requests[i])
        })
        .collect();
    let hashes: Option<Vec<Vec<u64>>> = run.params.prefix_cache.then(|| {
        let sent_requests: Vec<TraceRequest> = sent.iter().map(|&i| requests[i].clone()).collect();
        let bpt = bytes_per_token(&sent_requests);
        sent_requests
            .iter()
            .map(|r| trace_prompt_hashes(r, run.params.block_size, bpt))
            .collect()
    });
    let opts = VirtualOptions {
        concurrency: run.concurrency,
        hashes: hashes.as_deref(),
        known_hits: None,
        token_times: true,
    };
    let (results, _) = simulate_with(&run.params, run.policy, &virtual_requests, &opts);
    let cut_all = stop_ns.map(|s| s.saturating_add(run.grace.as_nanos() as u64));
    let mut records: Vec<LogRecord> = requests
        .iter()
        .zip(scheduled)
        .map(|(r, &s)| LogRecord::not_sent(r.id, s, r.prompt_tokens, r.max_tokens, false))
        .collect();
    for (j, &i) in sent.iter().enumerate() {
        let res = &results[j];
        let cut_timeout = run
            .timeout
            .map(|t| res.dispatched_ns.saturating_add(t.as_nanos() as u64));
        fill_record(
            &mut records[i],
            res,
            cut_timeout,
            cut_all,
            run.params.prefix_cache,
        );
    }
    records
}

/// Fills a sent request's record from its fate in the engine: answered, rejected, or
/// cut off by its timeout or by the end of the run (whichever comes first).
fn fill_record(
    rec: &mut LogRecord,
    res: &VirtualResult,
    cut_timeout: Option<u64>,
    cut_all: Option<u64>,
    prefix_cache: bool,
) {
    rec.dispatched_ns = Some(res.dispatched_ns);
    rec.sent_ns = Some(res.dispatched_ns);
    if res.rejected {
        rec.first_byte_ns = Some(res.dispatched_ns);
        rec.end_ns = Some(res.dispatched_ns);
        rec.outcome = Outcome::HttpError;
        rec.http_status = Some(400);
        rec.error = Some(
            "virtual time: the prompt and max_tokens do not fit the engine (context or KV limit)"
                .into(),
        );
        return;
    }
    rec.first_byte_ns = Some(res.dispatched_ns);
    let cut = [cut_timeout, cut_all].into_iter().flatten().min();
    let (end, outcome) = match cut {
        Some(c) if res.finished_ns > c => {
            let timed_out = cut_timeout == Some(c) && cut_all.is_none_or(|a| c <= a);
            (
                c,
                if timed_out {
                    Outcome::Timeout
                } else {
                    Outcome::Cancelled
                },
            )
        }
        _ => (res.finished_ns, Outcome::Ok),
    };
    let mut events = Events::default();
    for &t in res.token_ns.iter().take_while(|&&t| t <= end) {
        events.push(t, 1);
    }
    let tokens = events.len() as u32;
    rec.events = events;
    rec.end_ns = Some(end);
    rec.outcome = outcome;
    rec.output_tokens = Some(tokens);
    rec.token_count_method = Some("per_event".into());
    rec.server_prompt_tokens = Some(rec.prompt_tokens);
    rec.server_cached_tokens = prefix_cache.then_some(res.cached_tokens);
    if outcome == Outcome::Ok {
        rec.http_status = Some(200);
        rec.server_output_tokens = Some(tokens);
        rec.finish_reason = Some("length".into());
    } else {
        rec.http_status = Some(200);
        rec.error = Some(match outcome {
            Outcome::Timeout => "virtual time: the per-request timeout expired".into(),
            _ => "virtual time: still answering when the run ended".into(),
        });
    }
}

fn log_header(
    run: &VirtualRun,
    trace: &formats::TraceHeader,
    sha256: String,
    ignore_eos: bool,
) -> LogHeader {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let options = ReplayOptions {
        stream: true,
        concurrency: run.concurrency,
        timeout_ms: run.timeout.map(|t| t.as_millis() as u64),
        time_scale: run.time_scale,
        max_requests: run.max_requests,
        duration_ms: run.duration.map(|d| d.as_millis() as u64),
        send_ignore_eos: ignore_eos,
        offered_rate: run.offered_rate,
        ..ReplayOptions::default()
    };
    let mut h = LogHeader::new(
        TraceRef {
            name: trace.name.clone(),
            sha256,
            request_count: trace.request_count,
            spec: Some(trace.spec.clone()),
        },
        BackendInfo {
            kind: run.backend.clone(),
            endpoint: format!("virtual:{}", run.profile),
            model: run.model.clone(),
            simulated: Some(SimulatedInfo {
                dialect: run.backend.clone(),
                profile: run.profile.clone(),
                speedup: None,
                virtual_time: true,
            }),
        },
        now,
        env!("CARGO_PKG_VERSION"),
        VIRTUAL_HOST,
        options,
    );
    h.prefix_cache_reset = Some(PrefixCacheReset {
        outcome: "ok".into(),
        request: Some("virtual: a new engine for the run".into()),
        tried: Vec::new(),
        attempts: 0,
        http_status: None,
        answer: None,
        at_unix_ns: now,
        before_start_ns: 0,
    });
    h
}

#[cfg(test)]
mod tests;
