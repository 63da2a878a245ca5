//! Output and prompt token counts of a run's `ok` requests, under the chosen output
//! count (`--output-tokens`), and the requests that stopped early or ran over.

use serde::Serialize;

use crate::metrics::columns::ReqCols;
use crate::metrics::options::TokenSource;

/// Token totals of a run's successful requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TokenTotals {
    /// Prompt tokens (the trace's count) of the `ok` requests.
    pub prompt: u64,
    /// Output tokens counted by the client.
    pub output_client: u64,
    /// Output tokens reported by the server, over the requests where it reported any.
    pub output_server: u64,
    /// `ok` requests with a server-reported count.
    pub server_reported: u64,
    /// Output tokens asked for (`max_tokens`).
    pub output_requested: u64,
    /// Output tokens under the chosen source (`output_tokens_source`).
    pub output_used: u64,
    /// With `--output-tokens server`: requests that fell back to the client count.
    pub server_fallbacks: u64,
}

/// Tokens of the `ok` requests as they are counted, and the early stops and over-length
/// outputs among them.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    pub(crate) totals: TokenTotals,
    /// `ok` requests whose output was shorter than asked.
    pub(crate) early_stops: u64,
    /// `ok` requests whose output was longer than asked.
    pub(crate) over_length: u64,
}

impl Tokens {
    /// Request `i`, `ok`: adds its counts; returns its output tokens under `source`.
    pub(crate) fn observe(&mut self, rc: &ReqCols, i: usize, source: TokenSource) -> u64 {
        let tokens = &mut self.totals;
        let client = rc.client[i].unwrap_or(0) as u64;
        let requested = rc.max_tokens[i] as u64;
        let server = rc.server[i];
        tokens.prompt += rc.prompt[i] as u64;
        tokens.output_client += client;
        tokens.output_requested += requested;
        if let Some(s) = server {
            tokens.output_server += s as u64;
            tokens.server_reported += 1;
        }
        let used = match source {
            TokenSource::Client => client,
            TokenSource::Requested => requested,
            TokenSource::Server => match server {
                Some(s) => s as u64,
                None => {
                    tokens.server_fallbacks += 1;
                    client
                }
            },
        };
        tokens.output_used += used;
        // Early stop: the count actually produced (server's when chosen) vs asked.
        let produced = match (source, server) {
            (TokenSource::Server, Some(s)) => s as u64,
            _ => client,
        };
        if requested > 0 && produced < requested {
            self.early_stops += 1;
        } else if requested > 0 && produced > requested {
            self.over_length += 1;
        }
        used
    }
}
