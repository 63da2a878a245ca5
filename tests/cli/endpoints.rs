//! Real endpoints through the real binaries: `llmib replay` against `llmib sim` in
//! another process, behind an HTTPS front whose certificate is signed by a CA made in
//! the test (`--cacert` records every request ok; without it the connectivity check
//! fails on one line, exit 2; `--insecure` warns and is recorded), and model discovery
//! for the OpenAI dialects without `--model` (one model: used and recorded; two: an
//! error naming both; a failing `/v1/models`: an error asking for `--model`).

use crate::tls_front;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use formats::{LengthDist, Outcome, RunLog, read_log};

use crate::common;

use common::{LLMIB, SimProcess};
const REQUESTS: u64 = 6;

fn write_trace(dir: &Path) -> PathBuf {
    let path = dir.join("trace.msgpack");
    let output = LengthDist::Fixed { value: 8, floor: 1 };
    common::write_trace(
        &path,
        "endpoints",
        REQUESTS,
        20_000_000,
        "a b c d",
        output,
        |_| 8,
    );
    path
}

fn replay(dir: &Path, backend: &str, endpoint: &str, flags: &[&str]) -> (Output, PathBuf) {
    let trace = write_trace(dir);
    let out = dir.join("run.msgpack");
    let o = Command::new(LLMIB)
        .args(["replay", trace.to_str().unwrap(), "--backend", backend])
        .args([
            "--endpoint",
            endpoint,
            "-o",
            out.to_str().unwrap(),
            "--quiet",
        ])
        .args(["--force", "--timeout", "30"])
        .args(flags)
        .output()
        .unwrap();
    (o, out)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn all_ok(o: &Output, log: &Path) -> RunLog {
    assert!(o.status.success(), "{}", stderr(o));
    let log = read_log(log).unwrap();
    assert_eq!(log.records.len() as u64, REQUESTS);
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "{:?}", r.error);
    }
    log
}

/// The one line an exit-2 failure prints.
fn one_line_error(o: &Output) -> String {
    assert_eq!(o.status.code(), Some(2), "{}", stderr(o));
    let err = stderr(o);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].starts_with("error: "), "{err}");
    lines[0].to_string()
}

#[test]
fn https_with_cacert_records_every_request_ok_and_without_it_fails_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("tgi", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let front = rt.block_on(tls_front::tls_front(sim.addr(), Duration::ZERO));
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &front.ca_pem).unwrap();

    let (o, out) = replay(
        dir.path(),
        "tgi",
        &front.url,
        &["--cacert", ca.to_str().unwrap()],
    );
    let log = all_ok(&o, &out);
    assert_eq!(log.header.options.tls_cacert.as_deref(), ca.to_str());
    assert!(!log.header.options.tls_insecure);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));

    let (o, _) = replay(dir.path(), "tgi", &front.url, &[]);
    let line = one_line_error(&o);
    assert!(line.contains(&front.url), "{line}");
    assert!(
        line.contains("certificate") && line.contains("--cacert"),
        "{line}"
    );

    let (o, out) = replay(dir.path(), "tgi", &front.url, &["--insecure"]);
    let log = all_ok(&o, &out);
    assert!(log.header.options.tls_insecure);
    assert!(stderr(&o).contains("warning: --insecure"), "{}", stderr(&o));

    let (o, _) = replay(
        dir.path(),
        "tgi",
        &front.url,
        &["--cacert", "/nonexistent.pem"],
    );
    let line = one_line_error(&o);
    assert!(line.contains("--cacert /nonexistent.pem"), "{line}");
}

/// The usual test certificate (`openssl req -x509 ... -addext subjectAltName=IP:...`)
/// says CA:TRUE; given with `--cacert`, webpki alone refuses it as the server's own
/// (`CaUsedAsEndEntity`). It is accepted as curl accepts it; the same kind of certificate made for another
/// name is still refused.
#[test]
fn a_self_signed_certificate_marked_as_a_ca_is_trusted_with_cacert() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("tgi", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let certs = tls_front::openssl_style_certificate(&["127.0.0.1"]);
    let front = rt.block_on(tls_front::tls_front_with(sim.addr(), Duration::ZERO, certs));
    let pem = dir.path().join("server.pem");
    std::fs::write(&pem, &front.ca_pem).unwrap();
    let (o, out) = replay(
        dir.path(),
        "tgi",
        &front.url,
        &["--cacert", pem.to_str().unwrap()],
    );
    all_ok(&o, &out);

    // The very certificate the server presents, but made for another name.
    let certs = tls_front::openssl_style_certificate(&["other.test"]);
    let other = rt.block_on(tls_front::tls_front_with(sim.addr(), Duration::ZERO, certs));
    let wrong = dir.path().join("other.pem");
    std::fs::write(&wrong, &other.ca_pem).unwrap();
    let (o, _) = replay(
        dir.path(),
        "tgi",
        &other.url,
        &["--cacert", wrong.to_str().unwrap()],
    );
    let line = one_line_error(&o);
    assert!(line.contains("certificate"), "{line}");
}

#[test]
fn without_model_the_only_served_model_is_used_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("openai", &[]);
    for backend in ["openai", "openai-chat"] {
        let (o, out) = replay(dir.path(), backend, &sim.url, &[]);
        let log = all_ok(&o, &out);
        assert_eq!(log.header.backend.model.as_deref(), Some("llmib-sim-tiny"));
        assert!(log.header.options.model_discovered);
    }
    // Given: sent as given, not discovered.
    let (o, out) = replay(
        dir.path(),
        "openai",
        &sim.url,
        &["--model", "llmib-sim-tiny"],
    );
    let log = all_ok(&o, &out);
    assert!(!log.header.options.model_discovered);
}

/// A plain HTTP server answering `GET /v1/models` with `status` and `body`, and 404 to
/// anything else; each connection closed after one answer. Serves until the test ends.
fn models_server(status: &'static str, body: &'static str) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut sock in listener.incoming().flatten() {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let (status, body) = if buf.starts_with(b"GET /v1/models ") {
                (status, body)
            } else {
                ("404 Not Found", "")
            };
            let answer = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = sock.write_all(answer.as_bytes());
        }
    });
    url
}

#[test]
fn without_model_several_served_models_are_named_and_a_failing_list_asks_for_model() {
    let dir = tempfile::tempdir().unwrap();
    let two = models_server(
        "200 OK",
        r#"{"object":"list","data":[{"id":"qwen-7b","object":"model"},{"id":"llama-8b","object":"model"}]}"#,
    );
    let (o, out) = replay(dir.path(), "openai-chat", &two, &[]);
    let line = one_line_error(&o);
    assert!(line.contains("2 models (qwen-7b, llama-8b)"), "{line}");
    assert!(line.contains("--model"), "{line}");
    assert!(
        !out.exists(),
        "nothing is written before the model is known"
    );

    let none = models_server("404 Not Found", r#"{"detail":"Not Found"}"#);
    let (o, _) = replay(dir.path(), "openai", &none, &[]);
    let line = one_line_error(&o);
    assert!(
        line.contains("/v1/models") && line.contains("HTTP 404"),
        "{line}"
    );
    assert!(line.contains("give the model with --model"), "{line}");
}

#[test]
fn a_suite_against_an_https_endpoint_takes_the_same_tls_flags() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimProcess::start("tgi", &[]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let front = rt.block_on(tls_front::tls_front(sim.addr(), Duration::ZERO));
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &front.ca_pem).unwrap();
    let trace = write_trace(dir.path());
    let suite = dir.path().join("suite.toml");
    std::fs::write(
        &suite,
        format!(
            "name = \"tls\"\nbackend = \"tgi\"\nendpoint = \"{}\"\ntraces = [\"{}\"]\n\n[replay]\nstream = true\n",
            front.url,
            trace.display()
        ),
    )
    .unwrap();
    let run = |flags: &[&str]| {
        Command::new(LLMIB)
            .args(["run", suite.to_str().unwrap(), "--quiet", "--force"])
            .args(["--runs-dir", dir.path().join("runs").to_str().unwrap()])
            .args([
                "--results-dir",
                dir.path().join("results").to_str().unwrap(),
            ])
            .args(flags)
            .output()
            .unwrap()
    };
    let line = one_line_error(&run(&[]));
    assert!(
        line.contains("certificate") && line.contains("--cacert"),
        "{line}"
    );

    let o = run(&["--cacert", ca.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let log = dir.path().join("runs/tls/tgi/trace.msgpack");
    let log = read_log(&log).unwrap();
    assert_eq!(log.records.len() as u64, REQUESTS);
    assert!(log.records.iter().all(|r| r.outcome == Outcome::Ok));
    assert_eq!(log.header.options.tls_cacert.as_deref(), ca.to_str());
}
