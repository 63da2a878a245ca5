//! Benchmark (not a test): token events per second the `null` profile serves on one core.
//!
//! The server runs on a single-threaded tokio runtime (one core); the clients run on
//! another runtime in another thread, over raw TCP with keep-alive, and count events
//! (`\n\n`-terminated SSE events of the TGI dialect) as they arrive.
//!
//! `cargo run --release -p llmib-simulator --example bench_null [CONNECTIONS] [SECONDS]`

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn main() {
    let mut args = std::env::args().skip(1);
    let conns: usize = args.next().map(|s| s.parse().unwrap()).unwrap_or(16);
    let secs: f64 = args.next().map(|s| s.parse().unwrap()).unwrap_or(5.0);
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let cfg = simulator::SimConfig::new(
                simulator::Dialect::Tgi,
                simulator::Profile::builtin("null").unwrap(),
            );
            let s = simulator::start(cfg).await.unwrap();
            addr_tx.send(s.addr()).unwrap();
            let _ = stop_rx.await;
            s.shutdown().await.unwrap();
        });
    });
    let addr = addr_rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (events, elapsed) = rt.block_on(async move {
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let body = r#"{"inputs":"a b c d","parameters":{"max_new_tokens":2000}}"#;
        let req = format!(
            "POST /generate_stream HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let req = req.clone();
            tasks.push(tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                let mut buf = vec![0u8; 1 << 16];
                let mut events = 0u64;
                while Instant::now() < deadline {
                    s.write_all(req.as_bytes()).await.unwrap();
                    // Count event terminators until the chunked body ends ("0\r\n\r\n").
                    let mut tail = Vec::new();
                    loop {
                        let n = s.read(&mut buf).await.unwrap();
                        assert!(n > 0, "server closed");
                        let chunk = &buf[..n];
                        events += chunk.windows(2).filter(|w| w == b"\n\n").count() as u64;
                        tail.extend_from_slice(chunk);
                        if tail.len() > 16 {
                            tail.drain(..tail.len() - 16);
                        }
                        if tail.ends_with(b"\r\n0\r\n\r\n") {
                            break;
                        }
                    }
                }
                events
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        (total, start.elapsed())
    });
    let _ = stop_tx.send(());
    server.join().unwrap();
    println!(
        "null profile, tgi /generate_stream, {conns} connections: {events} events in {:.2} s = {:.0} events/s (server on one core)",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64()
    );
}
