//! The server's prefix cache as its records reported it (`server_cached_tokens`),
//! summed over a run (the run metrics) or over one turn index (the session metrics).

use serde::Serialize;

/// Prefix cache use as the server reported it (`server_cached_tokens`).
#[derive(Debug, Clone, Default, Serialize)]
pub struct PrefixCache {
    /// Measured requests that reported their cached prompt tokens.
    pub requests: u64,
    /// Their prompt tokens (the server's count when it gave one, else the trace's).
    pub prompt_tokens: u64,
    /// Of those, the tokens found in the cache.
    pub cached_tokens: u64,
    /// `cached_tokens / prompt_tokens` (null when that is 0 / 0).
    pub hit_rate: Option<f64>,
}

impl PrefixCache {
    pub(crate) fn add(acc: &mut Option<PrefixCache>, cached: Option<u32>, prompt: u32) {
        let Some(cached) = cached else { return };
        let p = acc.get_or_insert_with(PrefixCache::default);
        p.requests += 1;
        p.prompt_tokens += prompt as u64;
        p.cached_tokens += cached as u64;
        p.hit_rate = (p.prompt_tokens > 0).then(|| p.cached_tokens as f64 / p.prompt_tokens as f64);
    }
}
