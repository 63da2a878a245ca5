//! Turns trace requests into [`Prepared`] ones before the clock starts: the dialect's
//! body serialized once (chat dialects send a request's `messages`, the others its
//! prompt text), the scheduled time and think time scaled, the options resolved per
//! request, the sessions' turns linked ([`Schedule`]), so that dispatching a request
//! costs one task spawn and nothing else. With `--shard`, only the shard's requests are
//! prepared (`crate::shard`).

use std::path::Path;

use bytes::Bytes;
use formats::{ShardInfo, TraceHeader, TraceRequest};

use crate::config::{IgnoreEos, ReplayConfig};
use crate::dialect::adapter::{BodyOptions, Prompt};
use crate::error::ReplayError;
use crate::run::prepared::Prepared;
use crate::run::schedule::Schedule;
use crate::shard::{SHARD_RULE, Shard, assign_shards};

/// The trace, read, verified and made ready to send.
pub(crate) struct Plan {
    pub trace: TraceHeader,
    pub sha256: String,
    /// The requests, ready to dispatch.
    pub schedule: Schedule,
    /// At least one request sends `ignore_eos` (recorded in the log header).
    pub any_ignore_eos: bool,
    /// `--shard`: the shard replayed (recorded in the log header).
    pub shard: Option<ShardInfo>,
    /// Every request is due at the same instant (a burst, like the throughput traces):
    /// dispatch lateness is then the time the client takes to send them all.
    pub burst: bool,
}

/// Reads `path`, hashes it, keeps the first `max_requests` and prepares them (blocking:
/// run it off the runtime).
pub(crate) fn plan(path: &Path, config: &ReplayConfig) -> Result<Plan, ReplayError> {
    let terr = |source| ReplayError::Trace {
        path: path.to_path_buf(),
        source,
    };
    let (trace, mut requests) = formats::read_trace(path).map_err(terr)?;
    let sha256 = formats::sha256_file(path).map_err(terr)?;
    if let Some(m) = config.max_requests {
        requests.truncate(m.min(usize::MAX as u64) as usize);
    }
    let total = requests.len() as u64;
    let burst = requests.len() > 1
        && requests
            .iter()
            .all(|r| r.arrival_ns == requests[0].arrival_ns && r.turn.is_none());
    let keep = config.shard.map(|s| shard_mask(&requests, s));
    let (requests, any_ignore_eos) = prepare(config, requests, keep.as_deref())?;
    let shard = config.shard.map(|s| ShardInfo {
        index: s.index,
        count: s.count,
        rule: SHARD_RULE.to_string(),
        requests: requests.len() as u64,
        total_requests: total,
    });
    Ok(Plan {
        trace,
        sha256,
        schedule: Schedule::new(requests),
        any_ignore_eos,
        shard,
        burst,
    })
}

/// Which of `requests` shard `s` replays (see `crate::shard`).
fn shard_mask(requests: &[TraceRequest], s: Shard) -> Vec<bool> {
    assign_shards(requests, s.count)
        .into_iter()
        .map(|k| k == s.index)
        .collect()
}

fn body_options(config: &ReplayConfig, req: &TraceRequest) -> BodyOptions {
    let ignore_eos = config.backend.has_ignore_eos()
        && match config.fields.ignore_eos {
            IgnoreEos::FromTrace => req.ignore_eos,
            IgnoreEos::Always => true,
            IgnoreEos::Never => false,
        };
    BodyOptions {
        stream: config.stream,
        model: config.model.clone(),
        ignore_eos,
        min_tokens: config.fields.min_tokens && config.backend.is_openai(),
        stream_usage: config.fields.stream_usage && config.backend.is_openai(),
        continuous_usage: config.fields.continuous_usage && config.backend.is_openai(),
    }
}

/// Latest instant a scaled trace time may fall at, ns after the start: about 146 years,
/// so that adding it to a start instant cannot overflow.
const MAX_SCHEDULED_NS: f64 = (1u64 << 62) as f64;

/// `ns` of the trace divided by the time scale, rounded; an error (naming request `id`)
/// when that is beyond [`MAX_SCHEDULED_NS`]: `--time-scale 1e-300` once saturated.
fn scaled_ns(ns: u64, time_scale: f64, id: u64) -> Result<u64, ReplayError> {
    if time_scale == 1.0 && ns as f64 <= MAX_SCHEDULED_NS {
        return Ok(ns);
    }
    let x = (ns as f64 / time_scale).round();
    if x <= MAX_SCHEDULED_NS {
        return Ok(x as u64);
    }
    Err(ReplayError::Config(format!(
        "time scale {} puts request {id} more than 146 years after the start; use a larger time scale",
        formats::readable(time_scale)
    )))
}

/// The requests made ready to send (those `keep` says, all without it), and whether
/// any of them sends `ignore_eos`. Warm-up requests are the first `warmup` of the
/// trace, whichever shard holds them.
fn prepare(
    config: &ReplayConfig,
    requests: Vec<TraceRequest>,
    keep: Option<&[bool]>,
) -> Result<(Vec<Prepared>, bool), ReplayError> {
    let dialect = config.backend.dialect();
    let mut any_ignore_eos = false;
    let mut out = Vec::with_capacity(requests.len());
    for (i, r) in requests.into_iter().enumerate() {
        if keep.is_some_and(|k| !k[i]) {
            continue;
        }
        let opts = body_options(config, &r);
        any_ignore_eos |= opts.ignore_eos;
        let ids = if config.fields.prompt_token_ids {
            Some(r.prompt_token_ids.as_deref().ok_or_else(|| {
                ReplayError::Config(format!(
                    "--prompt-token-ids: trace request {} has no token ids (the trace was \
                     not made with a real tokenizer)",
                    r.id
                ))
            })?)
        } else {
            None
        };
        let prompt = Prompt {
            text: &r.prompt,
            token_ids: ids,
            messages: r.messages.as_deref(),
        };
        let body = dialect.body(&prompt, r.max_tokens, &opts);
        // What the server can generate at most, when its limit is known and it caps.
        let contract_tokens = config
            .max_model_len
            .and_then(|m| dialect.output_cap(m, r.prompt_tokens))
            .map_or(r.max_tokens, |cap| cap.min(r.max_tokens));
        let body = serde_json::to_vec(&body).map_err(|e| ReplayError::Internal(e.to_string()))?;
        let scale = |ns: u64| scaled_ns(ns, config.time_scale, r.id);
        // A later turn is due its think time after the previous turn ends; until then
        // its trace time is a lower bound (see `crate::run::schedule`).
        let think_ns = match r.turn {
            Some(t) if t > 0 => Some(scale(r.think_ns.unwrap_or(0))?),
            _ => None,
        };
        out.push(Prepared {
            id: r.id,
            scheduled_ns: scale(r.arrival_ns)?,
            body: Bytes::from(body),
            prompt_tokens: r.prompt_tokens,
            max_tokens: r.max_tokens,
            contract_tokens,
            prompt_bytes: r.prompt.len(),
            handoff_ns: 0,
            lead_ns: 0,
            ignore_eos_sent: opts.ignore_eos,
            warmup: (i as u64) < config.warmup as u64,
            session_id: r.session_id,
            turn: r.turn,
            think_ns,
            next_turn: None,
        });
    }
    Ok((out, any_ignore_eos))
}
