//! End to end: `llmib generate` two small traces, `llmib run` a suite of them on the
//! in-process simulator, and check the tables and figures; then resume, interruption and
//! an endpoint that is down, all through the real binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn llmib() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llmib"))
}

fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "llmib failed: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Writes a spec and generates its trace into `dir`.
fn trace(dir: &Path, name: &str, requests: u32, output: &str, arrival: &str) -> PathBuf {
    let spec = dir.join(format!("{name}.toml"));
    std::fs::write(
        &spec,
        format!(
            "name = \"{name}\"\nseed = 7\nrequests = {requests}\n\
             prompt_tokens = {{ dist = \"uniform\", lo = 1, hi = 64 }}\n\
             output_tokens = {output}\narrival = {arrival}\n"
        ),
    )
    .unwrap();
    let out = dir.join(format!("{name}.msgpack"));
    ok(llmib()
        .arg("generate")
        .arg(&spec)
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap());
    out
}

struct Fixture {
    dir: tempfile::TempDir,
    suite: PathBuf,
}

fn fixture(requests: u32, rate: f64, backend: &str, endpoint: Option<&str>) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    trace(
        dir.path(),
        "tp-cap16",
        requests,
        "{ dist = \"capped_exponential\", mean = 8.0, cap = 16 }",
        "{ process = \"burst\" }",
    );
    trace(
        dir.path(),
        "lat-qps",
        requests,
        "{ dist = \"capped_exponential\", mean = 8.0, cap = 32 }",
        &format!("{{ process = \"poisson\", rate = {rate} }}"),
    );
    let suite = dir.path().join("small.toml");
    let endpoint = endpoint
        .map(|e| format!("endpoint = \"{e}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        &suite,
        format!(
            "name = \"small\"\nbackend = \"{backend}\"\n{endpoint}\
             traces = [\"tp-cap16.msgpack\", \"lat-qps.msgpack\"]\n\
             [replay]\ntimeout_s = 60.0\n[simulator]\nprofile = \"tiny\"\n"
        ),
    )
    .unwrap();
    Fixture { dir, suite }
}

fn run_suite(f: &Fixture, extra: &[&str]) -> Command {
    let mut c = llmib();
    c.arg("run")
        .arg(&f.suite)
        .arg("--runs-dir")
        .arg(f.dir.path().join("runs"))
        .arg("--results-dir")
        .arg(f.dir.path().join("results"))
        .arg("--quiet")
        .args(extra);
    c
}

fn png_size(path: &Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(
        &bytes[..8],
        b"\x89PNG\r\n\x1a\n",
        "{} is not a PNG",
        path.display()
    );
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

#[test]
fn suite_on_the_simulator_produces_tables_and_figures_and_resumes() {
    let f = fixture(60, 200.0, "vllm", None);
    let out = ok(run_suite(&f, &[]).output().unwrap());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("SIMULATED"), "{stdout}");
    assert!(stderr.contains("SIMULATED"), "{stderr}");

    // Logs where the contract says, each complete with one record per request.
    for name in ["tp-cap16", "lat-qps"] {
        let log = f.dir.path().join(format!("runs/small/vllm/{name}.msgpack"));
        let run = formats::read_log(&log).unwrap();
        assert!(run.has_trailer());
        assert_eq!(run.records.len(), 60);
        let mut ids: Vec<u64> = run.records.iter().map(|r| r.id).collect();
        ids.sort();
        assert_eq!(ids, (0..60).collect::<Vec<_>>());
        assert!(
            run.records
                .iter()
                .all(|r| r.outcome == formats::Outcome::Ok)
        );
        assert_eq!(
            run.header.backend.simulated.as_ref().unwrap().profile,
            "tiny"
        );
    }

    // Tables in the original's shape: one backend row, one column per cap / QPS.
    let results = f.dir.path().join("results/small");
    let md = std::fs::read_to_string(results.join("tables.md")).unwrap();
    let tp_header = md
        .lines()
        .find(|l| l.contains("max 16 tokens"))
        .unwrap_or_else(|| panic!("no throughput table in\n{md}"));
    assert_eq!(tp_header.matches('|').count(), 3, "{tp_header}");
    let tp_row = md.lines().find(|l| l.starts_with("| vLLM")).unwrap();
    assert!(tp_row.contains("simulated"), "{tp_row}");
    assert!(md.contains("QPS="), "{md}");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("report.json")).unwrap())
            .unwrap();
    let text = json.to_string();
    for key in ["throughput_tok_s", "ttft_s", "e2e_s", "per_token_latency_s"] {
        assert!(text.contains(key), "report.json lacks {key}");
    }
    assert!(results.join("throughput.csv").is_file());
    assert!(results.join("latency.csv").is_file());

    // Figures: PNG and SVG, readable size.
    let figures = results.join("figures");
    let pngs: Vec<PathBuf> = std::fs::read_dir(&figures)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png"))
        .collect();
    assert!(pngs.len() >= 3, "figures: {pngs:?}");
    for p in &pngs {
        let (w, h) = png_size(p);
        assert!(w >= 600 && h >= 300, "{} is {w}x{h}", p.display());
        assert!(
            p.with_extension("svg").is_file(),
            "no SVG twin for {}",
            p.display()
        );
    }

    // Running again replays nothing: both runs are complete.
    let log = f.dir.path().join("runs/small/vllm/tp-cap16.msgpack");
    let before = std::fs::metadata(&log).unwrap().modified().unwrap();
    let out = ok(run_suite(&f, &[]).output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("already complete").count(), 2, "{stderr}");
    assert_eq!(std::fs::metadata(&log).unwrap().modified().unwrap(), before);
}

#[test]
fn endpoint_down_fails_fast_naming_it() {
    // A port nothing listens on: bind, read the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let f = fixture(5, 10.0, "tgi", Some(&endpoint));
    let started = std::time::Instant::now();
    let out = run_suite(&f, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&endpoint), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(started.elapsed().as_secs() < 30);
    assert!(
        !f.dir
            .path()
            .join("runs/small/tgi/tp-cap16.msgpack")
            .exists()
    );
}

#[cfg(unix)]
#[test]
fn interrupted_suite_resumes_on_the_next_run() {
    // Slow arrivals so the second trace is mid-run when SIGTERM (handled like Ctrl-C)
    // arrives.
    let f = fixture(40, 4.0, "tgi", None);
    let child = run_suite(&f, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the latency trace's replay has begun (its log file exists).
    let lat_log = f.dir.path().join("runs/small/tgi/lat-qps.msgpack");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !lat_log.exists() {
        assert!(std::time::Instant::now() < deadline, "replay never started");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    let partial = formats::read_log(&lat_log).unwrap();
    let formats::LogEnd::Trailer(t) = &partial.end else {
        panic!("the interrupted run's log has no trailer");
    };
    assert!(!t.complete, "the interrupted run must not look complete");

    // Resume: the finished throughput run is kept, the interrupted one replayed.
    let out = ok(run_suite(&f, &[]).output().unwrap());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("already complete").count(), 1, "{stderr}");
    let run = formats::read_log(&lat_log).unwrap();
    assert!(matches!(&run.end, formats::LogEnd::Trailer(t) if t.complete));
    assert_eq!(run.records.len(), 40);
}
