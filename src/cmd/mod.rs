//! One module per subcommand: flags and wiring only; the work is in the library crates.

pub mod analyze;
pub mod demo;
pub mod export;
pub mod generate;
pub mod import;
pub mod replay;
pub mod run;
pub mod sim;
pub mod trace;
