//! The caller's side of interruption: a handle whose two tokens the run derives its own
//! stop and abort from (see [`crate::run`]), apart so the run does not depend on the
//! crate root.

use tokio_util::sync::CancellationToken;

/// How a caller stops a replay. `stop()` (first Ctrl-C) stops dispatching: requests not
/// yet sent are logged `not_sent`, in-flight ones get the grace period
/// ([`crate::ReplayConfig::grace`]) and are then `cancelled`. `abort()` (second Ctrl-C) cancels
/// in-flight requests at once. The log is completed with its trailer either way.
#[derive(Debug, Clone, Default)]
pub struct StopHandle {
    pub(crate) stop: CancellationToken,
    pub(crate) abort: CancellationToken,
}

impl StopHandle {
    pub fn new() -> Self {
        StopHandle::default()
    }

    pub fn stop(&self) {
        self.stop.cancel();
    }

    pub fn abort(&self) {
        self.stop.cancel();
        self.abort.cancel();
    }

    pub fn is_stopped(&self) -> bool {
        self.stop.is_cancelled()
    }
}

impl From<CancellationToken> for StopHandle {
    /// Cancelling the token stops the replay (with the grace period).
    fn from(stop: CancellationToken) -> Self {
        StopHandle {
            stop,
            abort: CancellationToken::new(),
        }
    }
}
