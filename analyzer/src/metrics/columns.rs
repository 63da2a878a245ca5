//! The requests and events tables' columns the metrics read, as plain vectors and
//! slices: one pass of plain loops over them computes every definition (see the
//! [`crate::metrics`] docs for why not polars expressions).

use polars::prelude::*;

use crate::error::Result;
use crate::load::columns::{ev, req};

fn opt_u64(df: &DataFrame, name: &str) -> Result<Vec<Option<u64>>> {
    Ok(df.column(name)?.u64()?.iter().collect())
}
fn opt_u32(df: &DataFrame, name: &str) -> Result<Vec<Option<u32>>> {
    Ok(df.column(name)?.u32()?.iter().collect())
}

/// The requests-table columns metrics read, as plain vectors.
pub(crate) struct ReqCols<'a> {
    pub warmup: Vec<bool>,
    pub outcome: Vec<&'a str>,
    pub scheduled: &'a [u64],
    pub dispatched: Vec<Option<u64>>,
    pub connect_start: Vec<Option<u64>>,
    pub sent: Vec<Option<u64>>,
    pub first_token: Vec<Option<u64>>,
    pub end: Vec<Option<u64>>,
    pub prompt: &'a [u32],
    pub max_tokens: &'a [u32],
    pub client: Vec<Option<u32>>,
    pub server: Vec<Option<u32>>,
    pub first_reasoning: Vec<Option<u64>>,
    pub first_answer: Vec<Option<u64>>,
    pub reasoning_client: Vec<Option<u32>>,
    pub reasoning_server: Vec<Option<u32>>,
    pub tool_calls: Vec<Option<u32>>,
    pub tool_calls_valid: Vec<Option<u32>>,
    pub first_tool: Vec<Option<u64>>,
    pub tool_tokens: Vec<Option<u32>>,
    pub count_flags: Vec<Option<&'a str>>,
    pub server_prompt: Vec<Option<u32>>,
    pub server_cached: Vec<Option<u32>>,
    pub session_id: Vec<Option<u64>>,
    pub turn: Vec<Option<u32>>,
    pub ev_offset: &'a [u64],
    pub ev_count: &'a [u32],
}

impl<'a> ReqCols<'a> {
    pub fn new(df: &'a DataFrame) -> Result<Self> {
        Ok(ReqCols {
            warmup: df
                .column(req::WARMUP)?
                .bool()?
                .iter()
                .map(|b| b.unwrap_or(false))
                .collect(),
            outcome: df
                .column(req::OUTCOME)?
                .str()?
                .iter()
                .map(|s| s.unwrap_or(""))
                .collect(),
            scheduled: df.column(req::SCHEDULED_NS)?.u64()?.cont_slice()?,
            dispatched: opt_u64(df, req::DISPATCHED_NS)?,
            connect_start: opt_u64(df, req::CONNECT_START_NS)?,
            sent: opt_u64(df, req::SENT_NS)?,
            first_token: opt_u64(df, req::FIRST_TOKEN_NS)?,
            end: opt_u64(df, req::END_NS)?,
            prompt: df.column(req::PROMPT_TOKENS)?.u32()?.cont_slice()?,
            max_tokens: df.column(req::MAX_TOKENS)?.u32()?.cont_slice()?,
            client: opt_u32(df, req::OUTPUT_TOKENS)?,
            server: opt_u32(df, req::SERVER_OUTPUT_TOKENS)?,
            first_reasoning: opt_u64(df, req::FIRST_REASONING_NS)?,
            first_answer: opt_u64(df, req::FIRST_ANSWER_NS)?,
            reasoning_client: opt_u32(df, req::REASONING_TOKENS)?,
            reasoning_server: opt_u32(df, req::SERVER_REASONING_TOKENS)?,
            tool_calls: opt_u32(df, req::TOOL_CALLS)?,
            tool_calls_valid: opt_u32(df, req::TOOL_CALLS_VALID)?,
            first_tool: opt_u64(df, req::FIRST_TOOL_NS)?,
            tool_tokens: opt_u32(df, req::TOOL_TOKENS)?,
            count_flags: df.column(req::COUNT_FLAGS)?.str()?.iter().collect(),
            server_prompt: opt_u32(df, req::SERVER_PROMPT_TOKENS)?,
            server_cached: opt_u32(df, req::SERVER_CACHED_TOKENS)?,
            session_id: opt_u64(df, req::SESSION_ID)?,
            turn: opt_u32(df, req::TURN)?,
            ev_offset: df.column(req::EVENT_OFFSET)?.u64()?.cont_slice()?,
            ev_count: df.column(req::EVENT_COUNT)?.u32()?.cont_slice()?,
        })
    }
}

/// The events-table columns metrics read.
pub(crate) struct EvCols<'a> {
    pub t_ns: &'a [u64],
    pub tokens: &'a [u32],
}

impl<'a> EvCols<'a> {
    pub fn new(df: &'a DataFrame) -> Result<Self> {
        Ok(EvCols {
            t_ns: df.column(ev::T_NS)?.u64()?.cont_slice()?,
            tokens: df.column(ev::TOKENS)?.u32()?.cont_slice()?,
        })
    }
}
