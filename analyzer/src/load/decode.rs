//! One run's records decoded into column vectors: a log (or the shard logs of one
//! sharded run) streamed once, record by record, its times dilated to the profile's
//! units, and the two polars frames built from the vectors without copying.

use std::path::{Path, PathBuf};

use formats::{FormatError, LogEnd, LogHeader, LogReader};
use polars::prelude::*;

use crate::error::{Error, Result};
use crate::load::columns::{ev, req};
use crate::merge::ShardSet;

/// Column vectors of one file, filled record by record.
#[derive(Default)]
pub(crate) struct Cols {
    pub(crate) request_id: Vec<u64>,
    session_id: Vec<Option<u64>>,
    turn: Vec<Option<u32>>,
    warmup: Vec<bool>,
    outcome: Vec<&'static str>,
    http_status: Vec<Option<u32>>,
    error: Vec<Option<String>>,
    scheduled_ns: Vec<u64>,
    dispatched_ns: Vec<Option<u64>>,
    connect_start_ns: Vec<Option<u64>>,
    connect_ns: Vec<Option<u64>>,
    sent_ns: Vec<Option<u64>>,
    first_byte_ns: Vec<Option<u64>>,
    first_token_ns: Vec<Option<u64>>,
    end_ns: Vec<Option<u64>>,
    prompt_tokens: Vec<u32>,
    max_tokens: Vec<u32>,
    output_tokens: Vec<Option<u32>>,
    server_output_tokens: Vec<Option<u32>>,
    server_prompt_tokens: Vec<Option<u32>>,
    server_cached_tokens: Vec<Option<u32>>,
    first_reasoning_ns: Vec<Option<u64>>,
    first_answer_ns: Vec<Option<u64>>,
    reasoning_tokens: Vec<Option<u32>>,
    server_reasoning_tokens: Vec<Option<u32>>,
    tool_calls: Vec<Option<u32>>,
    tool_calls_valid: Vec<Option<u32>>,
    first_tool_ns: Vec<Option<u64>>,
    tool_tokens: Vec<Option<u32>>,
    token_count_method: Vec<Option<String>>,
    count_flags: Vec<Option<String>>,
    finish_reason: Vec<Option<String>>,
    event_offset: Vec<u64>,
    event_count: Vec<u32>,
    ev_request_id: Vec<u64>,
    ev_seq: Vec<u32>,
    pub(crate) ev_t_ns: Vec<u64>,
    ev_tokens: Vec<u32>,
}

/// One run as read: its log (or first shard log), header, end and columns.
pub(crate) struct Loaded {
    pub(crate) path: PathBuf,
    pub(crate) header: LogHeader,
    pub(crate) end: LogEnd,
    pub(crate) dilation: f64,
    pub(crate) cols: Cols,
    /// The run's name when it is not the file's stem (merged shard logs).
    pub(crate) name: Option<String>,
    /// A warning about the run (shards missing from a sharded run).
    pub(crate) note: Option<String>,
}

/// The factor a run's times are multiplied by to be in its profile's units.
pub fn dilation_of(header: &LogHeader) -> f64 {
    header
        .backend
        .simulated
        .as_ref()
        .and_then(|s| s.speedup)
        .filter(|k| k.is_finite() && *k >= 1.0)
        .unwrap_or(1.0)
}

/// Multiplies every time of `c` by `k` (ns since the run's start, and durations).
fn dilate(c: &mut Cols, k: f64) {
    if k == 1.0 {
        return;
    }
    let f = |t: u64| (t as f64 * k).round() as u64;
    let all = |v: &mut Vec<u64>| v.iter_mut().for_each(|t| *t = f(*t));
    let some = |v: &mut Vec<Option<u64>>| v.iter_mut().flatten().for_each(|t| *t = f(*t));
    all(&mut c.scheduled_ns);
    all(&mut c.ev_t_ns);
    for v in [
        &mut c.dispatched_ns,
        &mut c.connect_start_ns,
        &mut c.connect_ns,
        &mut c.sent_ns,
        &mut c.first_byte_ns,
        &mut c.first_token_ns,
        &mut c.end_ns,
        &mut c.first_reasoning_ns,
        &mut c.first_answer_ns,
        &mut c.first_tool_ns,
    ] {
        some(v);
    }
}

/// One run log.
pub(crate) fn load_one(path: &Path) -> Result<Loaded> {
    let wrap = |source: FormatError| Error::Log {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = LogReader::open(path).map_err(wrap)?;
    let header = reader.header().clone();
    let hint = header.trace.request_count.min(1 << 24) as usize;
    let mut c = Cols::default();
    c.request_id.reserve(hint);
    for record in reader.by_ref() {
        push_record(&mut c, record.map_err(wrap)?);
    }
    let end = reader
        .end()
        .cloned()
        .expect("reader exhausted without error has an end");
    if c.request_id.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the log holds no request records (nothing to analyse)",
            path.display()
        )));
    }
    let dilation = dilation_of(&header);
    dilate(&mut c, dilation);
    Ok(Loaded {
        path: path.to_path_buf(),
        header,
        end,
        dilation,
        cols: c,
        name: None,
        note: None,
    })
}

/// The shard logs of one sharded run loaded as one run (see [`crate::merge`]): times
/// re-based onto the earliest shard start, ids checked disjoint.
pub(crate) fn load_shards(set: &ShardSet) -> Result<Loaded> {
    let mut c = Cols::default();
    c.request_id
        .reserve(set.key.total_requests.min(1 << 24) as usize);
    let end = set.for_each_record(|r| {
        push_record(&mut c, r);
        Ok(())
    })?;
    if c.request_id.is_empty() {
        return Err(Error::Invalid(format!(
            "{}: the shard logs hold no request records (nothing to analyse)",
            set.paths[0].display()
        )));
    }
    let dilation = dilation_of(&set.header);
    dilate(&mut c, dilation);
    let note = set.missing_note().map(|m| {
        format!("{m}: analysing the shards given as a partial run (its throughput is theirs alone)")
    });
    Ok(Loaded {
        path: set.paths[0].clone(),
        header: set.header.clone(),
        end,
        dilation,
        cols: c,
        name: Some(set.name()),
        note,
    })
}

/// Appends one record's columns and events.
fn push_record(c: &mut Cols, r: formats::LogRecord) {
    let offset = c.ev_t_ns.len() as u64;
    let n = r.events.len();
    c.request_id.push(r.id);
    c.session_id.push(r.session_id);
    c.turn.push(r.turn);
    c.warmup.push(r.warmup);
    c.outcome.push(r.outcome.as_str());
    c.http_status.push(r.http_status.map(u32::from));
    c.error.push(r.error);
    c.scheduled_ns.push(r.scheduled_ns);
    c.dispatched_ns.push(r.dispatched_ns);
    c.connect_start_ns.push(r.connect_start_ns);
    c.connect_ns.push(r.connect_ns);
    c.sent_ns.push(r.sent_ns);
    c.first_byte_ns.push(r.first_byte_ns);
    // First event carrying at least one token (a role-only or usage-only chunk
    // is not a token).
    let first_token = r
        .events
        .t_ns
        .iter()
        .zip(&r.events.tokens)
        .find(|(_, k)| **k > 0)
        .map(|(t, _)| *t);
    c.first_token_ns.push(first_token);
    c.end_ns.push(r.end_ns);
    c.prompt_tokens.push(r.prompt_tokens);
    c.max_tokens.push(r.max_tokens);
    // The client count: the recorded one, else the sum of the event counts.
    let client = r.output_tokens.or_else(|| {
        (!r.events.is_empty()).then(|| r.events.total_tokens().min(u32::MAX as u64) as u32)
    });
    c.output_tokens.push(client);
    c.server_output_tokens.push(r.server_output_tokens);
    c.server_prompt_tokens.push(r.server_prompt_tokens);
    c.server_cached_tokens.push(r.server_cached_tokens);
    c.first_reasoning_ns.push(r.first_reasoning_ns);
    c.first_answer_ns.push(r.first_answer_ns);
    c.reasoning_tokens.push(r.reasoning_tokens);
    c.server_reasoning_tokens.push(r.server_reasoning_tokens);
    c.tool_calls.push(r.tool_calls);
    c.tool_calls_valid.push(r.tool_calls_valid);
    c.first_tool_ns.push(r.first_tool_ns);
    c.tool_tokens.push(r.tool_tokens);
    c.token_count_method.push(r.token_count_method);
    c.count_flags
        .push((!r.count_flags.is_empty()).then(|| r.count_flags.join(",")));
    c.finish_reason.push(r.finish_reason);
    c.event_offset.push(offset);
    c.event_count.push(n as u32);
    c.ev_request_id.extend(std::iter::repeat_n(r.id, n));
    c.ev_seq.extend(0..n as u32);
    c.ev_t_ns.extend_from_slice(&r.events.t_ns);
    c.ev_tokens.extend_from_slice(&r.events.tokens);
}

/// Builds the two frames of one run. `event_offset` is run-local: the row of the
/// request's first event counted from the run's first event row.
pub(crate) fn frames(run: u32, c: Cols) -> Result<(DataFrame, DataFrame)> {
    let n = c.request_id.len();
    let m = c.ev_t_ns.len();
    let requests = DataFrame::new(
        n,
        vec![
            Column::new(req::RUN.into(), vec![run; n]),
            Column::new(req::REQUEST_ID.into(), c.request_id),
            Column::new(req::SESSION_ID.into(), c.session_id),
            Column::new(req::TURN.into(), c.turn),
            Column::new(req::WARMUP.into(), c.warmup),
            Column::new(req::OUTCOME.into(), c.outcome),
            Column::new(req::HTTP_STATUS.into(), c.http_status),
            Column::new(req::ERROR.into(), c.error),
            Column::new(req::SCHEDULED_NS.into(), c.scheduled_ns),
            Column::new(req::DISPATCHED_NS.into(), c.dispatched_ns),
            Column::new(req::CONNECT_START_NS.into(), c.connect_start_ns),
            Column::new(req::CONNECT_NS.into(), c.connect_ns),
            Column::new(req::SENT_NS.into(), c.sent_ns),
            Column::new(req::FIRST_BYTE_NS.into(), c.first_byte_ns),
            Column::new(req::FIRST_TOKEN_NS.into(), c.first_token_ns),
            Column::new(req::END_NS.into(), c.end_ns),
            Column::new(req::PROMPT_TOKENS.into(), c.prompt_tokens),
            Column::new(req::MAX_TOKENS.into(), c.max_tokens),
            Column::new(req::OUTPUT_TOKENS.into(), c.output_tokens),
            Column::new(req::SERVER_OUTPUT_TOKENS.into(), c.server_output_tokens),
            Column::new(req::SERVER_PROMPT_TOKENS.into(), c.server_prompt_tokens),
            Column::new(req::SERVER_CACHED_TOKENS.into(), c.server_cached_tokens),
            Column::new(req::FIRST_REASONING_NS.into(), c.first_reasoning_ns),
            Column::new(req::FIRST_ANSWER_NS.into(), c.first_answer_ns),
            Column::new(req::REASONING_TOKENS.into(), c.reasoning_tokens),
            Column::new(
                req::SERVER_REASONING_TOKENS.into(),
                c.server_reasoning_tokens,
            ),
            Column::new(req::TOOL_CALLS.into(), c.tool_calls),
            Column::new(req::TOOL_CALLS_VALID.into(), c.tool_calls_valid),
            Column::new(req::FIRST_TOOL_NS.into(), c.first_tool_ns),
            Column::new(req::TOOL_TOKENS.into(), c.tool_tokens),
            Column::new(req::TOKEN_COUNT_METHOD.into(), c.token_count_method),
            Column::new(req::COUNT_FLAGS.into(), c.count_flags),
            Column::new(req::FINISH_REASON.into(), c.finish_reason),
            Column::new(req::EVENT_OFFSET.into(), c.event_offset),
            Column::new(req::EVENT_COUNT.into(), c.event_count),
        ],
    )?;
    let events = DataFrame::new(
        m,
        vec![
            Column::new(ev::RUN.into(), vec![run; m]),
            Column::new(ev::REQUEST_ID.into(), c.ev_request_id),
            Column::new(ev::SEQ.into(), c.ev_seq),
            Column::new(ev::T_NS.into(), c.ev_t_ns),
            Column::new(ev::TOKENS.into(), c.ev_tokens),
        ],
    )?;
    Ok((requests, events))
}
