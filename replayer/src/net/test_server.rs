//! A raw keep-alive HTTP/1.1 server for the connection tests: it shows exactly what
//! reached the wire (each request's bytes) and how many connections were made, which
//! the simulator does not expose.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, mpsc};

/// Requests seen in all, and a signal on each.
type Arrived = Arc<(AtomicU64, Notify)>;

/// Starts the server: it answers every request `200 ok`, but none before `hold`
/// requests have arrived in all. Returns its URL, the raw bytes of each request (head
/// and body) and the count of accepted connections.
pub(crate) async fn raw_server(
    hold: u64,
) -> (String, mpsc::UnboundedReceiver<Vec<u8>>, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let accepted = Arc::new(AtomicU64::new(0));
    let arrived: Arrived = Arc::new((AtomicU64::new(0), Notify::new()));
    let counter = accepted.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(serve(sock, tx.clone(), arrived.clone(), hold));
        }
    });
    (url, rx, accepted)
}

async fn serve(
    mut sock: TcpStream,
    tx: mpsc::UnboundedSender<Vec<u8>>,
    arrived: Arrived,
    hold: u64,
) {
    let mut buf = Vec::new();
    loop {
        let Some(len) = whole_request(&buf) else {
            let mut chunk = [0u8; 4096];
            match sock.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let _ = tx.send(buf.drain(..len).collect());
        wait_for(&arrived, hold).await;
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        if sock.write_all(answer).await.is_err() {
            return;
        }
    }
}

/// Counts this request, then waits until `hold` have arrived in all.
async fn wait_for(arrived: &Arrived, hold: u64) {
    let (n, signal) = &**arrived;
    n.fetch_add(1, Ordering::SeqCst);
    signal.notify_waiters();
    loop {
        let notified = signal.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if n.load(Ordering::SeqCst) >= hold {
            return;
        }
        notified.await;
    }
}

/// Length of the first whole request in `buf` (head plus `content-length` body).
fn whole_request(buf: &[u8]) -> Option<usize> {
    let head = buf.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let text = String::from_utf8_lossy(&buf[..head]).to_ascii_lowercase();
    let body = text
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse::<usize>().unwrap());
    (buf.len() >= head + body).then_some(head + body)
}
