//! Tool calls: what the `ok` requests' answers said about them (records carry
//! `tool_calls`, `tool_calls_valid`, `first_tool_ns`, `tool_tokens`; see
//! `formats/README.md`), and the time to the first argument token, which is an agent's
//! TTFT when the answer is a call.

use serde::Serialize;

use crate::metrics::columns::ReqCols;
use crate::metrics::origins::Origins;
use crate::metrics::time::secs;

/// The tool calls of a run's `ok` requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolCallTotals {
    /// `ok` requests whose answer made at least one tool call.
    pub requests: u64,
    /// Tool calls, over those requests.
    pub calls: u64,
    /// Calls whose arguments parsed as JSON.
    pub valid: u64,
    /// Calls whose arguments did not (`calls - valid`).
    pub invalid: u64,
    /// Output tokens of the events that carried arguments (streamed).
    pub tokens: u64,
}

/// What the `ok` requests of a run said about tool calls, as they are counted.
#[derive(Debug, Default)]
pub(crate) struct ToolCalls {
    /// Time to first argument token, from dispatch, s.
    pub(crate) first_tool: Vec<f64>,
    pub(crate) totals: ToolCallTotals,
}

impl ToolCalls {
    /// Request `i`, `ok`; `o` its origins when it was dispatched.
    pub(crate) fn observe(&mut self, rc: &ReqCols, i: usize, o: Option<Origins>) {
        let Some(calls) = rc.tool_calls[i].filter(|c| *c > 0) else {
            return;
        };
        let t = &mut self.totals;
        let valid = rc.tool_calls_valid[i].unwrap_or(0).min(calls);
        t.requests += 1;
        t.calls += calls as u64;
        t.valid += valid as u64;
        t.invalid += (calls - valid) as u64;
        t.tokens += rc.tool_tokens[i].unwrap_or(0) as u64;
        if let (Some(o), Some(first)) = (o, rc.first_tool[i]) {
            self.first_tool.push(secs(
                first,
                o.of(crate::metrics::options::LatencyFrom::Dispatch),
            ));
        }
    }
}
