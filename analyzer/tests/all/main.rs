//! All the integration tests of the crate, in one test binary: one module per subject
//! (issue 22: one binary per crate links once, instead of once per test file).

mod common;
mod count_flags;
mod dilation;
mod from_sent;
mod metrics;
mod outputs;
mod prefix_cache;
mod reasoning;
mod server_metrics;
mod sessions;
mod tables;
mod tool_calls;
