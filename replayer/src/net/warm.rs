//! Connection warm-up before the clock starts (`--connections N`).
//!
//! Why: without it the first requests of a burst each open a connection at once, and
//! the TCP handshakes (and the server's accept queue) land inside their TTFT. Issue 10
//! measured it on the project's machine: 108 ms mean TTFT error over the first 1,000
//! requests of a burst, 7 ms over the next 1,000 on kept-alive connections.
//!
//! How: N concurrent cheap `GET`s (`/health`, or `/v1/models` for the OpenAI
//! dialects), each answer held until all have answered, so that no request can reuse
//! another's connection and N distinct ones are open; then every answer is read to its
//! end, which returns its connection to the client's idle pool (sized for them, see
//! `http.rs`). The requests happen before the clock starts: they are in no record and
//! no statistic.

use std::time::Duration;

use formats::WarmConnections;
use futures_util::future::join_all;
use reqwest::header::{CONNECTION, HeaderMap};

use crate::net::conn_count::ConnCount;

/// Bound of the default count (an explicit `--connections` is bounded only by the
/// open-file limit).
pub(crate) const MAX_DEFAULT: u32 = 1024;
/// Open files kept free of connections (the log, the trace, the runtime's own).
pub(crate) const FD_RESERVE: u64 = 64;
/// Longest the warm-up may take (the per-request timeout when that is shorter).
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

/// How many connections to open, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Goal {
    pub count: u32,
    pub basis: &'static str,
    /// The wanted count was lowered (by [`MAX_DEFAULT`] or the open-file limit).
    pub bounded: bool,
}

/// The warm-up's size: `asked` (`--connections`; 0 disables it), else the
/// concurrency cap, else the trace's peak per second; bounded by [`MAX_DEFAULT`]
/// (defaults only) and by the open-file limit less [`FD_RESERVE`].
pub(crate) fn goal(
    asked: Option<u32>,
    concurrency: Option<u32>,
    scheduled_ns: &[u64],
    fd_limit: Option<u64>,
) -> Goal {
    let room = fd_limit.map_or(u64::MAX, |l| l.saturating_sub(FD_RESERVE));
    let default_cap = room.min(MAX_DEFAULT as u64);
    let (want, basis, cap) = match (asked, concurrency) {
        (Some(0), _) => (0, "disabled", 0),
        (Some(n), _) => (n as u64, "flag", room),
        (None, Some(c)) => (
            (c as u64).min(scheduled_ns.len() as u64),
            "concurrency",
            default_cap,
        ),
        (None, None) => (peak_per_second(scheduled_ns), "trace_peak", default_cap),
    };
    let count = want.min(cap);
    Goal {
        count: count as u32,
        basis,
        bounded: count < want,
    }
}

/// The most requests due within any one second: how many could be in flight at once
/// if each took up to a second.
pub(crate) fn peak_per_second(scheduled_ns: &[u64]) -> u64 {
    let sorted;
    let s = if scheduled_ns.is_sorted() {
        scheduled_ns
    } else {
        sorted = {
            let mut v = scheduled_ns.to_vec();
            v.sort_unstable();
            v
        };
        &sorted
    };
    let (mut first, mut peak) = (0, 0);
    for (last, &t) in s.iter().enumerate() {
        while t - s[first] >= 1_000_000_000 {
            first += 1;
        }
        peak = peak.max(last + 1 - first);
    }
    peak as u64
}

/// Opens `goal.count` connections with concurrent `GET url`s and leaves them idle in
/// the client's pool, which must be empty: each request then starts a connect of its
/// own, held at the counter's gate until all have started (see `conn_count.rs`), and
/// every one of those connects is waited for. Returns what was done and, when fewer
/// connections than asked are open, why.
pub(crate) async fn warm_up(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &HeaderMap,
    goal: Goal,
    count: &ConnCount,
    limit: Duration,
) -> (WarmConnections, Option<String>) {
    let mut warm = WarmConnections {
        requested: goal.count,
        basis: goal.basis.to_string(),
        bounded: goal.bounded,
        opened: 0,
        elapsed_ns: 0,
    };
    if goal.count == 0 {
        return (warm, None);
    }
    let (before, started) = (count.opened(), std::time::Instant::now());
    let deadline = tokio::time::Instant::now() + limit;
    // No connect may open before all have started: no request can reuse another's.
    count.close_gate_for(goal.count as u64);
    let sends = (0..goal.count).map(|_| get(client, url, headers, deadline));
    let answers = join_all(sends).await;
    count.open_gate();
    let mut failure = None;
    let mut closed = 0;
    for answer in answers {
        match answer {
            Ok(true) => {}
            Ok(false) => closed += 1,
            Err(why) => {
                failure.get_or_insert(why);
            }
        }
    }
    // Connects whose request got an answer on another connection first go on in the
    // background and join the pool: wait for those too.
    if tokio::time::timeout_at(deadline, count.settled())
        .await
        .is_err()
    {
        failure.get_or_insert_with(|| "connects still pending at the time limit".into());
    }
    warm.opened = count.opened().saturating_sub(before) as u32;
    warm.elapsed_ns = started.elapsed().as_nanos() as u64;
    (warm.clone(), note(&warm, closed, failure))
}

/// One warm-up request, its answer read to the end (so its connection goes back to
/// the pool): whether the server keeps the connection open, or why it failed.
async fn get(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &HeaderMap,
    deadline: tokio::time::Instant,
) -> Result<bool, String> {
    let exchange = async {
        let resp = client
            .get(url.clone())
            .headers(headers.clone())
            .send()
            .await?;
        let kept = keeps_alive(&resp);
        Ok::<Option<bool>, reqwest::Error>(drain_bounded(resp).await?.then_some(kept))
    };
    match tokio::time::timeout_at(deadline, exchange).await {
        Ok(Ok(Some(kept))) => Ok(kept),
        Ok(Ok(None)) => Err(format!(
            "the probe's answer is longer than {} KiB",
            MAX_PROBE_BODY >> 10
        )),
        Ok(Err(e)) => Err(crate::net::transport_error::describe(&e)),
        Err(_) => Err("no answer in time".into()),
    }
}

/// Most bytes of a warm-up answer read (a model list or a health answer is a few KB):
/// a longer one is dropped with its connection rather than read on.
const MAX_PROBE_BODY: usize = 1 << 20;

/// Reads an answer to its end, discarding it; false when it is longer than
/// [`MAX_PROBE_BODY`] (reading stopped there).
pub(crate) async fn drain_bounded(mut resp: reqwest::Response) -> Result<bool, reqwest::Error> {
    let mut read = 0;
    while let Some(chunk) = resp.chunk().await? {
        read += chunk.len();
        if read > MAX_PROBE_BODY {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The warning for a warm-up that left fewer connections than asked, if it did.
fn note(warm: &WarmConnections, closed: u32, failure: Option<String>) -> Option<String> {
    let why = match (failure, closed) {
        (Some(why), _) => why,
        (None, 0) if warm.opened >= warm.requested => return None,
        (None, 0) => "fewer connects than requests".into(),
        (None, n) => format!("the server closed {n} connections after answering"),
    };
    Some(format!(
        "connection warm-up: {} of {} connections open before the clock started ({why}); \
         the first requests may open connections during the run",
        warm.opened.min(warm.requested).saturating_sub(closed),
        warm.requested
    ))
}

/// The connection stays open after this answer (HTTP/1.1 without `Connection: close`).
pub(crate) fn keeps_alive(resp: &reqwest::Response) -> bool {
    let close = resp.headers().get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    });
    resp.version() == reqwest::Version::HTTP_11 && !close
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use crate::config::{BackendKind, ReplayConfig};
    use crate::net::test_server::raw_server;

    const S: u64 = 1_000_000_000;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_warm_up_opens_as_many_connections_as_asked() {
        let (url, mut seen, accepted) = raw_server(0).await;
        let count = ConnCount::default();
        let config = ReplayConfig::new(BackendKind::Tgi, url.as_str(), "unused".into());
        let client = crate::net::http::build_client(
            &config,
            &crate::net::tls::plain(),
            16,
            (&count, &std::sync::Arc::default()),
        )
        .unwrap();
        let probe = reqwest::Url::parse(&format!("{url}/health")).unwrap();
        let goal = goal(Some(12), None, &[], None);
        let (warm, note) = warm_up(&client, &probe, &HeaderMap::new(), goal, &count, LIMIT).await;
        assert_eq!(note, None);
        assert_eq!(
            (warm.requested, warm.opened, warm.basis.as_str()),
            (12, 12, "flag")
        );
        assert_eq!(accepted.load(Ordering::SeqCst), 12);
        assert!(warm.elapsed_ns > 0);
        for _ in 0..12 {
            assert!(
                seen.recv()
                    .await
                    .unwrap()
                    .starts_with(b"GET /health HTTP/1.1\r\n")
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_warm_up_against_nothing_says_why_it_fell_short() {
        // A port that was free a moment ago: nothing listens there.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let count = ConnCount::default();
        let config = ReplayConfig::new(BackendKind::Tgi, url.as_str(), "unused".into());
        let client = crate::net::http::build_client(
            &config,
            &crate::net::tls::plain(),
            4,
            (&count, &std::sync::Arc::default()),
        )
        .unwrap();
        let probe = reqwest::Url::parse(&format!("{url}/health")).unwrap();
        let goal = goal(None, Some(3), &[0; 5], None);
        let (warm, note) = warm_up(&client, &probe, &HeaderMap::new(), goal, &count, LIMIT).await;
        assert_eq!((warm.requested, warm.opened), (3, 0));
        let note = note.expect("a warning");
        assert!(
            note.starts_with("connection warm-up: 0 of 3 connections"),
            "{note}"
        );
        assert!(note.contains("connect"), "{note}");
        assert!(!note.contains('\n'));
    }

    #[test]
    fn peak_per_second_counts_the_busiest_second() {
        assert_eq!(peak_per_second(&[]), 0);
        assert_eq!(peak_per_second(&[5]), 1);
        // A burst of 3 at 0, then one per second: the window [0, 1 s) holds 3.
        assert_eq!(peak_per_second(&[0, 0, 0, S, 2 * S, 3 * S]), 3);
        // A window is half-open: requests exactly 1 s apart never share one.
        assert_eq!(peak_per_second(&[0, S, 2 * S]), 1);
        // 10 requests spread over 0.9 s, late in the trace.
        let late: Vec<u64> = (0..10).map(|i| 7 * S + i * S / 10).collect();
        assert_eq!(
            peak_per_second(
                &[0, S, 2 * S]
                    .iter()
                    .copied()
                    .chain(late)
                    .collect::<Vec<_>>()
            ),
            10
        );
        // Out of order (not a valid trace, but no wrong answer either).
        assert_eq!(peak_per_second(&[3 * S, 0, S / 2, S / 3]), 3);
    }

    #[test]
    fn the_default_follows_the_cap_else_the_trace_peak_and_is_bounded() {
        let burst = vec![0u64; 5000];
        let g = goal(None, Some(100), &burst, Some(1 << 20));
        assert_eq!((g.count, g.basis, g.bounded), (100, "concurrency", false));
        // A cap above the request count: no more connections than requests.
        let g = goal(None, Some(100), &burst[..7], None);
        assert_eq!((g.count, g.basis, g.bounded), (7, "concurrency", false));
        let g = goal(None, None, &burst, Some(1 << 20));
        assert_eq!(
            (g.count, g.basis, g.bounded),
            (MAX_DEFAULT, "trace_peak", true)
        );
        let g = goal(None, None, &[0, S, 2 * S], None);
        assert_eq!((g.count, g.basis, g.bounded), (1, "trace_peak", false));
        // The open-file limit bounds every count, an explicit one too.
        let g = goal(None, Some(800), &burst, Some(FD_RESERVE + 300));
        assert_eq!((g.count, g.bounded), (300, true));
        let g = goal(Some(4000), None, &burst, Some(1 << 20));
        assert_eq!((g.count, g.basis, g.bounded), (4000, "flag", false));
        let g = goal(Some(4000), None, &burst, Some(FD_RESERVE + 10));
        assert_eq!((g.count, g.bounded), (10, true));
        let g = goal(Some(0), Some(100), &burst, None);
        assert_eq!((g.count, g.basis, g.bounded), (0, "disabled", false));
    }
}
