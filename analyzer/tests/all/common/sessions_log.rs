//! A hand-built multi-turn session log whose per-turn and per-session numbers can be
//! worked out by hand (see [`records`]). A child of `common`, used by the analyzer's and the
//! CLI's session tests.
#![allow(dead_code)]

use formats::LogRecord;

use super::*;

/// A turn: session `s`, turn `t`, scheduled at `sched` s, dispatched `late` s later,
/// first token `ttft` s after dispatch, end 0.4 s after the first token; prompt tokens
/// `prompt`, cached tokens `cached` (when the server reported them).
#[allow(clippy::too_many_arguments)]
fn turn(
    id: u64,
    s: u64,
    t: u32,
    sched: f64,
    late: f64,
    ttft: f64,
    prompt: u32,
    cached: Option<u32>,
) -> LogRecord {
    let ns = |x: f64| (x * 1e9).round() as u64;
    let d = sched + late;
    let first = d + ttft;
    let end = first + 0.4;
    let events = [(ns(first), 1), (ns(end), 1)];
    let mut r = ok(id, ns(sched), ns(d), &events, ns(end), prompt, 2);
    r.session_id = Some(s);
    r.turn = Some(t);
    r.server_cached_tokens = cached;
    r
}

/// Three sessions, a single-shot request and a warmup turn:
/// * session 0, complete, turns 0-2 scheduled at 0, 1.5, 3.0 s with TTFT 0.1, 0.4, 0.3 s
///   (E2E = TTFT + 0.4); cached 0 of 100, 150 of 200, not reported; duration 0 to 3.7 s;
/// * session 1, incomplete: turn 0 scheduled at 1.0 s, dispatched 0.1 s late, TTFT 0.3
///   s (0.4 s from scheduled); turn 1 an HTTP 503;
/// * session 2, complete, ten turns: turn k scheduled at 10 + 2k s, TTFT 0.1 (k + 1) s;
///   turn 1 cached 50 of 100; duration 10 to 28 + 1.0 + 0.4 = 29.4 s;
/// * request 90, no session; request 91, a warmup turn of session 7.
///
/// By turn (from dispatch): turn 0 TTFT {0.1, 0.3, 0.1}, turn 1 {0.4, 0.2} of 3
/// requests, turn 2 {0.3, 0.3}, turns 3-7 session 2 alone, `8+` {0.9, 1.0}; cached share
/// turn 0 = 0, turn 1 = 200 / 300, others null.
pub fn records() -> Vec<LogRecord> {
    let mut v = vec![
        turn(0, 0, 0, 0.0, 0.0, 0.1, 100, Some(0)),
        turn(1, 0, 1, 1.5, 0.0, 0.4, 200, Some(150)),
        turn(2, 0, 2, 3.0, 0.0, 0.3, 300, None),
        turn(3, 1, 0, 1.0, 0.1, 0.3, 100, None),
    ];
    v.push(failed(4, 3 * S, 3 * S, 3 * S + 100 * MS, 503));
    v[4].session_id = Some(1);
    v[4].turn = Some(1);
    for k in 0..10u32 {
        let cached = (k == 1).then_some(50);
        let sched = 10.0 + 2.0 * k as f64;
        let ttft = 0.1 * (k + 1) as f64;
        v.push(turn(10 + k as u64, 2, k, sched, 0.0, ttft, 100, cached));
    }
    v.push(ok(90, 5 * S, 5 * S, &[(5 * S + 50 * MS, 1)], 6 * S, 10, 1));
    let mut warm = turn(91, 7, 0, 0.0, 0.0, 5.0, 100, Some(100));
    warm.warmup = true;
    v.push(warm);
    v
}

/// Writes the session log into `dir` as `file` (openai, a Poisson trace at 1 QPS).
pub fn write(dir: &std::path::Path, file: &str) -> std::path::PathBuf {
    let h = latency_header("openai", "chat", "c1", 1.0);
    write_log(&dir.join(file), &h, &records())
}
