//! A run clock started at a wall-clock instant fixed in advance (`--start-at`), so the
//! shards of one run, on several hosts, share one start.
//!
//! All run times are measured on the monotonic clock, which no time daemon steps; the
//! shared instant is a wall-clock (`CLOCK_REALTIME`) time. The replayer waits on the
//! wall clock (in steps of at most a second, so a clock step while waiting is followed)
//! until shortly before the instant, then maps the instant once onto the monotonic
//! clock ([`MAP_AHEAD`] before it) and runs on that: a wall-clock step during the run
//! cannot move its times. Connections are warmed up in the last [`WARM_LEAD`] before
//! the instant, so that they are not idle for longer than the pool keeps them.
//!
//! How far the instants of two hosts agree is as good as their clocks' synchronisation,
//! which the kernel reports (`adjtimex(2)`): recorded in the log header ([`clock_sync`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use formats::{ClockSync, StartAtInfo};

use crate::clock::RunClock;
use crate::error::ReplayError;
use crate::run::stats::fmt_ns;

/// The connection warm-up and the simulator probe start this long before the instant.
pub(crate) const WARM_LEAD: Duration = Duration::from_secs(3);

/// The instant is mapped onto the monotonic clock this long before it.
pub(crate) const MAP_AHEAD: Duration = Duration::from_millis(50);

/// Clock source recorded in the header (see the module docs).
pub(crate) const CLOCK_SOURCE: &str = "realtime-to-monotonic";

/// Now on the wall clock, ns since the Unix epoch.
pub(crate) fn now_unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos() as u64
}

/// The one-line error of an instant that is already past.
fn past(target: u64, now: u64, when: &str) -> ReplayError {
    ReplayError::Config(format!(
        "--start-at {target}: the instant was already past {when} (by {}); give a later one",
        fmt_ns(now.saturating_sub(target))
    ))
}

/// Farthest ahead an instant may be: a shared start is minutes or hours away; days
/// more is a mistake (a unit wrong by a factor of 1,000, a typo), refused rather than
/// waited on.
pub const MAX_AHEAD: Duration = Duration::from_secs(7 * 24 * 3600);

/// Fails when `target` is not in the future, or is more than [`MAX_AHEAD`] away.
pub(crate) fn check_future(target: u64, when: &str) -> Result<(), ReplayError> {
    let now = now_unix_ns();
    if target <= now {
        return Err(past(target, now, when));
    }
    let ahead = Duration::from_nanos(target - now);
    if ahead > MAX_AHEAD {
        return Err(ReplayError::Config(format!(
            "--start-at {target}: the instant is too far ahead ({:.1} days from now, more \
             than {} days); give one within the limit (ns since the epoch, or +SECONDS)",
            ahead.as_secs_f64() / 86_400.0,
            MAX_AHEAD.as_secs() / 86_400
        )));
    }
    Ok(())
}

/// The error of a stop (SIGINT, SIGTERM) that came while waiting for the instant:
/// nothing was sent and no log written.
pub(crate) fn interrupted(target: u64) -> ReplayError {
    ReplayError::Interrupted(format!(
        "stopped while waiting for --start-at {target} ({} ahead): nothing was sent, no run \
         log written",
        fmt_ns(target.saturating_sub(now_unix_ns()))
    ))
}

/// Sleeps until `lead` before `target` on the wall clock (returns at once if that is
/// past already).
pub(crate) async fn wait_until_before(target: u64, lead: Duration) {
    let goal = target.saturating_sub(lead.as_nanos() as u64);
    loop {
        let now = now_unix_ns();
        if now >= goal {
            return;
        }
        let step = Duration::from_nanos(goal - now).min(Duration::from_secs(1));
        tokio::time::sleep(step).await;
    }
}

/// The run clock starting at `target` (wall clock), mapped now; the instant must still
/// be ahead.
pub(crate) fn clock_at(target: u64) -> Result<(RunClock, StartAtInfo), ReplayError> {
    let sync = clock_sync();
    let (clock, ahead) = RunClock::start_at_unix(target)
        .map_err(|now| past(target, now, "when the clock started"))?;
    let info = StartAtInfo {
        unix_ns: target,
        clock_source: CLOCK_SOURCE.to_string(),
        mapped_ahead_ns: ahead,
        sync,
    };
    Ok((clock, info))
}

/// The kernel's view of the wall clock's synchronisation (`adjtimex` in read-only
/// mode); `None` where it cannot be read.
#[cfg(target_os = "linux")]
pub(crate) fn clock_sync() -> Option<ClockSync> {
    // SAFETY: adjtimex with `modes = 0` only reads the kernel's state into a zeroed
    // local struct.
    unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        let state = libc::adjtimex(&mut tx);
        if state < 0 {
            return None;
        }
        Some(ClockSync {
            synchronized: state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0,
            max_error_us: tx.maxerror as i64,
            est_error_us: tx.esterror as i64,
        })
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) fn clock_sync() -> Option<ClockSync> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_past_instant_is_refused_in_one_line() {
        let e = check_future(1, "at launch").unwrap_err().to_string();
        assert!(e.contains("already past at launch"), "{e}");
        assert!(!e.contains('\n'));
        assert!(clock_at(now_unix_ns() - 1).is_err());
    }

    #[test]
    fn an_instant_too_far_ahead_is_named_so() {
        let far = now_unix_ns() + MAX_AHEAD.as_nanos() as u64 + 60_000_000_000;
        let e = check_future(far, "at launch").unwrap_err().to_string();
        assert!(e.contains("too far ahead"), "{e}");
        assert!(!e.contains("past"), "{e}");
        check_future(now_unix_ns() + 3_600_000_000_000, "at launch").unwrap();
    }

    #[test]
    fn the_clock_starts_at_the_instant() {
        let target = now_unix_ns() + 200_000_000;
        let (clock, info) = clock_at(target).unwrap();
        assert_eq!(clock.started_unix_ns, target);
        assert_eq!(info.unix_ns, target);
        assert!(info.mapped_ahead_ns > 0 && info.mapped_ahead_ns <= 200_000_000);
        // Before the instant the run clock reads 0.
        assert_eq!(clock.now_ns(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_sync_state_is_readable_on_linux() {
        let s = clock_sync().expect("adjtimex reads without privileges");
        assert!(s.max_error_us >= 0 && s.est_error_us >= 0);
    }
}
