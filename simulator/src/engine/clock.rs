//! The server's clock: ns since the server started, monotonic, and the wall-clock time
//! of that start (every time in the truth log counts from it).

use std::time::Instant;

/// The server's clock: ns since start, monotonic.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    start: Instant,
    /// Wall-clock time of `start`, ns since the Unix epoch (ties truth-log times to a run
    /// log's `started_unix_ns` on the same machine).
    pub started_unix_ns: u64,
}

impl Clock {
    pub fn new() -> Clock {
        let start = Instant::now();
        let started_unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        Clock {
            start,
            started_unix_ns,
        }
    }
    pub fn now_ns(&self) -> u64 {
        self.ns_at(Instant::now())
    }
    pub fn ns_at(&self, t: Instant) -> u64 {
        t.saturating_duration_since(self.start).as_nanos() as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}
