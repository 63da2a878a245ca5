//! Column names of the two tables a load builds: `requests` ([`req`], one row per
//! request) and `events` ([`ev`], one row per streamed event). Every reader of the
//! tables (metrics, figures, exports) names columns through these constants.

/// Column names of the requests table.
pub mod req {
    pub const RUN: &str = "run";
    pub const REQUEST_ID: &str = "request_id";
    /// The request's multi-turn session (null for a single-shot request).
    pub const SESSION_ID: &str = "session_id";
    /// The turn's index in its session, from 0 (null for a single-shot request).
    pub const TURN: &str = "turn";
    pub const WARMUP: &str = "warmup";
    pub const OUTCOME: &str = "outcome";
    pub const HTTP_STATUS: &str = "http_status";
    pub const ERROR: &str = "error";
    pub const SCHEDULED_NS: &str = "scheduled_ns";
    pub const DISPATCHED_NS: &str = "dispatched_ns";
    pub const CONNECT_START_NS: &str = "connect_start_ns";
    pub const CONNECT_NS: &str = "connect_ns";
    pub const SENT_NS: &str = "sent_ns";
    pub const FIRST_BYTE_NS: &str = "first_byte_ns";
    pub const FIRST_TOKEN_NS: &str = "first_token_ns";
    pub const END_NS: &str = "end_ns";
    pub const PROMPT_TOKENS: &str = "prompt_tokens";
    pub const MAX_TOKENS: &str = "max_tokens";
    pub const OUTPUT_TOKENS: &str = "output_tokens";
    pub const SERVER_OUTPUT_TOKENS: &str = "server_output_tokens";
    pub const SERVER_PROMPT_TOKENS: &str = "server_prompt_tokens";
    /// Prompt tokens the server found in its prefix cache, when it said.
    pub const SERVER_CACHED_TOKENS: &str = "server_cached_tokens";
    pub const FIRST_REASONING_NS: &str = "first_reasoning_ns";
    pub const FIRST_ANSWER_NS: &str = "first_answer_ns";
    pub const REASONING_TOKENS: &str = "reasoning_tokens";
    pub const SERVER_REASONING_TOKENS: &str = "server_reasoning_tokens";
    pub const TOOL_CALLS: &str = "tool_calls";
    pub const TOOL_CALLS_VALID: &str = "tool_calls_valid";
    pub const FIRST_TOOL_NS: &str = "first_tool_ns";
    pub const TOOL_TOKENS: &str = "tool_tokens";
    pub const TOKEN_COUNT_METHOD: &str = "token_count_method";
    /// The record's `count_flags` joined by `,` (null when it has none).
    pub const COUNT_FLAGS: &str = "count_flags";
    pub const FINISH_REASON: &str = "finish_reason";
    pub const EVENT_OFFSET: &str = "event_offset";
    pub const EVENT_COUNT: &str = "event_count";
}

/// Column names of the events table.
pub mod ev {
    pub const RUN: &str = "run";
    pub const REQUEST_ID: &str = "request_id";
    pub const SEQ: &str = "seq";
    pub const T_NS: &str = "t_ns";
    pub const TOKENS: &str = "tokens";
}
