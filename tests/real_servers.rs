//! The project's own check against real servers no one here wrote: vLLM 0.32 (CPU build)
//! and llama.cpp's `llama-server`, as `../shared/real-servers/` sets them up. Ignored by
//! default (vLLM needs 12 GB of downloads once, and a minute to start): run
//! `scripts/real-servers.sh`, which starts both servers on free ports and runs these
//! tests with `--ignored`, or start them yourself and set
//! * `LLMIB_VLLM_URL` (e.g. `http://127.0.0.1:18431`) and `LLMIB_VLLM_TOKENIZER` (the
//!   served model's `tokenizer.json`), for the `vllm_*` tests;
//! * `LLMIB_LLAMACPP_URL` and `LLMIB_AZURE_CSV` (the Azure 2023 conversation trace), for
//!   the `llamacpp_*` tests.
//!
//! `LLMIB_REAL_SERVERS_LOADED=1` accepts records where vLLM merged several tokens into
//! one chunk (it does when its API server falls behind, e.g. while cargo builds on the
//! same 2 cores); their counts must still be exact.
//!
//! What each test asserts is what a user must be able to trust on a real server: every
//! request ok, exact token counts (one event per token, even for tokens whose text ends
//! inside a UTF-8 character), exact prompt counts, kept-alive connections reused (none
//! opened during a run whose concurrency never exceeds the warmed connections), the
//! prefix-cache hits the client records equal to vLLM's own counters, a graceful
//! SIGTERM, https with an OpenSSL-made certificate, and a capacity search that finds a
//! knee agreeing with a grid.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use formats::{LogRecord, Outcome, RunLog, read_log};

#[path = "cli/common.rs"]
mod common;

use common::{LLMIB, s};

#[path = "../replayer/tests/all/common/tls_front.rs"]
mod tls_front;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run scripts/real-servers.sh (see this file's docs)")
    })
}

/// Runs `llmib ARGS`; panics with its output unless it exits 0. Returns its standard
/// output, then its standard error (warnings).
fn llmib_ok(args: &[&str]) -> String {
    let o = Command::new(LLMIB).args(args).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "llmib {args:?}: {out}");
    out
}

/// `GET URL` (plain http), the body.
fn http_get(url: &str) -> String {
    use std::io::{Read, Write};
    let rest = url.trim_start_matches("http://");
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut c = std::net::TcpStream::connect(host).unwrap();
    write!(
        c,
        "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut buf = String::new();
    c.read_to_string(&mut buf).unwrap();
    buf.split_once("\r\n\r\n")
        .map_or(buf.clone(), |(_, b)| b.to_string())
}

/// The sum of a Prometheus counter's samples (`name` followed by `{` or a space).
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A spec file, generated into a trace with the vLLM model's tokenizer (exact counts).
fn generate(dir: &Path, name: &str, spec: &str) -> PathBuf {
    let spec_path = dir.join(format!("{name}.toml"));
    std::fs::write(&spec_path, spec).unwrap();
    // Not `{name}.msgpack`: that name is the run log's.
    let trace = dir.join(format!("{name}.trace.msgpack"));
    let tokenizer = env("LLMIB_VLLM_TOKENIZER");
    llmib_ok(&[
        "generate",
        s(&spec_path),
        "-o",
        s(&trace),
        "--tokenizer",
        &tokenizer,
    ]);
    trace
}

/// `n` requests of `prompt` tokens and exactly `output` output tokens (ignore_eos), at
/// `rate` req/s (Poisson), prompts drawn so that no two share a 128-token block.
fn synthetic(n: u64, prompt: u32, output: u32, rate: f64) -> String {
    format!(
        r#"
name = "real-{n}-{prompt}-{output}"
seed = 7
requests = {n}
ignore_eos = true
[prompt_tokens]
dist = "fixed"
value = {prompt}
[output_tokens]
dist = "fixed"
value = {output}
[arrival]
process = "poisson"
rate = {rate}
"#
    )
}

/// Replays `trace` against `url`, which must succeed; returns the log and stdout.
fn replay(trace: &Path, url: &str, backend: &str, out: &Path, flags: &[&str]) -> (RunLog, String) {
    let mut args = vec![
        "replay",
        s(trace),
        "--backend",
        backend,
        "--endpoint",
        url,
        "-o",
        s(out),
        "--force",
        "--quiet",
        "--timeout",
        "120",
    ];
    args.extend_from_slice(flags);
    let stdout = llmib_ok(&args);
    (read_log(out).unwrap(), stdout)
}

fn assert_all_ok(log: &RunLog) {
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "request {}: {:?}", r.id, r.error);
    }
}

/// Every record has the server's own count, and every event at least one token: one
/// event per token, except where vLLM merged the tokens of several steps into one chunk
/// (its API server's output collector does when the event loop falls behind, as on a
/// loaded 2-core machine). Returns how many records had exactly one event per token.
fn assert_counts_exact(log: &RunLog, tokens: u32) -> usize {
    let mut one_per_token = 0;
    for r in &log.records {
        assert_eq!(r.output_tokens, Some(tokens), "request {}", r.id);
        assert_eq!(r.server_output_tokens, Some(tokens), "request {}", r.id);
        assert!(r.events.len() <= tokens as usize, "request {}", r.id);
        assert!(r.events.tokens.iter().all(|&k| k >= 1), "request {}", r.id);
        one_per_token += usize::from(r.events.len() == tokens as usize);
    }
    println!(
        "{one_per_token} of {} records: one event per token",
        log.records.len()
    );
    one_per_token
}

/// [`assert_counts_exact`], and one event per token in every record (on a machine quiet
/// enough that the server sends a chunk per token).
fn assert_one_event_per_token(log: &RunLog, tokens: u32) {
    let exact = assert_counts_exact(log, tokens);
    if std::env::var_os("LLMIB_REAL_SERVERS_LOADED").is_none() {
        assert_eq!(exact, log.records.len(), "records with merged chunks");
    }
}

/// The summary says no connection was opened once the clock ran, and no record paid
/// for one.
fn assert_no_connection_during_the_run(log: &RunLog, stdout: &str) {
    let line = stdout.lines().find(|l| l.starts_with("connections:"));
    println!("{}", line.unwrap_or("no connections line"));
    assert!(stdout.contains("; 0 opened during the run"), "{stdout}");
    let connected: Vec<u64> = log
        .records
        .iter()
        .filter(|r| r.connect_ns.is_some())
        .map(|r| r.id)
        .collect();
    assert!(
        connected.is_empty(),
        "requests that connected: {connected:?}"
    );
}

fn prompt_tokens_sent(r: &LogRecord) -> (u32, Option<u32>) {
    (r.prompt_tokens, r.server_prompt_tokens)
}

#[test]
#[ignore = "needs a real vLLM: scripts/real-servers.sh"]
fn vllm_completions_and_chat_count_every_token_on_kept_alive_connections() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    let trace = generate(dir.path(), "kept", &synthetic(100, 100, 64, 8.0));
    let flags = ["--concurrency", "8", "--connections", "8"];
    for backend in ["openai", "openai-chat"] {
        let out = dir.path().join(format!("{backend}.msgpack"));
        let (log, stdout) = replay(&trace, &url, backend, &out, &flags);
        println!("{backend}: {}", stdout.trim());
        assert_all_ok(&log);
        assert_one_event_per_token(&log, 64);
        assert_no_connection_during_the_run(&log, &stdout);
        // Discovery: the only served model, recorded.
        assert_eq!(log.header.backend.model.as_deref(), Some("tiny-llama"));
        assert!(log.header.options.model_discovered);
        if backend == "openai" {
            // Completions text: the server adds BOS.
            for r in &log.records {
                let (p, server) = prompt_tokens_sent(r);
                assert_eq!(server, Some(p + 1), "request {}", r.id);
            }
        }
    }
}

/// The Responses and the Messages APIs (vLLM serves both beside chat): every request
/// ok, the client's count equal to the server's usage and spread over the deltas
/// (vLLM sends no delta for a token that ends inside a UTF-8 character, so not one
/// event per token), the prompt count the server's, the model discovered.
#[test]
#[ignore = "needs a real vLLM: scripts/real-servers.sh"]
fn vllm_responses_and_messages_count_the_servers_usage() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    let trace = generate(dir.path(), "kinds", &synthetic(100, 100, 64, 8.0));
    for backend in ["openai-responses", "anthropic"] {
        let out = dir.path().join(format!("{backend}.msgpack"));
        let (log, stdout) = replay(&trace, &url, backend, &out, &["--concurrency", "8"]);
        println!("{backend}: {}", stdout.trim());
        assert_all_ok(&log);
        assert_eq!(log.header.backend.model.as_deref(), Some("tiny-llama"));
        for r in &log.records {
            // Neither API has ignore_eos: a random model may stop early, rarely.
            let n = r.server_output_tokens.expect("the usage");
            assert!((1..=64).contains(&n), "request {}: {n}", r.id);
            assert_eq!(r.output_tokens, Some(n), "request {}", r.id);
            assert_eq!(r.token_count_method.as_deref(), Some("final_usage"));
            assert_eq!(r.events.total_tokens(), n as u64, "request {}", r.id);
            assert!(
                r.server_prompt_tokens.is_some_and(|p| p >= 100),
                "request {}",
                r.id
            );
        }
    }
}

#[test]
#[ignore = "needs a real vLLM: scripts/real-servers.sh"]
fn vllm_token_ids_and_continuous_usage_are_exact() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    let trace = generate(dir.path(), "ids", &synthetic(40, 200, 32, 8.0));
    let out = dir.path().join("ids.msgpack");
    let (log, _) = replay(
        &trace,
        &url,
        "openai",
        &out,
        &["--prompt-token-ids", "--continuous-usage"],
    );
    assert_all_ok(&log);
    // Continuous usage counts a merged chunk exactly: no need for a quiet machine.
    assert_counts_exact(&log, 32);
    for r in &log.records {
        let (p, server) = prompt_tokens_sent(r);
        assert_eq!(
            server,
            Some(p),
            "request {}: ids are sent as they are",
            r.id
        );
        assert_eq!(r.token_count_method.as_deref(), Some("usage_delta"));
    }
}

#[test]
#[ignore = "needs a real vLLM: scripts/real-servers.sh"]
fn vllm_prefix_cache_hits_equal_the_servers_counters() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    // `prefix` must come before the tables of the spec.
    let spec = synthetic(60, 700, 8, 10.0).replacen(
        "ignore_eos = true",
        "ignore_eos = true\nprefix = { groups = 2, tokens = 512, share = \"uniform\" }",
        1,
    );
    let trace = generate(dir.path(), "prefix", &spec);
    let before = http_get(&format!("{url}/metrics"));
    let out = dir.path().join("prefix.msgpack");
    let (log, _) = replay(&trace, &url, "openai", &out, &["--prompt-token-ids"]);
    let after = http_get(&format!("{url}/metrics"));
    assert_all_ok(&log);
    let client: u64 = log
        .records
        .iter()
        .map(|r| u64::from(r.server_cached_tokens.unwrap_or(0)))
        .sum();
    let server = counter(&after, "vllm:prefix_cache_hits_total")
        - counter(&before, "vllm:prefix_cache_hits_total");
    println!("prefix cache hits: client {client}, vLLM {server}");
    assert!(client > 0, "the shared prefixes hit the cache");
    assert_eq!(
        client as f64, server,
        "client-recorded hits vs vLLM's counter"
    );
}

#[test]
#[ignore = "needs a real vLLM: scripts/real-servers.sh"]
fn vllm_server_metrics_are_scraped_beside_the_log() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    let trace = generate(dir.path(), "metrics", &synthetic(60, 100, 32, 10.0));
    let out = dir.path().join("metrics.msgpack");
    let (log, stdout) = replay(
        &trace,
        &url,
        "openai",
        &out,
        &[
            "--server-metrics",
            "auto",
            "--server-metrics-interval",
            "0.1",
        ],
    );
    assert_all_ok(&log);
    let sidecar = dir.path().join("metrics.msgpack.server-metrics.jsonl");
    let text = std::fs::read_to_string(&sidecar).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let samples = text.lines().count();
    assert!(samples > 10, "{samples} lines in the sidecar");
    assert!(
        text.contains("vllm:num_requests_running"),
        "{}",
        &text[..text.len().min(500)]
    );
}

/// SIGTERM mid-run: the replay stops dispatching, lets in-flight requests finish, and
/// the log is complete and readable (every trace request has its record).
#[test]
#[ignore = "needs a real vLLM: scripts/real-servers.sh"]
fn vllm_sigterm_leaves_a_complete_log() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    let trace = generate(dir.path(), "term", &synthetic(200, 50, 16, 10.0));
    let out = dir.path().join("term.msgpack");
    let child = Command::new(LLMIB)
        .args([
            "replay",
            s(&trace),
            "--backend",
            "openai",
            "--endpoint",
            &url,
        ])
        .args(["-o", s(&out), "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the log has grown past its header: the run is under way.
    let t0 = Instant::now();
    while std::fs::metadata(&out).map_or(0, |m| m.len()) < 4096 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the run never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGTERM) }, 0);
    let o: Output = child.wait_with_output().unwrap();
    println!(
        "SIGTERM: exit {:?}: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr).trim()
    );
    let log = read_log(&out).unwrap();
    assert_eq!(log.records.len(), 200, "one record per trace request");
    let ok = log
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .count();
    let not_sent = log
        .records
        .iter()
        .filter(|r| r.outcome == Outcome::NotSent)
        .count();
    assert!(ok > 0 && not_sent > 0, "ok {ok}, not sent {not_sent}");
}

/// https through a TLS front whose certificate `openssl req -x509` made (CA:TRUE, as
/// most guides give it), trusted with `--cacert`: every request ok, connections kept.
#[test]
#[ignore = "needs a real vLLM and openssl: scripts/real-servers.sh"]
fn vllm_over_https_with_an_openssl_certificate() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let o = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .args(["-keyout", s(&key), "-out", s(&cert)])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let certs = tls_front::pem_certificate(
        &std::fs::read_to_string(&cert).unwrap(),
        &std::fs::read_to_string(&key).unwrap(),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let backend = url.trim_start_matches("http://").to_string();
    let front = rt.block_on(tls_front::tls_front_with(backend, Duration::ZERO, certs));
    let trace = generate(dir.path(), "https", &synthetic(40, 100, 16, 8.0));
    let out = dir.path().join("https.msgpack");
    let (log, stdout) = replay(
        &trace,
        &front.url,
        "openai",
        &out,
        &[
            "--cacert",
            s(&cert),
            "--concurrency",
            "4",
            "--connections",
            "4",
        ],
    );
    assert_all_ok(&log);
    assert_one_event_per_token(&log, 16);
    assert_no_connection_during_the_run(&log, &stdout);
}

/// A capacity search against the real server finds a knee (not "saturated from the first
/// rate"), and a grid of two runs per rate puts it within the grid's step.
#[test]
#[ignore = "needs a real vLLM: scripts/real-servers.sh"]
fn vllm_search_finds_a_knee_that_a_grid_agrees_with() {
    let url = env("LLMIB_VLLM_URL");
    let dir = tempfile::tempdir().unwrap();
    let trace = generate(dir.path(), "search", &synthetic(2000, 100, 32, 40.0));
    let common = [
        "--backend",
        "openai",
        "--endpoint",
        url.as_str(),
        // p90 over 30-s runs (about 100 requests at the knee): p99 over 15-s runs was
        // the slowest one or two requests, and the search and the grid disagreed by
        // 1.4 req/s on its noise alone (session 7: 4.375 vs 3).
        "--slo",
        "ttft_p90=0.5",
        "--run-duration",
        "30s",
        "--quiet",
    ];
    let search_dir = dir.path().join("search");
    let mut args = vec![
        "search",
        s(&trace),
        "-o",
        s(&search_dir),
        "--start-rate",
        "1",
    ];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--repeats", "2"]);
    let found = llmib_ok(&args);
    println!("search:\n{found}");
    assert!(!found.contains("saturated from the first rate"), "{found}");
    let grid_dir = dir.path().join("grid");
    // This vLLM (CPU build, two cores) saturates near 4 req/s with these requests.
    let mut args = vec!["search", s(&trace), "-o", s(&grid_dir), "--grid", "1:6:1"];
    args.extend_from_slice(&common);
    args.extend_from_slice(&["--repeats", "2"]);
    let grid = llmib_ok(&args);
    println!("grid:\n{grid}");
    // "highest rate meeting ttft_p90<=0.5s: 12 req/s (boundary in [...]) ..."
    let knee = |text: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.starts_with("highest rate meeting"))
            .unwrap_or_else(|| panic!("no rate meets the SLO: {text}"));
        let (_, after) = line.split_once(": ").unwrap();
        after.split_whitespace().next().unwrap().parse().unwrap()
    };
    let (a, b) = (knee(&found), knee(&grid));
    assert!((a - b).abs() <= 1.0, "search {a} req/s vs grid {b} req/s");
}

/// The Azure conversation trace (200 requests at 10x, prompts capped at 512 tokens,
/// outputs at 64, ignore_eos) against llama-server, three runs on each backend: no
/// request lost, counts exact.
#[test]
#[ignore = "needs a real llama-server: scripts/real-servers.sh"]
fn llamacpp_azure_slice_loses_nothing() {
    let url = env("LLMIB_LLAMACPP_URL");
    let csv = env("LLMIB_AZURE_CSV");
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("azure.trace.msgpack");
    llmib_ok(&[
        "import",
        "azure",
        &csv,
        "-o",
        s(&trace),
        "--time-scale",
        "10",
        "--max-prompt-tokens",
        "512",
        "--max-output-tokens",
        "64",
        "--max-requests",
        "200",
    ]);
    for backend in ["openai", "llamacpp"] {
        for run in 0..3 {
            let out = dir.path().join(format!("{backend}-{run}.msgpack"));
            let (log, stdout) = replay(&trace, &url, backend, &out, &[]);
            let opened = log
                .records
                .iter()
                .filter(|r| r.connect_ns.is_some())
                .count();
            println!(
                "{backend} run {run}: {opened} of 200 opened a connection; {}",
                stdout.trim()
            );
            assert_eq!(log.records.len(), 200);
            assert_all_ok(&log);
            // llama.cpp holds back a token that ends inside a UTF-8 character and sends
            // it with the next: an event may carry two tokens, counted exactly.
            for r in &log.records {
                let n = r.output_tokens.expect("a count");
                assert_eq!(Some(n), r.server_output_tokens, "request {}", r.id);
                assert!(r.events.len() <= n as usize, "request {}", r.id);
                assert!(r.events.tokens.iter().all(|&k| k >= 1), "request {}", r.id);
            }
            // This llama-server closes a connection that carried a stream: the replayer
            // sends `Connection: close`, says so, and sends the requests on standby
            // connections opened ahead of them. Only a request arriving while the
            // keeper is still replacing the last two standbys connects itself.
            assert!(stdout.contains("Connection: close"), "{stdout}");
            assert!(stdout.contains("on standby connections"), "{stdout}");
            assert!(opened <= 20, "{opened} of 200 requests paid for a connect");
        }
    }
}
