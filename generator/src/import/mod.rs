//! Traces made from other files, one module per source: [`azure`] and [`burstgpt`]
//! (production traces, CSV), [`mooncake`] (JSONL with block hashes, prefix reuse kept by
//! [`block`]), [`sharegpt`] and [`jsonl`] (chat datasets; their common steps in
//! [`dataset`], and with `--sessions` in [`dataset_session`]). What the line-oriented
//! ones share: [`csv`] (one CSV line, by the `csv` crate) and `lines` (the bounded line
//! loop). This module only declares them.

pub mod azure;
pub mod block;
pub mod burstgpt;
pub mod csv;
pub mod dataset;
pub mod dataset_session;
pub mod jsonl;
pub(crate) mod lines;
pub mod mooncake;
pub mod sharegpt;
