//! What a load returns: every run's identity ([`RunInfo`]) and the two tables that
//! hold their records ([`Runs`]). The types every later layer reads, apart from the
//! code that fills them.

use std::ops::Range;
use std::path::{Path, PathBuf};

use formats::{LogEnd, LogHeader};
use polars::prelude::DataFrame;

/// One loaded run log.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// Position in [`Runs::runs`]; the `run` column of both tables.
    pub index: u32,
    /// Short unique name: the log's file stem (suffixed `-2`, `-3`... on clashes).
    pub id: String,
    pub path: PathBuf,
    pub header: LogHeader,
    pub end: LogEnd,
    /// Factor every time of the run was multiplied by when loaded: the simulator's
    /// speed-up `K` (`backend.simulated.speedup`), 1 for any other run.
    pub dilation: f64,
    /// Rows of this run in the requests table.
    pub requests: Range<usize>,
    /// Rows of this run in the events table.
    pub events: Range<usize>,
}

impl RunInfo {
    /// True when the log has a verified trailer saying the run ended normally.
    pub fn complete(&self) -> bool {
        matches!(&self.end, LogEnd::Trailer(t) if t.complete)
    }
}

/// Every loaded run and its two tables.
#[derive(Debug, Clone)]
pub struct Runs {
    pub runs: Vec<RunInfo>,
    /// One row per request of every run (columns in [`req`](crate::load::columns::req)).
    pub requests: DataFrame,
    /// One row per streamed event of every run (columns in [`ev`](crate::load::columns::ev)).
    pub events: DataFrame,
    /// Things the user must know (interrupted logs, skipped files), one line each.
    pub warnings: Vec<String>,
}

impl Runs {
    /// The run named `id` (its [`RunInfo::id`]).
    pub fn find(&self, id: &str) -> Option<&RunInfo> {
        self.runs.iter().find(|r| r.id == id)
    }

    /// The files the runs were loaded from.
    pub fn log_paths(&self) -> impl Iterator<Item = &Path> {
        self.runs.iter().map(|r| r.path.as_path())
    }
}
