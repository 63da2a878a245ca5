//! `https://` endpoints: the in-process simulator behind a TLS front whose certificate
//! is signed by a CA made in the test. With the CA given (`--cacert`) every request is
//! `ok` and connection setup (TCP and TLS handshake) is measured apart from the
//! requests; without it the endpoint check fails on one line naming the certificate;
//! `--insecure` skips verification and says so in the log header.

use crate::common;
use crate::common::tls_front;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Duration;

use common::write_trace;
use formats::{Outcome, RunLog, read_log};
use replayer::{BackendKind, ReplayConfig, ReplayError, TlsOptions, check_endpoint_with, replay};
use simulator::{Dialect, Profile, SimConfig};
use tls_front::{TlsFront, tls_front};

/// What the TLS front waits before the handshake: connection setup takes at least
/// this long, which the records must show in `connect_ns`, not in the answer.
const HANDSHAKE_DELAY: Duration = Duration::from_millis(150);
/// Gap between requests in the runs that are not bursts.
const GAP: u64 = 20_000_000;

async fn front(dialect: Dialect) -> (simulator::SimServer, TlsFront) {
    let sim = simulator::start(SimConfig::new(dialect, Profile::builtin("tiny").unwrap()))
        .await
        .unwrap();
    let front = tls_front(sim.addr().to_string(), HANDSHAKE_DELAY).await;
    (sim, front)
}

fn ca_file(dir: &Path, front: &TlsFront) -> PathBuf {
    let p = dir.join("ca.pem");
    std::fs::write(&p, &front.ca_pem).unwrap();
    p
}

/// Replays 6 requests (`gap_ns` apart; 0: all at once).
async fn run(
    dir: &Path,
    backend: BackendKind,
    url: &str,
    tls: TlsOptions,
    gap_ns: u64,
    tweak: impl FnOnce(&mut ReplayConfig),
) -> RunLog {
    let trace = write_trace(&dir.join("t.llmib"), 6, gap_ns, 8, 6);
    let out = dir.join("run.msgpack");
    let mut cfg = ReplayConfig::new(backend, url, out.clone());
    cfg.overwrite = true;
    cfg.tls = tls;
    cfg.timeout = Some(Duration::from_secs(30));
    tweak(&mut cfg);
    replay(&trace, cfg, replayer::StopHandle::new())
        .await
        .unwrap();
    read_log(&out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_ca_records_every_request_ok_and_connect_ns_covers_the_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, front) = front(Dialect::Tgi).await;
    let tls = TlsOptions {
        cacert: Some(ca_file(dir.path(), &front)),
        insecure: false,
    };
    check_endpoint_with(&front.url, &tls, Duration::from_secs(10))
        .await
        .unwrap();
    // No warm-up and a burst: requests open their connections themselves (all but the
    // one the simulator probe left idle), and must carry them.
    let log = run(
        dir.path(),
        BackendKind::Tgi,
        &front.url,
        tls.clone(),
        0,
        |c| {
            c.connections = Some(0);
        },
    )
    .await;
    assert_eq!(log.records.len(), 6);
    let mut timed = 0;
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::Ok, "{r:?}");
        assert!(r.output_tokens.unwrap() > 0);
        if let (Some(start), Some(up)) = (r.connect_start_ns, r.connect_ns) {
            timed += 1;
            // The handshake waited for the front: it is inside connect_ns. (A request
            // may still be sent on a connection freed meanwhile, and its own connect
            // then ends after its record: connect.rs's caveat.)
            assert!(up - start >= HANDSHAKE_DELAY.as_nanos() as u64, "{r:?}");
        }
    }
    // One request reuses the connection the simulator probe left idle; the others
    // start connects of their own.
    let started = log.records.iter().filter(|r| r.connect_start_ns.is_some());
    assert!(started.count() >= 5);
    assert!(timed >= 1);
    let opts = &log.header.options;
    assert_eq!(
        opts.tls_cacert.as_deref(),
        Some(dir.path().join("ca.pem").to_str().unwrap())
    );
    assert!(!opts.tls_insecure);

    // With a warm-up, the TLS sessions are up before the clock: no request pays for one.
    let log = run(dir.path(), BackendKind::Tgi, &front.url, tls, GAP, |c| {
        c.concurrency = Some(2);
        c.connections = Some(2);
    })
    .await;
    let warm = log.header.options.warm_connections.as_ref().unwrap();
    assert_eq!((warm.requested, warm.opened), (2, 2));
    assert!(warm.elapsed_ns >= HANDSHAKE_DELAY.as_nanos() as u64);
    assert!(log.records.iter().all(|r| r.outcome == Outcome::Ok));
    let late = log
        .records
        .iter()
        .filter(|r| r.connect_ns.is_some())
        .count();
    // The one race of connect.rs (a slot freed before its connection is back in the
    // pool) may still open a spare; most requests must reuse the warm sessions.
    assert!(late <= 2, "{late} requests opened connections");
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_ca_the_endpoint_check_fails_on_the_certificate() {
    let (sim, front) = front(Dialect::Tgi).await;
    let err = check_endpoint_with(&front.url, &TlsOptions::default(), Duration::from_secs(10))
        .await
        .unwrap_err();
    let ReplayError::Endpoint { message, .. } = &err else {
        panic!("{err}")
    };
    let line = err.to_string();
    assert!(!line.contains('\n'), "{line}");
    assert!(
        line.starts_with(&format!("cannot reach {}", front.url)),
        "{line}"
    );
    assert!(message.contains("certificate"), "{message}");
    assert!(message.contains("UnknownIssuer"), "{message}");
    assert!(message.contains("--cacert"), "{message}");
    assert_eq!(front.handshakes.load(Ordering::SeqCst), 0);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insecure_skips_verification_and_the_header_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, front) = front(Dialect::Openai).await;
    let tls = TlsOptions {
        cacert: None,
        insecure: true,
    };
    // Model discovery goes over TLS too: no --model.
    let log = run(
        dir.path(),
        BackendKind::OpenaiChat,
        &front.url,
        tls,
        GAP,
        |_| {},
    )
    .await;
    assert!(log.records.iter().all(|r| r.outcome == Outcome::Ok));
    assert!(log.header.options.tls_insecure);
    assert_eq!(log.header.options.tls_cacert, None);
    assert_eq!(log.header.backend.model.as_deref(), Some("llmib-sim-tiny"));
    assert!(log.header.options.model_discovered);
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_ca_are_connect_errors_naming_the_certificate() {
    // --no-check: the run goes on, and every request fails to connect, each on one line.
    let dir = tempfile::tempdir().unwrap();
    let (sim, front) = front(Dialect::Tgi).await;
    let log = run(
        dir.path(),
        BackendKind::Tgi,
        &front.url,
        TlsOptions::default(),
        GAP,
        |_| {},
    )
    .await;
    for r in &log.records {
        assert_eq!(r.outcome, Outcome::ConnectError, "{r:?}");
        let e = r.error.as_deref().unwrap();
        assert!(e.contains("certificate") && e.contains("--cacert"), "{e}");
        assert!(!e.contains('\n'));
    }
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_to_a_plain_http_server_says_it_does_not_speak_tls() {
    let sim = simulator::start(SimConfig::new(
        Dialect::Tgi,
        Profile::builtin("tiny").unwrap(),
    ))
    .await
    .unwrap();
    let url = format!("https://{}", sim.addr());
    let err = check_endpoint_with(&url, &TlsOptions::default(), Duration::from_secs(10))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("does not speak TLS"), "{err}");
    assert!(!err.contains('\n'), "{err}");
    sim.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_discovery_over_an_untrusted_certificate_names_the_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, front) = front(Dialect::Openai).await;
    let trace = write_trace(&dir.path().join("t.llmib"), 2, GAP, 8, 6);
    let cfg = ReplayConfig::new(
        BackendKind::OpenaiChat,
        front.url.as_str(),
        dir.path().join("run.msgpack"),
    );
    let err = replay(&trace, cfg, replayer::StopHandle::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("--cacert") && !err.contains("--model"),
        "{err}"
    );
    assert!(!dir.path().join("run.msgpack").exists());
    sim.shutdown().await.unwrap();
}
