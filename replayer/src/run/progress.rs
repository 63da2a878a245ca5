//! The progress bar (stderr, only on a terminal): sent, done, errors, in flight,
//! tokens/s and lateness p99, read from the live counters five times a second. Apart
//! from the run so that display code stays out of its phases.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::run::stats::{LiveStats, fmt_ns};

/// Draws until `finished` is cancelled.
pub(crate) fn spawn_progress(
    total: u64,
    live: Arc<LiveStats>,
    finished: CancellationToken,
) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::with_draw_target(
        Some(total),
        indicatif::ProgressDrawTarget::stderr_with_hz(5),
    );
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{elapsed_precise} [{bar:28}] {pos}/{len} {msg}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let b = bar.clone();
    tokio::spawn(async move {
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(200));
        loop {
            tokio::select! {
                _ = finished.cancelled() => break,
                _ = tick.tick() => {}
            }
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            let done = live.done.load(Ordering::Relaxed);
            b.set_position(done);
            b.set_message(format!(
                "sent {} done {} err {} in-flight {} | {:.0} tok/s | late p99 {}",
                live.sent.load(Ordering::Relaxed),
                done,
                live.errors.load(Ordering::Relaxed),
                live.in_flight.load(Ordering::Relaxed),
                live.tokens.load(Ordering::Relaxed) as f64 / secs,
                live.lateness_quantile(0.99).map_or("-".into(), fmt_ns),
            ));
        }
    });
    bar
}
