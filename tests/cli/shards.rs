//! Sharded replay (`llmib replay --shard I/N --start-at T`), `llmib merge` and the
//! analysis of shard logs as one run, with `llmib sim` as the server: N local processes
//! stand in for N client machines.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{LLMIB, SimProcess};
use formats::LogEnd;

fn llmib(args: &[&str]) -> Output {
    Command::new(LLMIB).args(args).output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn spec(name: &str) -> String {
    format!(
        "{}/benchmark_configs/specs/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Replays shards `0..n` of `trace` as concurrent processes; returns their logs.
fn replay_shards(dir: &Path, trace: &Path, url: &str, n: u32, extra: &[&str]) -> Vec<PathBuf> {
    let children: Vec<_> = (0..n)
        .map(|i| {
            let log = dir.join(format!("shard-{i}.msgpack"));
            let child = Command::new(LLMIB)
                .args(["replay", trace.to_str().unwrap(), "--backend", "openai"])
                .args(["--endpoint", url, "--shard", &format!("{i}/{n}"), "-q"])
                .args(["-o", log.to_str().unwrap()])
                .args(extra)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (log, child)
        })
        .collect();
    children
        .into_iter()
        .map(|(log, child)| {
            ok(&child.wait_with_output().unwrap());
            log
        })
        .collect()
}

/// The ids of every record of `log`, checked to appear once.
fn ids(log: &Path) -> Vec<u64> {
    let run = formats::read_log(log).unwrap();
    run.records.iter().map(|r| r.id).collect()
}

fn report(logs: &[&Path]) -> analyzer::Report {
    let runs = analyzer::load_runs(logs).unwrap();
    analyzer::report(&runs, &analyzer::AnalyzeOptions::default()).unwrap()
}

#[test]
fn four_shards_merge_to_the_unsharded_run() {
    let _timing = common::timing_sensitive();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.msgpack");
    ok(&llmib(&[
        "generate",
        &spec("steady-chat.toml"),
        "--requests",
        "240",
        "--rate",
        "60",
        "-o",
        trace.to_str().unwrap(),
    ]));
    let sim = SimProcess::start("openai", &[]);
    let start = now_ns() + 3_000_000_000;
    let shard_dir = dir.path().join("shards");
    std::fs::create_dir(&shard_dir).unwrap();
    let shards = replay_shards(
        &shard_dir,
        &trace,
        &sim.url,
        4,
        &["--start-at", &start.to_string()],
    );

    // Each shard log: its shard, the shared start instant, its requests alone.
    let mut all = Vec::new();
    for (i, log) in shards.iter().enumerate() {
        let run = formats::read_log(log).unwrap();
        let s = run.header.options.shard.clone().expect("a shard log");
        assert_eq!((s.index, s.count, s.total_requests), (i as u32, 4, 240));
        assert_eq!(s.rule, replayer::SHARD_RULE);
        assert_eq!(run.header.started_unix_ns, start);
        let at = run.header.options.start_at.as_ref().unwrap();
        assert_eq!(at.unix_ns, start);
        assert_eq!(at.clock_source, "realtime-to-monotonic");
        assert_eq!(run.records.len() as u64, s.requests);
        assert_eq!(s.requests, 60, "round-robin: 240 requests, 4 shards");
        assert!(matches!(&run.end, formats::LogEnd::Trailer(t) if t.complete));
        all.extend(run.records.iter().map(|r| r.id));
    }
    all.sort_unstable();
    assert_eq!(all, (0..240).collect::<Vec<u64>>(), "every id exactly once");

    let full = dir.path().join("full.msgpack");
    ok(&llmib(&[
        "replay",
        trace.to_str().unwrap(),
        "--backend",
        "openai",
        "--endpoint",
        &sim.url,
        "-q",
        "-o",
        full.to_str().unwrap(),
    ]));

    let merged = dir.path().join("merged.msgpack");
    let mut args = vec!["merge"];
    args.extend(shards.iter().rev().map(|p| p.to_str().unwrap()));
    args.extend(["-o", merged.to_str().unwrap()]);
    ok(&llmib(&args));
    let m = formats::read_log(&merged).unwrap();
    assert!(matches!(&m.end, formats::LogEnd::Trailer(t) if t.complete && t.record_count == 240));
    assert!(m.header.options.shard.is_none());
    // The clients' CPU: the four shards' summed.
    let LogEnd::Trailer(t) = &m.end else {
        unreachable!()
    };
    let shard_cpu: u64 = shards
        .iter()
        .map(|p| match formats::read_log(p).unwrap().end {
            LogEnd::Trailer(t) => t.client_cpu_ms.unwrap(),
            _ => panic!("a shard without a trailer"),
        })
        .sum();
    assert_eq!(t.client_cpu_ms, Some(shard_cpu));
    assert!(t.client_cores.unwrap() >= 4 && t.client_cpu_bound.is_some());
    let from: Vec<u32> = m
        .header
        .options
        .merged_from
        .iter()
        .map(|s| s.index)
        .collect();
    assert_eq!(from, vec![0, 1, 2, 3]);
    let mut merged_ids = ids(&merged);
    merged_ids.sort_unstable();
    assert_eq!(merged_ids, all);

    // The merged log, the shard logs analysed together and the unsharded run agree.
    let shard_refs: Vec<&Path> = shards.iter().map(PathBuf::as_path).collect();
    let together = report(&shard_refs);
    assert_eq!(together.runs.len(), 1, "the shards are one run");
    let merged_r = report(&[&merged]);
    let full_r = report(&[&full]);
    let (a, b, f) = (
        &together.runs[0].metrics,
        &merged_r.runs[0].metrics,
        &full_r.runs[0].metrics,
    );
    assert_eq!((a.ok, b.ok, f.ok), (240, 240, 240));
    assert_eq!(a.throughput_tok_s, b.throughput_tok_s);
    let (tm, tf) = (b.throughput_tok_s.unwrap(), f.throughput_tok_s.unwrap());
    let (rm, rf) = (b.request_s.unwrap(), f.request_s.unwrap());
    println!("throughput merged {tm:.1} tok/s, unsharded {tf:.1} tok/s; req/s {rm:.2} vs {rf:.2}");
    assert!((tm / tf - 1.0).abs() < 0.05, "throughput {tm} vs {tf}");
    assert!((rm / rf - 1.0).abs() < 0.05, "request rate {rm} vs {rf}");
    let late = b.lateness_s.p99.unwrap();
    println!("merged lateness p99 {:.3} ms", late * 1e3);
    assert!(late < 0.05, "lateness p99 {late} s");

    // A missing shard: named by merge (an error) and by analyze (a warning).
    let out = llmib(&[
        "merge",
        shard_refs[0].to_str().unwrap(),
        shard_refs[2].to_str().unwrap(),
        "-o",
        dir.path().join("partial.msgpack").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("shards 1, 3 of 4 missing (given: 0, 2)"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // The shard set as one side of `llmib compare`: a directory of one run's shard logs
    // is paired request by request with the unsharded run; half a set is refused.
    let out = llmib(&[
        "compare",
        shard_dir.to_str().unwrap(),
        full.to_str().unwrap(),
    ]);
    let table = ok(&out);
    assert!(
        table.contains("(4 shards)") && table.contains("240 pairs"),
        "{table}"
    );
    let half = dir.path().join("half");
    std::fs::create_dir(&half).unwrap();
    for p in [shard_refs[0], shard_refs[2]] {
        std::fs::copy(p, half.join(p.file_name().unwrap())).unwrap();
    }
    let out = llmib(&["compare", half.to_str().unwrap(), full.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("shards 1, 3 of 4 missing"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let lone = analyzer::load_runs(&[shard_refs[1]]).unwrap();
    assert!(
        lone.warnings
            .iter()
            .any(|w| w.contains("shards 0, 2, 3 of 4 missing")),
        "{:?}",
        lone.warnings
    );
    sim.stop();
}

#[test]
fn shards_of_a_session_trace_keep_sessions_whole() {
    let _timing = common::timing_sensitive();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("sessions.msgpack");
    ok(&llmib(&[
        "generate",
        &spec("multi-turn-chat.toml"),
        "--requests",
        "60",
        "-o",
        trace.to_str().unwrap(),
    ]));
    let sim = SimProcess::start("openai", &[]);
    // One run: the shards share a start instant (without it they are three runs).
    let start = (now_ns() + 2_000_000_000).to_string();
    let args = ["--time-scale", "100", "--start-at", &start];
    let shards = replay_shards(dir.path(), &trace, &sim.url, 3, &args);
    let mut all = Vec::new();
    let mut owner = std::collections::HashMap::new();
    let mut ok_records = 0u64;
    for (i, log) in shards.iter().enumerate() {
        let run = formats::read_log(log).unwrap();
        assert!(matches!(&run.end, formats::LogEnd::Trailer(t) if t.complete));
        for r in &run.records {
            all.push(r.id);
            ok_records += u64::from(r.outcome == formats::Outcome::Ok);
            let s = r.session_id.expect("every request is a turn");
            assert_eq!(*owner.entry(s).or_insert(i), i, "session {s} split");
        }
    }
    all.sort_unstable();
    assert_eq!(all, (0..60).collect::<Vec<u64>>(), "every id exactly once");
    let sessions: BTreeSet<usize> = owner.values().copied().collect();
    assert_eq!(sessions.len(), 3, "every shard got sessions");
    let together = report(&shards.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    assert_eq!(together.runs.len(), 1);
    // (The tiny profile's context refuses a few long histories: http_error records.)
    assert_eq!(together.runs[0].metrics.ok, ok_records);
    sim.stop();
}

#[test]
fn a_past_start_instant_or_a_bad_shard_is_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let trace = common::small_trace(dir.path());
    let log = dir.path().join("run.msgpack");
    let base = [
        "replay",
        trace.to_str().unwrap(),
        "--backend",
        "openai",
        "--endpoint",
        "http://127.0.0.1:9",
        "--no-check",
        "-o",
        log.to_str().unwrap(),
    ];
    let cases: [(&[&str], &str); 4] = [
        (
            &["--start-at", "1700000000000000000"],
            "already past at launch",
        ),
        (&["--start-at", "1800000000"], "looks like seconds"),
        (&["--shard", "4/4"], "expected I/N"),
        (&["--shards", "2"], "neither JOB_COMPLETION_INDEX"),
    ];
    for (extra, want) in cases {
        let out = Command::new(LLMIB)
            .args(base)
            .args(extra)
            .env_remove("JOB_COMPLETION_INDEX")
            .env_remove("SLURM_ARRAY_TASK_ID")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{extra:?}: {err}");
        // clap's own usage errors end with a hint line; ours are one line.
        assert_eq!(
            err.trim().lines().next().map(|l| l.contains(want)),
            Some(true)
        );
        assert!(!log.exists());
    }
}

/// `analyze` of a merged log beside its own shards counts every request once (the
/// shards are left out, one warning each), and shard file names that differ inside a
/// multi-byte character (`é` and `è` share their first byte) name the merged run
/// without a panic, in `analyze` and `export` alike.
#[test]
fn a_merged_log_beside_its_shards_counts_once_and_multibyte_names_load() {
    let _timing = common::timing_sensitive();
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("t.msgpack");
    common::write_trace(
        &trace,
        "t",
        40,
        5_000_000,
        "a b c",
        formats::LengthDist::Fixed { value: 2, floor: 1 },
        |_| 2,
    );
    let sim = SimProcess::start("openai", &[]);
    let start = (now_ns() + 2_000_000_000).to_string();
    let shards = replay_shards(dir.path(), &trace, &sim.url, 2, &["--start-at", &start]);
    sim.stop();
    let runs = dir.path().join("runs");
    std::fs::create_dir(&runs).unwrap();
    let named: Vec<PathBuf> = ["run-é.msgpack", "run-è.msgpack"]
        .iter()
        .zip(&shards)
        .map(|(name, shard)| {
            let p = runs.join(name);
            std::fs::copy(shard, &p).unwrap();
            p
        })
        .collect();
    let r = s_(&runs);
    ok(&llmib(&["analyze", r, "-o", s_(&dir.path().join("a1"))]));
    ok(&llmib(&["export", r, "-o", s_(&dir.path().join("e1"))]));
    let shards_only = report(&[&runs]);
    assert_eq!(shards_only.runs.len(), 1);
    assert_eq!(shards_only.runs[0].run, "run");
    assert_eq!(shards_only.runs[0].metrics.requests, 40);

    // The merged log beside its shards: one run of 40 requests, not 80.
    let merged = runs.join("merged.msgpack");
    ok(&llmib(&[
        "merge",
        s_(&named[0]),
        s_(&named[1]),
        "-o",
        s_(&merged),
    ]));
    let out = llmib(&["analyze", r, "-o", s_(&dir.path().join("a2"))]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is a shard of the merged log"), "{err}");
    let both = analyzer::load_runs(&[&runs]).unwrap();
    assert_eq!(both.runs.len(), 1, "{:?}", both.warnings);
    assert_eq!(both.runs[0].path, merged);
    let rep = report(&[&runs]);
    assert_eq!(rep.runs[0].metrics.requests, 40);
    // Named explicitly, too.
    let rep = report(&[&named[0], &merged, &named[1]]);
    assert_eq!(rep.runs.len(), 1);
    assert_eq!(rep.runs[0].metrics.requests, 40);
}

fn s_(p: &Path) -> &str {
    p.to_str().unwrap()
}
