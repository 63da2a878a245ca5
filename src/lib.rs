//! The `llmib` pipelines that tie the crates together: suite files, `llmib run` and
//! `llmib demo`. The command-line parsing itself lives in the `llmib` binary.

pub mod calibrate;
pub mod capacity;
pub mod capacity_dir;
pub mod capacity_settings;
pub mod demo;
pub mod pipeline;
pub mod search;
pub mod suite;
pub mod sweep;
