//! The run clock: one monotonic start instant, integer nanoseconds since it.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, Copy)]
pub(crate) struct RunClock {
    start: Instant,
    /// Wall-clock time of `start`, ns since the Unix epoch.
    pub started_unix_ns: u64,
}

impl RunClock {
    /// Starts the clock `lead` from now, so the first deadline is not already past when
    /// the dispatcher gets to it.
    pub fn start_in(lead: Duration) -> Self {
        let now = Instant::now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        RunClock {
            start: now + lead,
            started_unix_ns: unix + lead.as_nanos() as u64,
        }
    }

    /// Starts the clock at the wall-clock instant `target_unix_ns`, mapped onto the
    /// monotonic clock now. Returns it and how far ahead the instant was (ns), or, when
    /// the instant is not ahead, the wall-clock time now.
    pub fn start_at_unix(target_unix_ns: u64) -> Result<(Self, u64), u64> {
        let now = Instant::now();
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos() as u64;
        if target_unix_ns <= unix {
            return Err(unix);
        }
        let ahead = target_unix_ns - unix;
        let clock = RunClock {
            start: now + Duration::from_nanos(ahead),
            started_unix_ns: target_unix_ns,
        };
        Ok((clock, ahead))
    }

    /// Nanoseconds since the start instant (0 before it).
    #[inline]
    pub fn now_ns(&self) -> u64 {
        Instant::now()
            .saturating_duration_since(self.start)
            .as_nanos() as u64
    }

    pub fn instant_at(&self, ns: u64) -> Instant {
        self.start + Duration::from_nanos(ns)
    }
}
