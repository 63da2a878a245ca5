//! What a run's measured requests were: how many, by outcome and by `count_flags`
//! flag, and what the server said about its prefix cache.

use std::collections::BTreeMap;

use crate::metrics::columns::ReqCols;
use crate::metrics::prefix_cache::PrefixCache;

/// Counts over the measured requests (warmup excluded unless asked for).
#[derive(Debug, Default)]
pub(crate) struct Counts {
    pub(crate) requests: u64,
    pub(crate) ok: u64,
    /// Warmup requests left out (counted by the caller, which decides).
    pub(crate) warmup_excluded: u64,
    pub(crate) outcomes: BTreeMap<String, u64>,
    pub(crate) count_flags: BTreeMap<String, u64>,
    pub(crate) prefix_cache: Option<PrefixCache>,
}

impl Counts {
    /// Measured request `i`, any outcome.
    pub(crate) fn observe(&mut self, rc: &ReqCols, i: usize) {
        self.requests += 1;
        self.ok += u64::from(rc.outcome[i] == "ok");
        *self.outcomes.entry(rc.outcome[i].to_string()).or_default() += 1;
        for flag in rc.count_flags[i].into_iter().flat_map(|f| f.split(',')) {
            *self.count_flags.entry(flag.to_string()).or_default() += 1;
        }
        let prompt = rc.server_prompt[i].unwrap_or(rc.prompt[i]);
        PrefixCache::add(&mut self.prefix_cache, rc.server_cached[i], prompt);
    }
}
