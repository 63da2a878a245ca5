//! All the integration tests of the crate, in one test binary: one module per subject
//! (issue 22: one binary per crate links once, instead of once per test file).

mod common;
#[path = "../../../formats/tests/all/mutate.rs"]
mod mutate;

mod fuzz_parsers;
mod http_robust;
mod native_data;
mod original_servers;
mod prefix_cache;
mod server_data;
mod server_metrics;
mod sessions;
mod sessions_cache;
mod sim;
mod tls;
