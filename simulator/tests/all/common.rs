//! Test helpers: a raw HTTP/1.1 client (so the tests see the exact bytes on the wire).

#![allow(dead_code)]

use std::time::Duration;

use simulator::{Dialect, Profile, SimConfig, SimServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Raw {
    pub status: u16,
    /// Header lines, lower-cased names.
    pub headers: Vec<(String, String)>,
    /// De-chunked body.
    pub body: Vec<u8>,
    /// The body ended with the chunked terminator (false: connection cut).
    pub complete: bool,
}

impl Raw {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).expect("utf-8 body")
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

pub async fn start(dialect: Dialect, profile: &str) -> SimServer {
    simulator::start(SimConfig::new(dialect, Profile::builtin(profile).unwrap()))
        .await
        .unwrap()
}

/// POST `body` with Content-Type application/json (unless `content_type` is None).
pub async fn post(server: &SimServer, path: &str, body: &str) -> Raw {
    request(server, "POST", path, body, Some("application/json"), &[]).await
}

pub async fn request(
    server: &SimServer,
    method: &str,
    path: &str,
    body: &str,
    content_type: Option<&str>,
    extra: &[(&str, &str)],
) -> Raw {
    let mut s = tokio::net::TcpStream::connect(server.addr()).await.unwrap();
    let mut req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
        server.addr(),
        body.len()
    );
    if let Some(ct) = content_type {
        req.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    for (k, v) in extra {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req.push_str(body);
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), s.read_to_end(&mut buf))
        .await
        .expect("response within 60 s")
        .ok();
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> Raw {
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("header end");
    let head = std::str::from_utf8(&buf[..end]).unwrap();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_ascii_lowercase(), v.trim().to_string())
        })
        .collect();
    let rest = &buf[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
    if !chunked {
        let complete = match headers.iter().find(|(k, _)| k == "content-length") {
            Some((_, n)) => rest.len() == n.parse::<usize>().unwrap(),
            None => true,
        };
        return Raw {
            status,
            headers,
            body: rest.to_vec(),
            complete,
        };
    }
    let mut body = Vec::new();
    let mut i = 0;
    let mut complete = false;
    while let Some(p) = rest[i..].windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&rest[i..i + p]).unwrap().trim(), 16)
            .unwrap();
        i += p + 2;
        if size == 0 {
            complete = true;
            break;
        }
        if i + size > rest.len() {
            body.extend_from_slice(&rest[i..]);
            break;
        }
        body.extend_from_slice(&rest[i..i + size]);
        i += size + 2;
        if i > rest.len() {
            break;
        }
    }
    Raw {
        status,
        headers,
        body,
        complete,
    }
}

/// A prompt of `n` words (n tokens for the simulator).
pub fn prompt(n: usize) -> String {
    (0..n)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Split an SSE body into its `data:` payloads (exact bytes after `data:`).
pub fn sse_data(body: &str) -> Vec<String> {
    assert!(
        body.ends_with("\n\n") || body.is_empty(),
        "events end with a blank line: {body:?}"
    );
    body.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            e.strip_prefix("data:")
                .unwrap_or_else(|| panic!("not a data line: {e:?}"))
                .to_string()
        })
        .collect()
}
