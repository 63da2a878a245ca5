//! All the integration tests of the crate, in one test binary: one module per subject
//! (issue 22: one binary per crate links once, instead of once per test file).

#[path = "../../../formats/tests/all/mutate.rs"]
mod mutate;

mod fuzz_inputs;
mod mooncake;
mod prefix;
mod sessions;
mod tokenizer;
