//! The run log's records: one per trace request, saying what happened to it (outcome,
//! the times of its phases, its token events, what the server reported).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How a request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Complete answer received.
    Ok,
    /// The server answered an error status (or an error event / empty completion).
    HttpError,
    /// The per-request timeout expired.
    Timeout,
    /// No connection could be made or the request could not be sent.
    ConnectError,
    /// The response broke off or could not be parsed.
    StreamError,
    /// In flight when the run was interrupted.
    Cancelled,
    /// Never sent (run interrupted or `--duration` reached first).
    NotSent,
}

impl Outcome {
    pub const ALL: [Outcome; 7] = [
        Outcome::Ok,
        Outcome::HttpError,
        Outcome::Timeout,
        Outcome::ConnectError,
        Outcome::StreamError,
        Outcome::Cancelled,
        Outcome::NotSent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::HttpError => "http_error",
            Outcome::Timeout => "timeout",
            Outcome::ConnectError => "connect_error",
            Outcome::StreamError => "stream_error",
            Outcome::Cancelled => "cancelled",
            Outcome::NotSent => "not_sent",
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Streamed events of one response, as two parallel columns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Events {
    /// Receive time of each event, ns since run start.
    pub t_ns: Vec<u64>,
    /// Output tokens carried by each event.
    pub tokens: Vec<u32>,
}

impl Events {
    pub fn push(&mut self, t_ns: u64, tokens: u32) {
        self.t_ns.push(t_ns);
        self.tokens.push(tokens);
    }

    pub fn len(&self) -> usize {
        self.t_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.t_ns.is_empty()
    }

    pub fn total_tokens(&self) -> u64 {
        self.tokens.iter().map(|&t| t as u64).sum()
    }
}

/// One request's fate. Every trace request replayed (or not) ends as exactly one record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// The trace request's id.
    pub id: u64,
    /// When the request was due, ns since run start: trace `arrival_ns / time_scale`;
    /// for a session's later turn, the end of its previous turn plus
    /// `think_ns / time_scale`. Lateness is measured against it.
    pub scheduled_ns: u64,
    /// The trace request's session, for a turn of a multi-turn session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<u64>,
    /// The turn's index in its session, from 0.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<u32>,
    /// When the request task set off to send it (after any concurrency wait): the
    /// origin of what a user waits. Connection checkout, any new connection and the
    /// request's encoding come after it (see `connect_ns`, `sent_ns`).
    pub dispatched_ns: Option<u64>,
    /// When this request started a new connection because it found no idle one in the
    /// client's pool; absent when it reused a kept-alive connection. See
    /// `formats/README.md` for the one race in which the request may still have been
    /// sent on an idle connection that freed up meanwhile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_start_ns: Option<u64>,
    /// When that new connection was established (TCP connected and, for `https://`,
    /// the TLS handshake done); absent when the request reused a connection, or its
    /// connection attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_ns: Option<u64>,
    /// When the request's bytes were handed to its connection: the HTTP stack had
    /// written the request head into the connection's buffer and took the body (the
    /// socket write follows in the same step). The origin of what the server took
    /// (`llmib analyze --from sent`). Absent in logs written before it existed, and for
    /// requests that never reached a connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_ns: Option<u64>,
    /// Times the request was resent on another connection because the kept-alive
    /// connection it had taken was closed (by the server, idle) before any byte of the
    /// request was written: the server never saw those attempts. 0 (absent) almost
    /// always; see `replayer/README.md` ("Connections the server closes").
    #[serde(default, skip_serializing_if = "is_zero")]
    pub resends: u32,
    /// When the response status line and headers arrived.
    pub first_byte_ns: Option<u64>,
    /// Streamed events (one entry per answer for non-streamed requests).
    pub events: Events,
    /// When the response ended (complete, failed or cancelled).
    pub end_ns: Option<u64>,
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    /// Error text, bounded to 512 bytes.
    pub error: Option<String>,
    /// Prompt tokens according to the trace.
    pub prompt_tokens: u32,
    /// Output tokens asked for (trace `max_tokens`).
    #[serde(default)]
    pub max_tokens: u32,
    /// Output tokens counted by the client (sum of `events.tokens`).
    pub output_tokens: Option<u32>,
    /// Output tokens the server reported (TGI details, OpenAI usage), when it did.
    pub server_output_tokens: Option<u32>,
    /// Prompt tokens the server reported, when it did.
    #[serde(default)]
    pub server_prompt_tokens: Option<u32>,
    /// Of the prompt tokens, those the server found in its prefix cache, when it reported
    /// them (OpenAI `usage.prompt_tokens_details.cached_tokens`, SGLang
    /// `meta_info.cached_tokens`). Absent otherwise and in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cached_tokens: Option<u32>,
    /// Reasoning models (OpenAI chat streams with `delta.reasoning` or
    /// `delta.reasoning_content`): receive time of the first event carrying reasoning
    /// text. Absent when no reasoning was streamed, and in logs written before it
    /// existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_reasoning_ns: Option<u64>,
    /// Receive time of the first event carrying answer text (`delta.content`, or a
    /// completion's `text`): the end of time to first *answer* token. Recorded by the
    /// dialects that tell answer from reasoning (the OpenAI ones); absent for the others,
    /// for non-streamed answers, for answers that never came (the length limit hit while
    /// reasoning), and in logs written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_answer_ns: Option<u64>,
    /// Output tokens of the reasoning text, counted by the client: the tokens of the
    /// events that carried reasoning (an event carrying both is split by text bytes).
    /// Part of `output_tokens`. Absent when the response had no reasoning text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_tokens: Option<u32>,
    /// Reasoning tokens the server reported (`usage.completion_tokens_details.reasoning_tokens`,
    /// or SGLang's `usage.reasoning_tokens`), when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_reasoning_tokens: Option<u32>,
    /// Tool calls in the answer (chat `tool_calls`, Responses `function_call` items,
    /// Messages `tool_use` blocks). Absent when it made none, and in logs written before
    /// it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<u32>,
    /// How many of the `tool_calls` had arguments that parse as JSON (a call cut by the
    /// length limit, or an unconstrained model, may not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_calls_valid: Option<u32>,
    /// Receive time of the first event carrying a tool call's argument text (streamed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_tool_ns: Option<u64>,
    /// Output tokens of the events that carried tool-call arguments (streamed); part of
    /// `output_tokens`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_tokens: Option<u32>,
    /// How `events.tokens` were counted: `per_event` (one token per event: TGI and
    /// LightLLM streams), `usage_delta` (a cumulative count on every event: OpenAI
    /// continuous usage, SGLang, llama.cpp), `final_usage` (a
    /// server-reported total, split across events by their new text), `assumed_max_tokens`
    /// (no server count, but the answer stopped at the length limit or EOS was ignored:
    /// `max_tokens`, split likewise), `event_count` (one token per event assumed: a lower
    /// bound), `no_output` (the answer shows that nothing was generated: 0), `none`
    /// (nothing to count). See `replayer/README.md`.
    #[serde(default)]
    pub token_count_method: Option<String>,
    /// What the client inferred about this record's count or outcome rather than read
    /// (documented values in `formats/README.md`): `prompt_only`,
    /// `capped_at_max_model_len`, `events_lost`. Empty (and absent) in most records.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub count_flags: Vec<String>,
    /// Finish reason reported by the server (`length`, `eos_token`, `stop`...).
    pub finish_reason: Option<String>,
    /// A warmup request, excluded from metrics by default.
    pub warmup: bool,
    /// Server timing headers (e.g. TGI `x-queue-time`), verbatim.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub server_timing: BTreeMap<String, String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl LogRecord {
    /// A record for a request that was never sent.
    pub fn not_sent(
        id: u64,
        scheduled_ns: u64,
        prompt_tokens: u32,
        max_tokens: u32,
        warmup: bool,
    ) -> Self {
        LogRecord {
            id,
            scheduled_ns,
            session_id: None,
            turn: None,
            dispatched_ns: None,
            connect_start_ns: None,
            connect_ns: None,
            sent_ns: None,
            resends: 0,
            first_byte_ns: None,
            events: Events::default(),
            end_ns: None,
            outcome: Outcome::NotSent,
            http_status: None,
            error: None,
            prompt_tokens,
            max_tokens,
            output_tokens: None,
            server_output_tokens: None,
            server_prompt_tokens: None,
            server_cached_tokens: None,
            first_reasoning_ns: None,
            first_answer_ns: None,
            reasoning_tokens: None,
            server_reasoning_tokens: None,
            tool_calls: None,
            tool_calls_valid: None,
            first_tool_ns: None,
            tool_tokens: None,
            token_count_method: None,
            count_flags: Vec::new(),
            finish_reason: None,
            warmup,
            server_timing: BTreeMap::new(),
        }
    }
}
