//! All the integration tests of the crate, in one test binary: one module per subject
//! (issue 22: one binary per crate links once, instead of once per test file).

mod calibration;
mod common;
mod engine_model;
mod lifecycle;
mod metrics;
mod prefix_cache;
mod prefix_wire;
mod reasoning;
mod truth_faults;
mod wire;
mod wire_native;
mod wire_original;
mod wire_typed;
