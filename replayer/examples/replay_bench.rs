//! Replayer benchmarks (not tests): run with
//! `cargo run --release -p llmib-replayer --example replay_bench [quick]`.
//!
//! The simulated server (`null` profile: no compute model) runs in a separate process
//! (this binary re-executed as `replay_bench sim ...`), so client and server do not share a
//! runtime. Measures:
//! 1. dispatch lateness p50/p99/max at 100, 1,000 and 5,000 requests/s;
//! 2. TTFT measurement error at ~1,000 concurrent streams: client TTFT
//!    (`events[0] - dispatched`) minus the simulator's truth TTFT
//!    (`first_token - received`), per request id;
//! 3. token events/s per client CPU-second (client on one runtime worker thread);
//! 4. memory per open stream (RSS growth with ~2,000 streams held open);
//! 5. the lateness of session turns released by their predecessors' completions.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use formats::{
    Arrival, LengthDist, SyntheticSpec, TokenizerInfo, TraceHeader, TraceRequest, TraceSpec,
    TraceWriter, read_log,
};
use replayer::{BackendKind, ReplayConfig, StopHandle, fmt_ns, replay};

fn write_trace(path: &Path, n: u64, rate: f64, max_tokens: u32) {
    let gap = if rate > 0.0 { 1e9 / rate } else { 0.0 };
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "bench".into(),
        seed: 1,
        requests: n,
        prompt_tokens: LengthDist::Fixed {
            value: 16,
            floor: 1,
        },
        output_tokens: LengthDist::Fixed {
            value: max_tokens,
            floor: 1,
        },
        arrival: if rate > 0.0 {
            Arrival::Constant { rate }
        } else {
            Arrival::Burst
        },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let header = TraceHeader::new(
        spec,
        TokenizerInfo {
            kind: "builtin-words".into(),
            name: "bench".into(),
            sha256: None,
        },
        n,
        "bench",
    );
    let mut w = TraceWriter::create(path, &header).unwrap();
    let prompt: Vec<String> = (0..16).map(|i| format!("w{i}")).collect();
    for id in 0..n {
        w.write(&TraceRequest {
            id,
            arrival_ns: (id as f64 * gap) as u64,
            prompt: prompt.join(" "),
            prompt_token_ids: None,
            prompt_tokens: 16,
            max_tokens,
            ignore_eos: true,
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
}

/// Child mode: serve the null profile with the given inter-token interval.
fn serve(inter_token_us: u64, truth: &str, dialect: &str, first_token_us: u64) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let text = format!(
            "name = \"null\"\ndescription = \"bench\"\nmodel = \"m\"\nmax_input_length = 1048576\n\
             max_total_tokens = 2097152\neos_probability = 0.0\n[null]\ninter_token_us = {inter_token_us}\nfirst_token_us = {first_token_us}\n"
        );
        let profile = simulator::Profile::parse(&text, "bench").unwrap();
        let dialect = match dialect {
            "openai" => simulator::Dialect::Openai,
            _ => simulator::Dialect::Tgi,
        };
        let mut cfg = simulator::SimConfig::new(dialect, profile);
        if !truth.is_empty() {
            cfg.truth_log = Some(truth.into());
        }
        let sim = simulator::start(cfg).await.unwrap();
        println!("{}", sim.base_url());
        println!("{}", sim.started_unix_ns());
        std::io::stdout().flush().unwrap();
        // Serve until stdin closes (the parent exits or says so).
        let _ = tokio::task::spawn_blocking(|| {
            let mut s = String::new();
            let _ = std::io::stdin().read_line(&mut s);
        })
        .await;
        sim.shutdown().await.unwrap();
    });
}

/// How the simulator child serves (null profile).
struct SimArgs<'a> {
    inter_token_us: u64,
    first_token_us: u64,
    truth: &'a Path,
    dialect: &'a str,
}

struct Sim {
    child: std::process::Child,
    url: String,
    /// The simulator clock's wall-clock anchor (see `SimServer::started_unix_ns`).
    started_unix_ns: u64,
}

impl Sim {
    fn start(inter_token_us: u64, truth: &Path) -> Sim {
        Sim::start_dialect(inter_token_us, truth, "tgi")
    }

    fn start_dialect(inter_token_us: u64, truth: &Path, dialect: &str) -> Sim {
        Sim::start_with(SimArgs {
            inter_token_us,
            first_token_us: inter_token_us,
            truth,
            dialect,
        })
    }

    fn start_with(a: SimArgs<'_>) -> Sim {
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new(exe)
            .args([
                "sim",
                &a.inter_token_us.to_string(),
                a.truth.to_str().unwrap(),
                a.dialect,
                &a.first_token_us.to_string(),
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let (mut url, mut anchor) = (String::new(), String::new());
        out.read_line(&mut url).unwrap();
        out.read_line(&mut anchor).unwrap();
        Sim {
            child,
            url: url.trim().to_string(),
            started_unix_ns: anchor.trim().parse().unwrap(),
        }
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn pct(v: &mut [i64], q: f64) -> i64 {
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("sim") {
        serve(
            args[2].parse().unwrap(),
            args.get(3).map_or("", |s| s.as_str()),
            args.get(4).map_or("tgi", |s| s.as_str()),
            args[5].parse().unwrap(),
        );
        return;
    }
    let quick = args.iter().any(|a| a == "quick");
    let chosen: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| *a != "quick")
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let b = Bench {
        quick,
        secs: if quick { 2.0 } else { 5.0 },
        trace: dir.path().join("t.msgpack"),
        out: dir.path().join("run.msgpack"),
        truth: dir.path().join("truth.jsonl"),
        rt: tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap(),
    };
    let sections: [Section; 8] = [
        ("bulk", bulk_streaming),
        ("short", short_requests),
        ("lateness", lateness),
        ("ttft", ttft_error),
        ("events", events_one_thread),
        ("memory", memory_per_stream),
        ("sessions", sessions),
        ("capacity", client_capacity),
    ];
    for (name, f) in sections {
        if chosen.is_empty() || chosen.contains(&name) {
            f(&b);
        }
    }
}

/// A named part of the benchmark.
type Section = (&'static str, fn(&Bench));

/// What every section shares.
struct Bench {
    quick: bool,
    secs: f64,
    trace: std::path::PathBuf,
    out: std::path::PathBuf,
    truth: std::path::PathBuf,
    rt: tokio::runtime::Runtime,
}

/// Replays a burst of `n` OpenAI chat requests of `tokens` tokens each at concurrency 100
/// against a fresh simulator (as fast as it can) into `b.out`.
fn chat_burst(b: &Bench, n: u64, tokens: u32) -> replayer::ReplaySummary {
    let sim = Sim::start_dialect(0, Path::new(""), "openai");
    write_trace(&b.trace, n, 0.0, tokens);
    let mut cfg = ReplayConfig::new(BackendKind::OpenaiChat, sim.url.clone(), b.out.clone());
    cfg.overwrite = true;
    cfg.concurrency = Some(100);
    let s =
        b.rt.block_on(replay(&b.trace, cfg, StopHandle::new()))
            .unwrap();
    sim.stop();
    s
}

/// Bulk streaming, OpenAI chat (the heaviest per-event JSON): 400 requests x 1,000
/// tokens, concurrency 100, the server as fast as it can; client CPU per streamed event.
fn bulk_streaming(b: &Bench) {
    let (n, tokens) = if b.quick { (100, 1000) } else { (400, 1000) };
    println!("## bulk streaming (openai-chat, {n} requests x {tokens} tokens, concurrency 100)");
    println!("| run | events | wall | client cpu | cpu per event | output tokens per cpu-second |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for run in 1..=3 {
        let s = chat_burst(b, n, tokens);
        let log = read_log(&b.out).unwrap();
        let events: usize = log.records.iter().map(|r| r.events.len()).sum();
        let tokens_out: u64 = log
            .records
            .iter()
            .filter_map(|r| r.output_tokens)
            .map(u64::from)
            .sum();
        let cpu = s.cpu_time.as_secs_f64();
        println!(
            "| {run} | {events} | {:.2} s | {cpu:.2} s | {:.2} us | {:.0} |{}",
            s.wall.as_secs_f64(),
            cpu * 1e6 / events.max(1) as f64,
            tokens_out as f64 / cpu.max(1e-9),
            if s.count(formats::Outcome::Ok) == n {
                ""
            } else {
                " (errors!)"
            }
        );
    }
}

/// Many short requests, the server as fast as it can: 20,000 requests of 4 tokens,
/// concurrency 100, OpenAI chat streamed; client CPU per request (everything: dispatch,
/// HTTP, decoding, record, log).
fn short_requests(b: &Bench) {
    let n = if b.quick { 5_000 } else { 20_000 };
    println!("\n## many short requests (openai-chat, {n} requests x 4 tokens, concurrency 100)");
    println!("| run | wall | requests/s | client cpu | cpu per request |");
    println!("| --- | --- | --- | --- | --- |");
    for run in 1..=3 {
        let s = chat_burst(b, n, 4);
        let cpu = s.cpu_time.as_secs_f64();
        println!(
            "| {run} | {:.2} s | {:.0} | {cpu:.2} s | {:.1} us |{}",
            s.wall.as_secs_f64(),
            n as f64 / s.wall.as_secs_f64(),
            cpu * 1e6 / n as f64,
            if s.count(formats::Outcome::Ok) == n {
                ""
            } else {
                " (errors!)"
            }
        );
    }
}

/// Dispatch lateness at 100, 1,000 and 5,000 req/s.
fn lateness(b: &Bench) {
    let (secs, trace, out, rt) = (b.secs, &b.trace, &b.out, &b.rt);
    println!("## dispatch lateness (null profile, 4 tokens per request, streamed)");
    println!(
        "| rate (req/s) | requests | p50 | p99 | max | dispatcher alone p99 / max | client cpu | cpu per request |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for rate in [100.0, 1000.0, 5000.0] {
        let sim = Sim::start(0, Path::new(""));
        let n = (rate * secs) as u64;
        write_trace(trace, n, rate, 4);
        let mut cfg = ReplayConfig::new(BackendKind::Tgi, sim.url.clone(), out.clone());
        cfg.overwrite = true;
        let s = rt.block_on(replay(trace, cfg, StopHandle::new())).unwrap();
        sim.stop();
        println!(
            "| {rate} | {n} | {} | {} | {} | {} / {} | {:.0}% | {:.1} us |{}",
            fmt_ns(s.lateness_p50_ns),
            fmt_ns(s.lateness_p99_ns),
            fmt_ns(s.lateness_max_ns),
            fmt_ns(s.handoff_p99_ns),
            fmt_ns(s.handoff_max_ns),
            100.0 * s.cpu_time.as_secs_f64() / s.wall.as_secs_f64(),
            s.cpu_time.as_secs_f64() * 1e6 / n as f64,
            if s.count(formats::Outcome::Ok) == n {
                ""
            } else {
                " (errors!)"
            }
        );
    }
}

/// Think times of the sessions section, by (session + turn) mod 5.
const THINK_NS: [u64; 5] = [0, 2_000_000, 5_000_000, 10_000_000, 20_000_000];

/// A session trace: `n` sessions of `turns` turns (16-word prompts, 4 tokens), starting
/// `1/rate` s apart; each later turn thinks `THINK_NS` after its previous turn.
fn write_session_trace(path: &Path, n: u64, rate: f64, turns: u32) {
    let mut order: Vec<(u64, u64, u32)> = Vec::new();
    for s in 0..n {
        let mut arrival = (s as f64 * 1e9 / rate) as u64;
        for k in 0..turns {
            if k > 0 {
                arrival += THINK_NS[(s as usize + k as usize) % THINK_NS.len()];
            }
            order.push((arrival, s, k));
        }
    }
    order.sort_unstable();
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "bench-sessions".into(),
        seed: 1,
        requests: order.len() as u64,
        prompt_tokens: LengthDist::Fixed {
            value: 16,
            floor: 1,
        },
        output_tokens: LengthDist::Fixed { value: 4, floor: 1 },
        arrival: Arrival::Constant { rate },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let tokenizer = TokenizerInfo {
        kind: "builtin-words".into(),
        name: "bench".into(),
        sha256: None,
    };
    let header = TraceHeader::new(spec, tokenizer, order.len() as u64, "bench").with_sessions();
    let mut w = TraceWriter::create(path, &header).unwrap();
    let prompt: Vec<String> = (0..16).map(|i| format!("w{i}")).collect();
    for (id, (arrival_ns, s, k)) in order.into_iter().enumerate() {
        w.write(&TraceRequest {
            id: id as u64,
            arrival_ns,
            prompt: prompt.join(" "),
            prompt_tokens: 16,
            max_tokens: 4,
            ignore_eos: true,
            session_id: Some(s),
            turn: Some(k),
            think_ns: (k > 0).then(|| THINK_NS[(s as usize + k as usize) % THINK_NS.len()]),
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap();
}

/// Session turns released by completions (issue 12): sessions of 10 turns start at 20
/// and 200 sessions/s (about 180 and 1,800 requests/s), each later turn due 0-20 ms
/// after its previous turn ends. Lateness (`dispatched - scheduled`, no concurrency cap)
/// of the open-loop first turns and of the released turns, whose due time the
/// dispatcher learns from the completion that releases them.
fn sessions(b: &Bench) {
    println!(
        "\n## session turns released by completions (null profile, 10 turns per session, think 0-20 ms, 4 tokens, streamed)"
    );
    println!(
        "| sessions/s | requests | first turns p50 / p99 | released turns p50 / p99 / max | of which think 0 p50 / p99 | think > 0 p50 / p99 | dispatcher alone p99 / max | client cpu |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for rate in [20.0, 200.0] {
        let sim = Sim::start(0, Path::new(""));
        let n = (rate * b.secs) as u64;
        write_session_trace(&b.trace, n, rate, 10);
        let mut cfg = ReplayConfig::new(BackendKind::Tgi, sim.url.clone(), b.out.clone());
        cfg.overwrite = true;
        let s =
            b.rt.block_on(replay(&b.trace, cfg, StopHandle::new()))
                .unwrap();
        sim.stop();
        let log = read_log(&b.out).unwrap();
        let (mut first, mut later, mut at_end, mut thought) = (vec![], vec![], vec![], vec![]);
        for r in &log.records {
            let late = r.dispatched_ns.unwrap_or(r.scheduled_ns) as i64 - r.scheduled_ns as i64;
            let (s, k) = (r.session_id.unwrap(), r.turn.unwrap());
            if k == 0 {
                first.push(late);
                continue;
            }
            later.push(late);
            // Think 0: due the instant the previous turn ended, so the release's own
            // path (channel, dispatcher wake-up, task start) is all late.
            if THINK_NS[(s as usize + k as usize) % THINK_NS.len()] == 0 {
                at_end.push(late);
            } else {
                thought.push(late);
            }
        }
        let ns = |v: i64| fmt_ns(v.max(0) as u64);
        println!(
            "| {rate} | {} | {} / {} | {} / {} / {} | {} / {} | {} / {} | {} / {} | {:.0}% |{}",
            log.records.len(),
            ns(pct(&mut first, 0.5)),
            ns(pct(&mut first, 0.99)),
            ns(pct(&mut later, 0.5)),
            ns(pct(&mut later, 0.99)),
            ns(pct(&mut later, 1.0)),
            ns(pct(&mut at_end, 0.5)),
            ns(pct(&mut at_end, 0.99)),
            ns(pct(&mut thought, 0.5)),
            ns(pct(&mut thought, 0.99)),
            fmt_ns(s.handoff_p99_ns),
            fmt_ns(s.handoff_max_ns),
            100.0 * s.cpu_time.as_secs_f64() / s.wall.as_secs_f64(),
            if s.count(formats::Outcome::Ok) == log.records.len() as u64 {
                ""
            } else {
                " (errors!)"
            }
        );
    }
}

/// TTFT error at 1,000 concurrent streams, as issue 10 measures it: 2,000 requests,
/// concurrency 1,000, 64 tokens each after a 50 ms TTFT, 10 ms or 50 ms apart; OpenAI
/// chat. Error = client TTFT (first event - dispatch) - the simulator's truth TTFT (first
/// token written - request received), paired by request id. Each case runs without and
/// with the connection warm-up; the second table splits the error on the two processes'
/// clocks (aligned through their wall-clock anchors, same machine): dispatch to request
/// written (`sent_ns`), written to received by the server, first token written to seen
/// by the client.
fn ttft_error(b: &Bench) {
    println!(
        "\n## TTFT error at 1,000 concurrent streams (2,000 requests, concurrency 1,000, 64 tokens, TTFT 50 ms, openai-chat)"
    );
    println!(
        "| token gap | warm-up | ok | client cpu | error mean / p50 / p99 / max | first 1,000 mean / p99 | last 1,000 mean / p99 | gap error p50 / p99 | lateness p99 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let mut parts = Vec::new();
    for gap_us in [10_000, 50_000] {
        for warm in [false, true] {
            parts.push((gap_us, warm, ttft_case(b, gap_us, warm)));
        }
    }
    println!(
        "\n| token gap | warm-up | dispatch to sent mean / p99 | sent to server mean / p99 | server first token to client mean / p99 | requests that opened a connection |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    for (gap_us, warm, mut p) in parts {
        println!(
            "| {} ms | {} | {} | {} | {} | {} |",
            gap_us / 1000,
            if warm { "yes" } else { "no" },
            mean_p99(&mut p.to_sent),
            mean_p99(&mut p.to_server),
            mean_p99(&mut p.delivery),
            p.connects,
        );
    }
}

/// Where one case's TTFT error lies, per request (ns).
#[derive(Default)]
struct ErrorParts {
    to_sent: Vec<i64>,
    to_server: Vec<i64>,
    delivery: Vec<i64>,
    connects: usize,
}

fn ttft_case(b: &Bench, gap_us: u64, warm: bool) -> ErrorParts {
    let n = if b.quick { 1000 } else { 2000 };
    let _ = std::fs::remove_file(&b.truth);
    let sim = Sim::start_with(SimArgs {
        inter_token_us: gap_us,
        first_token_us: 50_000,
        truth: &b.truth,
        dialect: "openai",
    });
    write_trace(&b.trace, n, 0.0, 64);
    let mut cfg = ReplayConfig::new(BackendKind::OpenaiChat, sim.url.clone(), b.out.clone());
    cfg.overwrite = true;
    cfg.concurrency = Some(1000);
    cfg.connections = if warm { None } else { Some(0) };
    let s =
        b.rt.block_on(replay(&b.trace, cfg, StopHandle::new()))
            .unwrap();
    let sim_start = sim.started_unix_ns;
    sim.stop();
    let log = read_log(&b.out).unwrap();
    // Sim time + offset = run-clock time.
    let offset = sim_start as i64 - log.header.started_unix_ns as i64;
    let truth: HashMap<u64, simulator::truth::TruthRecord> =
        simulator::truth::read_truth_log(&b.truth)
            .unwrap()
            .into_iter()
            .filter_map(|t| Some((t.request_id.as_ref()?.parse().ok()?, t)))
            .collect();
    let (mut all, mut first, mut last, mut gaps) = (vec![], vec![], vec![], vec![]);
    let mut parts = ErrorParts::default();
    for r in &log.records {
        let (Some(t), Some(d)) = (truth.get(&r.id), r.dispatched_ns) else {
            continue;
        };
        let (Some(ft), Some(&fe)) = (t.first_token_ns, r.events.t_ns.first()) else {
            continue;
        };
        let e = (fe - d) as i64 - (ft - t.received_ns) as i64;
        all.push(e);
        if r.id < n / 2 {
            first.push(e)
        } else {
            last.push(e)
        }
        for i in 1..r.events.t_ns.len().min(t.token_ns.len()) {
            let c = (r.events.t_ns[i] - r.events.t_ns[i - 1]) as i64;
            let s = (t.token_ns[i] - t.token_ns[i - 1]) as i64;
            gaps.push(c - s);
        }
        let sent = r.sent_ns.unwrap_or(d) as i64;
        parts.to_sent.push(sent - d as i64);
        parts.to_server.push(t.received_ns as i64 + offset - sent);
        parts.delivery.push(fe as i64 - (ft as i64 + offset));
        parts.connects += usize::from(r.connect_ns.is_some());
    }
    println!(
        "| {} ms | {} | {} / {} | {:.2} s | {} | {} | {} | {} / {} | {} |",
        gap_us / 1000,
        if warm {
            format!("{} connections", s.connections.warm.opened)
        } else {
            "no".into()
        },
        s.count(formats::Outcome::Ok),
        log.records.len(),
        s.cpu_time.as_secs_f64(),
        spread(&mut all),
        mean_p99(&mut first),
        mean_p99(&mut last),
        signed(pct(&mut gaps, 0.5)),
        signed(pct(&mut gaps, 0.99)),
        fmt_ns(s.lateness_p99_ns),
    );
    parts
}

fn signed(v: i64) -> String {
    if v < 0 {
        format!("-{}", fmt_ns(v.unsigned_abs()))
    } else {
        fmt_ns(v as u64)
    }
}

fn mean(v: &[i64]) -> i64 {
    if v.is_empty() {
        0
    } else {
        v.iter().sum::<i64>() / v.len() as i64
    }
}

/// `mean / p50 / p99 / max` of signed nanoseconds.
fn spread(v: &mut [i64]) -> String {
    format!(
        "{} / {} / {} / {}",
        signed(mean(v)),
        signed(pct(v, 0.5)),
        signed(pct(v, 0.99)),
        signed(pct(v, 1.0))
    )
}

fn mean_p99(v: &mut [i64]) -> String {
    format!("{} / {}", signed(mean(v)), signed(pct(v, 0.99)))
}

/// Events/s on one runtime worker thread.
fn events_one_thread(b: &Bench) {
    let (quick, trace, out) = (b.quick, &b.trace, &b.out);
    {
        let sim = Sim::start(0, Path::new(""));
        let n = if quick { 100 } else { 200 };
        write_trace(trace, n, 0.0, 5000);
        let one = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut cfg = ReplayConfig::new(BackendKind::Tgi, sim.url.clone(), out.clone());
        cfg.overwrite = true;
        let s = one.block_on(replay(trace, cfg, StopHandle::new())).unwrap();
        sim.stop();
        let log = read_log(out).unwrap();
        let events: usize = log.records.iter().map(|r| r.events.len()).sum();
        println!("\n## token events on one runtime thread ({n} streams x 5,000 tokens, burst)");
        println!(
            "{events} events in {:.2} s wall = {:.0} events/s; client cpu {:.2} s = {:.0} events per cpu-second",
            s.wall.as_secs_f64(),
            events as f64 / s.wall.as_secs_f64(),
            s.cpu_time.as_secs_f64(),
            events as f64 / s.cpu_time.as_secs_f64().max(1e-9),
        );
    }
}

/// Memory per open stream: 2,000 streams, 1 token/s, held ~3 s.
fn memory_per_stream(b: &Bench) {
    let (trace, out, rt) = (&b.trace, &b.out, &b.rt);
    {
        let sim = Sim::start(1_000_000, Path::new(""));
        let n = 2000;
        write_trace(trace, n, 0.0, 4);
        let base = rss_kb();
        let peak = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(base));
        let p2 = peak.clone();
        let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let d2 = done.clone();
        let sampler = std::thread::spawn(move || {
            while !d2.load(std::sync::atomic::Ordering::Relaxed) {
                p2.fetch_max(rss_kb(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        let mut cfg = ReplayConfig::new(BackendKind::Tgi, sim.url.clone(), out.clone());
        cfg.overwrite = true;
        let s = rt.block_on(replay(trace, cfg, StopHandle::new())).unwrap();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        sampler.join().unwrap();
        sim.stop();
        let grown = peak
            .load(std::sync::atomic::Ordering::Relaxed)
            .saturating_sub(base);
        println!(
            "\n## memory per open stream ({n} streams open at once, {} ok)",
            s.count(formats::Outcome::Ok)
        );
        println!(
            "RSS growth {grown} KB = {:.1} KB per open stream",
            grown as f64 / n as f64
        );
    }
}

/// What one client sustains with dispatch lateness p99 <= 1 ms (the basis of the shard
/// counts in the README's *Sharded replay*): short requests (4 tokens, the server as
/// fast as it can) at rising rates, then long streams (100 tokens 20 ms apart, ~2 s
/// each) at rising rates, so that more streams are open at once. Open streams: the mean
/// over the run (Little's law: the summed request durations over the run's span).
fn client_capacity(b: &Bench) {
    println!(
        "\n## one client's capacity (TGI streamed, constant arrivals, {} s per run)",
        b.secs
    );
    println!(
        "| kind | rate (req/s) | mean open streams | run | lateness p50 | p99 | max | client cpu |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    let kinds: [(&str, u64, u32, [f64; 4]); 2] = [
        ("short", 0, 4, [500.0, 1000.0, 2000.0, 4000.0]),
        ("streams", 20_000, 100, [100.0, 250.0, 500.0, 1000.0]),
    ];
    for (kind, itl_us, tokens, rates) in kinds {
        for rate in rates {
            for run in 1..=3 {
                let sim = Sim::start(itl_us, Path::new(""));
                let n = (rate * b.secs) as u64;
                write_trace(&b.trace, n, rate, tokens);
                let mut cfg = ReplayConfig::new(BackendKind::Tgi, sim.url.clone(), b.out.clone());
                cfg.overwrite = true;
                let s =
                    b.rt.block_on(replay(&b.trace, cfg, StopHandle::new()))
                        .unwrap();
                sim.stop();
                println!(
                    "| {kind} | {rate} | {:.0} | {run} | {} | {} | {} | {:.0}% |{}",
                    mean_open(&b.out),
                    fmt_ns(s.lateness_p50_ns),
                    fmt_ns(s.lateness_p99_ns),
                    fmt_ns(s.lateness_max_ns),
                    100.0 * s.cpu_time.as_secs_f64() / s.wall.as_secs_f64(),
                    if s.count(formats::Outcome::Ok) == n {
                        ""
                    } else {
                        " (errors!)"
                    }
                );
            }
        }
    }
}

/// Mean requests in flight over a run: summed durations / span (Little's law).
fn mean_open(log: &Path) -> f64 {
    let log = read_log(log).unwrap();
    let spans: Vec<(u64, u64)> = log
        .records
        .iter()
        .filter_map(|r| Some((r.dispatched_ns?, r.end_ns?)))
        .collect();
    let busy: u64 = spans.iter().map(|(a, b)| b - a).sum();
    let first = spans.iter().map(|s| s.0).min().unwrap_or(0);
    let last = spans.iter().map(|s| s.1).max().unwrap_or(1);
    busy as f64 / (last - first).max(1) as f64
}
