//! Issue 12, must hold: multi-turn sessions against the simulator (chat dialect), read
//! back from the run log. Closed loop inside a session: turn k+1 is due at turn k's
//! `end_ns` plus its think time (scaled) and is never dispatched or sent before, with
//! and without a concurrency cap and at another time scale; a failed turn does not stop
//! its session; a turn that is not sent takes the rest of its session with it, and every
//! trace request still ends as exactly one record.

use crate::common;

use std::path::Path;

use common::sessions::{
    Session, SessionRun, Turn, by_id, by_turn, check_closed_loop, replay_sessions, words,
    write_session_trace,
};
use formats::{Outcome, TraceRequest};
use replayer::ReplayConfig;
use simulator::{Dialect, Faults, Profile, SimConfig};

const MS: u64 = 1_000_000;

/// `n` sessions of `turns` turns, starting `gap_ns` apart, with think times of 0 to
/// 25 ms in a pattern that differs between sessions and turns.
fn varied_sessions(n: usize, turns: usize, gap_ns: u64) -> Vec<Session> {
    const THINK: [u64; 5] = [0, MS, 7 * MS, 25 * MS, 3 * MS];
    (0..n)
        .map(|s| Session {
            start_ns: s as u64 * gap_ns,
            turns: (0..turns)
                .map(|k| Turn {
                    user: words(&format!("s{s}u{k}w"), 12),
                    answer: words(&format!("s{s}a{k}w"), 20),
                    think_ns: THINK[(3 * s + k) % THINK.len()],
                    max_tokens: 8,
                })
                .collect(),
        })
        .collect()
}

fn tiny() -> SimConfig {
    SimConfig::new(Dialect::Openai, Profile::builtin("tiny").unwrap())
}

async fn run(
    dir: &Path,
    name: &str,
    sessions: &[Session],
    sim: SimConfig,
    tweak: impl FnOnce(&mut ReplayConfig),
) -> (Vec<TraceRequest>, SessionRun) {
    let trace = dir.join(format!("{name}.msgpack"));
    let reqs = write_session_trace(&trace, sessions);
    let run = replay_sessions(dir, name, &trace, sim, tweak).await;
    (reqs, run)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn later_turns_are_due_at_the_previous_end_plus_think() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = varied_sessions(10, 4, 8 * MS);
    for (name, concurrency, scale) in [
        ("open", None, 1.0),
        ("capped", Some(2), 1.0),
        ("scaled", Some(3), 2.0),
    ] {
        let (reqs, run) = run(dir.path(), name, &sessions, tiny(), |c| {
            c.concurrency = concurrency;
            c.time_scale = scale;
        })
        .await;
        assert!(run.complete, "{name}");
        for r in &run.records {
            assert_eq!(r.outcome, Outcome::Ok, "{name}: {r:?}");
            assert!(r.sent_ns.is_some(), "{name}: {r:?}");
        }
        // 10 sessions x 3 later turns.
        assert_eq!(check_closed_loop(&reqs, &run.records, scale), 30, "{name}");
        if let Some(c) = concurrency {
            // The cap held: never more than `c` requests between dispatch and end.
            let mut edges: Vec<(u64, i32)> = run
                .records
                .iter()
                .flat_map(|r| [(r.dispatched_ns.unwrap(), 1), (r.end_ns.unwrap(), -1)])
                .collect();
            edges.sort_by_key(|&(t, d)| (t, d));
            let peak = edges
                .iter()
                .scan(0, |n, &(_, d)| {
                    *n += d;
                    Some(*n)
                })
                .max();
            assert!(peak <= Some(c as i32), "{name}: {peak:?} in flight");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_turn_does_not_stop_its_session() {
    let dir = tempfile::tempdir().unwrap();
    let sessions = varied_sessions(12, 4, 5 * MS);
    let mut sim = tiny();
    sim.seed = 3;
    sim.faults = Faults {
        http_500: 0.3,
        disconnect: 0.2,
        ..Faults::default()
    };
    let (reqs, run) = run(dir.path(), "faults", &sessions, sim, |_| {}).await;
    assert!(run.complete);
    check_closed_loop(&reqs, &run.records, 1.0);
    let turns = by_turn(&run.records.iter().collect::<Vec<_>>());
    let mut failed_then_sent = [0, 0];
    for (&(s, k), r) in &turns {
        assert_ne!(r.outcome, Outcome::NotSent, "session {s} turn {k}");
        let Some(next) = turns.get(&(s, k + 1)) else {
            continue;
        };
        let i = match r.outcome {
            Outcome::HttpError => 0,
            Outcome::StreamError => 1,
            _ => continue,
        };
        assert!(next.dispatched_ns.unwrap() >= r.end_ns.unwrap());
        failed_then_sent[i] += 1;
    }
    eprintln!("failed turns followed by their next turn: {failed_then_sent:?}");
    // 36 turns with a successor, half of them failing: some of each kind.
    assert!(
        failed_then_sent.iter().all(|&n| n > 0),
        "http_error / stream_error turns followed by their next turn: {failed_then_sent:?}"
    );
}

/// A session's later turns after a turn that was not sent are not sent either: the run
/// stops (`--duration`) while a released turn waits out its think time, and before a
/// session's first turn arrives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_turn_not_sent_the_rest_of_the_session_is_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let turn = |s: usize, k: usize, think_ns: u64| Turn {
        user: words(&format!("s{s}u{k}w"), 6),
        answer: words(&format!("s{s}a{k}w"), 6),
        think_ns,
        max_tokens: 4,
    };
    let sessions = vec![
        // Turns 0 and 1 run; turn 2 is released but due 5 s after turn 1 ends.
        Session {
            start_ns: 0,
            turns: vec![
                turn(0, 0, 0),
                turn(0, 1, 0),
                turn(0, 2, 5_000 * MS),
                turn(0, 3, 0),
            ],
        },
        // Arrives after the end of the run.
        Session {
            start_ns: 3_000 * MS,
            turns: vec![turn(1, 0, 0), turn(1, 1, 0), turn(1, 2, 0)],
        },
    ];
    let (reqs, run) = run(dir.path(), "duration", &sessions, tiny(), |c| {
        c.duration = Some(std::time::Duration::from_secs(1));
    })
    .await;
    assert!(!run.complete);
    check_closed_loop(&reqs, &run.records, 1.0);
    let ids = by_id(&reqs, &run.records);
    let turns = by_turn(&run.records.iter().collect::<Vec<_>>());
    let outcome = |s: u64, k: u32| turns[&(s, k)].outcome;
    assert_eq!(outcome(0, 0), Outcome::Ok);
    assert_eq!(outcome(0, 1), Outcome::Ok);
    for (s, k) in [(0, 2), (0, 3), (1, 0), (1, 1), (1, 2)] {
        assert_eq!(outcome(s, k), Outcome::NotSent, "session {s} turn {k}");
    }
    // The released turn keeps its due time; the turn never released, its trace bound.
    let due = turns[&(0, 1)].end_ns.unwrap() + 5_000 * MS;
    assert_eq!(turns[&(0, 2)].scheduled_ns, due);
    let last = reqs
        .iter()
        .find(|q| q.session_id == Some(0) && q.turn == Some(3));
    assert_eq!(ids[&last.unwrap().id].scheduled_ns, 5_000 * MS);
    assert_eq!(run.summary.count(Outcome::NotSent), 5);
}

/// Stopped while a session's first turn waits for the only concurrency slot: that turn
/// and the rest of its session are not sent; the turn holding the slot finishes in the
/// grace period and its own next turn is not sent either.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_stopped_in_the_slot_queue_takes_its_session_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let turn = |s: usize, k: usize, max_tokens: u32| Turn {
        user: words(&format!("s{s}u{k}w"), 6),
        answer: words(&format!("s{s}a{k}w"), 6),
        think_ns: 0,
        max_tokens,
    };
    // Session 0's first turn decodes 600 tokens (~0.3 s in `tiny`): session 1's first
    // turn, due 1 ms later, waits for the slot when the run stops at 100 ms.
    let sessions = vec![
        Session {
            start_ns: 0,
            turns: vec![turn(0, 0, 600), turn(0, 1, 4)],
        },
        Session {
            start_ns: MS,
            turns: vec![turn(1, 0, 4), turn(1, 1, 4), turn(1, 2, 4)],
        },
    ];
    let (reqs, run) = run(dir.path(), "slot", &sessions, tiny(), |c| {
        c.concurrency = Some(1);
        c.duration = Some(std::time::Duration::from_millis(100));
    })
    .await;
    assert!(!run.complete);
    check_closed_loop(&reqs, &run.records, 1.0);
    let turns = by_turn(&run.records.iter().collect::<Vec<_>>());
    assert_eq!(turns[&(0, 0)].outcome, Outcome::Ok);
    for (s, k) in [(0, 1), (1, 0), (1, 1), (1, 2)] {
        assert_eq!(
            turns[&(s, k)].outcome,
            Outcome::NotSent,
            "session {s} turn {k}"
        );
    }
    assert_eq!(
        turns[&(1, 0)].error.as_deref(),
        Some("stopped while waiting for a concurrency slot")
    );
}
