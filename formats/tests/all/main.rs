//! All the integration tests of the crate, in one test binary: one module per subject
//! (issue 22: one binary per crate links once, instead of once per test file).

mod fuzz_readers;
mod integrity;
mod mutate;
