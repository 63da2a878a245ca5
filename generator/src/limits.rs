//! The generator's guards against typos: the largest prompt and the most requests it
//! accepts, shared by spec validation, sessions and every importer (a leaf, so that
//! none of them has to reach into another for a number).

/// Longest prompt the generator accepts, in tokens (a guard against typos that would
/// write gigabytes).
pub const MAX_PROMPT_TOKENS: u32 = 1 << 20;
/// Most requests in one trace.
pub const MAX_REQUESTS: u64 = 100_000_000;
