//! Traces made from a spec: [`trace`] (spec -> requests -> trace file), [`prefix`]
//! (shared prompt prefixes of a spec), [`sessions`] (the multi-turn sessions of a spec)
//! and [`suite`] (the original benchmark's canonical traces, built from specs). This
//! module only declares them.

pub mod prefix;
pub mod sessions;
pub mod suite;
pub mod trace;
