//! Resends on a fresh connection, seen and recorded.
//!
//! Why: a server may close a kept-alive connection while it sits in the client's idle
//! pool (llama.cpp's `llama-server`, nginx, most gateways close idle connections after
//! a few seconds). A request that takes such a connection either finds it closed before
//! any of its bytes were written, or writes into it just as the server's close arrives.
//! The first case is safe to resend: the server never saw the request. hyper-util's
//! pooled client (inside reqwest) does exactly that, on another connection, and only
//! then (`retry_canceled_requests`, on by default; a request whose bytes were written is
//! never resent, and becomes a `stream_error` "kept-alive connection closed before any
//! answer", see `request.rs`). The resend is right, but invisible: neither reqwest nor
//! hyper-util reports it, yet it moves the request's `sent_ns` and can put a new
//! connection's setup inside its TTFT. A benchmark must say when that happened.
//!
//! How: hyper-util announces every such resend with a `tracing` event at TRACE level,
//! target `hyper_util::client::legacy::client`, message `unstarted request canceled,
//! trying again (reason=...)`, emitted from within the request's own `send()` future.
//! [`ResendWatch`] is a minimal `tracing` subscriber that is interested in those
//! callsites only (every other callsite of every crate is disabled once, at its first
//! use, so it costs one cached check) and counts a matching event on the [`Stamps`] of
//! the request being polled (the task-local of `connect.rs`). The record's `resends`
//! field carries the count.
//!
//! Limits, said plainly: the watch is a process-wide `tracing` subscriber, installed on
//! first use if the process has none; a program that installed its own global
//! subscriber before (the `llmib` CLI does not) gets no counts, and [`install`] says so.
//! It relies on hyper-util's wording of the event (checked against hyper-util 0.1.21;
//! `Cargo.lock` pins the version, and the unit tests here pin the wording we match).

use std::fmt;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, span};

use crate::net::connect::STAMPS;

/// The `tracing` target of hyper-util's pooled client.
const TARGET: &str = "hyper_util::client::legacy::client";
/// How hyper-util's resend event message begins.
const MESSAGE: &str = "unstarted request canceled, trying again";

/// Whether the watch is installed: `None` until [`install`] ran.
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs the watch as the process's global `tracing` subscriber, once. Returns
/// whether resends are observable (false: another global subscriber was set first).
pub(crate) fn install() -> bool {
    *INSTALLED.get_or_init(|| {
        tracing::subscriber::set_global_default(ResendWatch).is_ok()
            || tracing::dispatcher::get_default(|d| d.is::<ResendWatch>())
    })
}

/// The subscriber: hyper-util client events at TRACE level, nothing else.
pub(crate) struct ResendWatch;

fn watched(meta: &Metadata<'_>) -> bool {
    meta.is_event() && *meta.level() == Level::TRACE && meta.target() == TARGET
}

impl tracing::Subscriber for ResendWatch {
    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        if watched(meta) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, meta: &Metadata<'_>) -> bool {
        watched(meta)
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::TRACE)
    }

    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        // Never called: no span callsite is enabled. Ids must be non-zero.
        span::Id::from_u64(1)
    }

    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}

    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut message = MessageStart::default();
        event.record(&mut message);
        if message.matches {
            let _ = STAMPS.try_with(|s| s.count_resend());
        }
    }

    fn enter(&self, _: &span::Id) {}

    fn exit(&self, _: &span::Id) {}
}

/// Checks whether an event's `message` field starts with [`MESSAGE`], formatting at most
/// that many bytes of it (no allocation).
#[derive(Default)]
struct MessageStart {
    matches: bool,
}

impl Visit for MessageStart {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            let mut prefix = Prefix { seen: 0, ok: true };
            let _ = fmt::write(&mut prefix, format_args!("{value:?}"));
            self.matches = prefix.ok && prefix.seen >= MESSAGE.len();
        }
    }
}

/// A `fmt::Write` that compares what is written with [`MESSAGE`] and stops (with an
/// error, which ends the formatting) once it has seen all of it or a difference.
struct Prefix {
    seen: usize,
    ok: bool,
}

impl fmt::Write for Prefix {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let want = &MESSAGE.as_bytes()[self.seen..];
        let n = want.len().min(s.len());
        if s.as_bytes()[..n] != want[..n] {
            self.ok = false;
            return Err(fmt::Error);
        }
        self.seen += n;
        if self.seen == MESSAGE.len() {
            return Err(fmt::Error);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::clock::RunClock;
    use crate::net::connect::{Stamps, timed};

    /// hyper-util's event, as its source emits it (`trace!` with a format string).
    fn hyper_util_event(reason: &str) {
        tracing::trace!(
            target: "hyper_util::client::legacy::client",
            "unstarted request canceled, trying again (reason={:?})",
            reason
        );
    }

    #[tokio::test]
    async fn a_resend_event_is_counted_on_the_request_being_sent() {
        assert!(install(), "no other subscriber in this test binary");
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        let other = Stamps::new(RunClock::start_in(Duration::ZERO));
        timed(stamps.clone(), async {
            hyper_util_event("connection closed");
            hyper_util_event("connection closed");
        })
        .await;
        timed(other.clone(), async {}).await;
        assert_eq!(stamps.resends(), 2);
        assert_eq!(other.resends(), 0);
    }

    #[tokio::test]
    async fn other_events_are_not_counted() {
        assert!(install());
        let stamps = Stamps::new(RunClock::start_in(Duration::ZERO));
        timed(stamps.clone(), async {
            // Same target, other messages (hyper-util emits these on every connect).
            tracing::trace!(target: "hyper_util::client::legacy::client", "connection is ready");
            tracing::trace!(target: "hyper_util::client::legacy::client", "unstarted request");
            // The same words from another target, or at another level.
            tracing::trace!(target: "other", "unstarted request canceled, trying again");
            tracing::debug!(
                target: "hyper_util::client::legacy::client",
                "unstarted request canceled, trying again"
            );
        })
        .await;
        assert_eq!(stamps.resends(), 0);
    }

    #[test]
    fn the_prefix_writer_matches_only_the_message_start() {
        let check = |s: &str| {
            let mut p = Prefix { seen: 0, ok: true };
            let _ = fmt::write(&mut p, format_args!("{s}"));
            p.ok && p.seen == MESSAGE.len()
        };
        assert!(check(
            "unstarted request canceled, trying again (reason=Closed)"
        ));
        assert!(check(MESSAGE));
        assert!(!check("unstarted request canceled"));
        assert!(!check("Unstarted request canceled, trying again"));
        assert!(!check(""));
    }
}
