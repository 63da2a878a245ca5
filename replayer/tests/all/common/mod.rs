//! Helpers shared by the replayer's integration tests: trace files and a raw HTTP/1.1
//! server for server behaviour the simulator does not produce (captured bytes,
//! malformed data, oversized lines, early close).
#![allow(dead_code)]

pub mod sessions;
pub mod tls_front;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use formats::{
    Arrival, LengthDist, SyntheticSpec, TokenizerInfo, TraceHeader, TraceRequest, TraceSpec,
    TraceWriter,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes a trace of `n` requests arriving `gap_ns` apart (0 = burst).
pub fn write_trace(
    path: &Path,
    n: u64,
    gap_ns: u64,
    prompt_words: u32,
    max_tokens: u32,
) -> PathBuf {
    let spec = TraceSpec::Synthetic(SyntheticSpec {
        name: "test".into(),
        seed: 1,
        requests: n,
        prompt_tokens: LengthDist::Fixed {
            value: prompt_words,
            floor: 1,
        },
        output_tokens: LengthDist::Fixed {
            value: max_tokens,
            floor: 1,
        },
        arrival: if gap_ns == 0 {
            Arrival::Burst
        } else {
            Arrival::Constant {
                rate: 1e9 / gap_ns as f64,
            }
        },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    });
    let header = TraceHeader::new(
        spec,
        TokenizerInfo {
            kind: "builtin-words".into(),
            name: "test".into(),
            sha256: None,
        },
        n,
        "test",
    );
    let mut w = TraceWriter::create(path, &header).unwrap();
    for id in 0..n {
        let prompt: Vec<String> = (0..prompt_words)
            .map(|i| format!("w{}", (i + id as u32) % 97))
            .collect();
        w.write(&TraceRequest {
            id,
            arrival_ns: id * gap_ns,
            prompt: prompt.join(" "),
            prompt_token_ids: Some((0..prompt_words).collect()),
            prompt_tokens: prompt_words,
            max_tokens,
            ignore_eos: true,
            ..Default::default()
        })
        .unwrap();
    }
    w.finish().unwrap()
}

/// What the raw server does with one connection's request.
#[derive(Clone)]
pub enum Reply {
    /// Writes these byte pieces in order (each its own write), then closes.
    Raw(Vec<Vec<u8>>),
}

/// A chunked HTTP/1.1 response: status line + headers, each body piece as one chunk,
/// and the terminating chunk unless `terminate` is false (an early close).
pub fn chunked(status: &str, headers: &[&str], pieces: &[&[u8]], terminate: bool) -> Reply {
    let mut head =
        format!("HTTP/1.1 {status}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut out = vec![head.into_bytes()];
    for p in pieces {
        let mut c = format!("{:x}\r\n", p.len()).into_bytes();
        c.extend_from_slice(p);
        c.extend_from_slice(b"\r\n");
        out.push(c);
    }
    if terminate {
        out.push(b"0\r\n\r\n".to_vec());
    }
    Reply::Raw(out)
}

/// A response with Content-Length.
pub fn full(status: &str, headers: &[&str], body: &[u8]) -> Reply {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    let mut b = head.into_bytes();
    b.extend_from_slice(body);
    Reply::Raw(vec![b])
}

/// Splits a captured SSE body into one piece per event (as servers flush them).
pub fn events_of(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + 1 < body.len() {
        if &body[i..i + 2] == b"\n\n" {
            out.push(&body[start..i + 2]);
            start = i + 2;
            i += 2;
        } else {
            i += 1;
        }
    }
    if start < body.len() {
        out.push(&body[start..]);
    }
    out
}

/// The raw server's answer to a `GET`: OpenAI model discovery finds one model
/// ([`MODEL`]); anything else (the warm-up, the simulator probe) is a 404.
fn get_answer(head: &str) -> &'static [u8] {
    if head.starts_with("GET /v1/models ") {
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 37\r\nconnection: close\r\n\r\n{\"object\":\"list\",\"data\":[{\"id\":\"m\"}]}"
    } else {
        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    }
}

/// The model the raw server lists at `GET /v1/models`.
pub const MODEL: &str = "m";

/// Requests the raw server received: (head, body).
pub type Seen = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves `reply(n)` to the n-th request (one request per connection), on 127.0.0.1
/// port 0. Returns the base URL and the received requests. The replayer's `GET`s
/// before the run (the connection warm-up, the simulator probe) get a 404 and are
/// neither counted nor recorded.
pub async fn raw_server(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen: Seen = Arc::default();
    let seen2 = seen.clone();
    let reply = Arc::new(reply);
    tokio::spawn(async move {
        let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let n = n.clone();
            let reply = reply.clone();
            let seen = seen2.clone();
            tokio::spawn(async move {
                // Read the head, then Content-Length bytes of body.
                let mut buf = Vec::new();
                let mut tmp = [0u8; 4096];
                let head_end = loop {
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(r) => buf.extend_from_slice(&tmp[..r]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let len = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + len {
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => break,
                        Ok(r) => buf.extend_from_slice(&tmp[..r]),
                    }
                }
                if head.starts_with("GET ") {
                    let _ = sock.write_all(get_answer(&head)).await;
                    return;
                }
                let k = n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                seen.lock().unwrap().push((head, buf[head_end..].to_vec()));
                let Reply::Raw(pieces) = reply(k);
                for p in pieces {
                    if sock.write_all(&p).await.is_err() {
                        return;
                    }
                    let _ = sock.flush().await;
                }
                let _ = sock.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), seen)
}
