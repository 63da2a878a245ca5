//! Measurement (not a test): the real-time engine against the virtual-time model.
//!
//! Replays a 1000-request burst (512-token prompts, outputs capped at 128) against an
//! in-process `tiny` server of each dialect's policy over real HTTP, and compares the span
//! in the server's truth log with the span `simulate()` computes for the same requests.
//!
//! `cargo run --release -p llmib-simulator --example realtime_vs_virtual [SCALE]`
//! `... --example realtime_vs_virtual -- --profile a800-llama2-13b --speedup K [--cap C]`:
//! the calibrated profile sped up K times (`Profile::sped_up`), compared with its
//! virtual span divided by K: how precise a time-dilated run is at that K.

use std::time::Duration;

use simulator::{Dialect, Profile, SimConfig, calibration, simulate, truth};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() {
    // Optional first argument: multiply the tiny profile's step costs (a slower engine is
    // less sensitive to the machine's own CPU load).
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .map(|i| args[i + 1].clone())
    };
    let scale: f64 = match args.first() {
        Some(a) if !a.starts_with("--") => a.parse().unwrap(),
        _ => 1.0,
    };
    let speedup: f64 = flag("--speedup").map_or(1.0, |k| k.parse().unwrap());
    let cap: u32 = flag("--cap").map_or(128, |c| c.parse().unwrap());
    let name = flag("--profile").unwrap_or_else(|| "tiny".into());
    let mut profile = Profile::builtin(&name).unwrap();
    for policy in [
        simulator::Policy::Tgi,
        simulator::Policy::Vllm,
        simulator::Policy::Lightllm,
    ] {
        let mut p = profile.engine(policy).unwrap().clone();
        p.prefill_base_us *= scale;
        p.prefill_per_token_us *= scale;
        p.decode_base_us *= scale;
        p.decode_per_seq_us *= scale;
        p.decode_per_ctx_token_us *= scale;
        profile.set_engine(policy, p);
    }
    let reference = profile.clone();
    let profile = profile.sped_up(speedup).unwrap();
    let reqs = calibration::throughput_workload(cap, 5);
    let prompt: String = (0..512)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    for dialect in [Dialect::Tgi, Dialect::Vllm, Dialect::Lightllm] {
        let policy = dialect.default_policy();
        let dir = std::env::temp_dir().join(format!("llmib-rt-{}-{dialect}", std::process::id()));
        let mut cfg = SimConfig::new(dialect, profile.clone());
        cfg.truth_log = Some(dir.clone());
        let server = simulator::start(cfg).await.unwrap();
        let addr = server.addr();
        let mut tasks = Vec::new();
        for r in &reqs {
            let body = match dialect {
                Dialect::Tgi => format!(
                    r#"{{"inputs":"{prompt}","parameters":{{"max_new_tokens":{}}}}}"#,
                    r.max_tokens
                ),
                Dialect::Vllm => format!(
                    r#"{{"prompt":"{prompt}","max_tokens":{},"ignore_eos":true,"stream":true}}"#,
                    r.max_tokens
                ),
                _ => format!(
                    r#"{{"inputs":"{prompt}","parameters":{{"max_new_tokens":{},"ignore_eos":true}}}}"#,
                    r.max_tokens
                ),
            };
            let path = if dialect == Dialect::Vllm {
                "/generate"
            } else {
                "/generate_stream"
            };
            tasks.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                let req = format!(
                    "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                s.write_all(req.as_bytes()).await.unwrap();
                let mut sink = Vec::new();
                s.read_to_end(&mut sink).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        server.shutdown().await.unwrap();
        let recs = truth::read_truth_log(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        let start = recs.iter().map(|r| r.received_ns).min().unwrap();
        let end = recs.iter().map(|r| r.finished_ns).max().unwrap();
        let ok = recs
            .iter()
            .filter(|r| r.outcome == Some(truth::Outcome::Ok))
            .count();
        let (res, _) = simulate(reference.engine(policy).unwrap(), policy, &reqs);
        let virt = (res.iter().map(|r| r.finished_ns).max().unwrap() as f64 / speedup) as u64;
        println!(
            "{dialect}: {ok}/{} ok, real span {:.3} s, virtual span {:.3} s, real/virtual {:.3}",
            reqs.len(),
            (end - start) as f64 / 1e9,
            virt as f64 / 1e9,
            (end - start) as f64 / virt as f64
        );
    }
}
