//! The message of an error answer (a status other than 2xx): its body read up to a
//! bound, decoded when the server compressed it, reduced to one line.
//!
//! Why decoding: the client asks for no compression (no `Accept-Encoding`), so success
//! bodies come as sent, but gateways and proxies in front of LLM servers (nginx with
//! `gzip_proxied any`, cloud load balancers) compress error pages whatever was asked.
//! Without decoding, the record's error would be binary noise. Only `gzip` and
//! `deflate` (zlib, or raw as some servers send it) are decoded, with `flate2`, which
//! the workspace already builds; any other coding is named in the error instead.
//!
//! Rate limits: 429 and 503 answers often carry `Retry-After`; it is recorded with the
//! response headers (`server_timing["retry-after"]`, see `TIMING_HEADERS`) and named in
//! the error text. The request is never retried: the replay is open loop, and a
//! retried request would not be the trace's request at the trace's time.

use std::io::Read;

use reqwest::header::{CONTENT_ENCODING, RETRY_AFTER};

use crate::dialect::adapter::{bounded, error_message};

/// Bytes of an error body read (compressed or not), and at most as many decoded.
pub(crate) const MAX_ERROR_BODY: usize = 64 << 10;

/// `HTTP <status>: <message>` for an error answer, its body read to at most
/// [`MAX_ERROR_BODY`] bytes.
pub(crate) async fn describe_error_answer(resp: &mut reqwest::Response) -> String {
    let status = resp.status().as_u16();
    let coding = resp
        .headers()
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .map(|v| bounded(&String::from_utf8_lossy(v.as_bytes())));
    let body = read_bounded(resp).await;
    let msg = match decode(coding.as_deref(), &body) {
        Ok(plain) => error_message(&plain),
        Err(why) => why,
    };
    let retry = retry_after.map_or(String::new(), |v| format!(" (Retry-After: {v})"));
    bounded(&format!("HTTP {status}{retry}: {msg}"))
}

async fn read_bounded(resp: &mut reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY {
        match resp.chunk().await {
            Ok(Some(c)) => body.extend_from_slice(&c[..c.len().min(MAX_ERROR_BODY - body.len())]),
            _ => break,
        }
    }
    body
}

/// The body as the server meant it, or why it cannot be read.
fn decode(coding: Option<&str>, body: &[u8]) -> Result<Vec<u8>, String> {
    let inflate = |r: &mut dyn Read| {
        let mut out = Vec::new();
        // A cut (bounded) body still yields what precedes the cut.
        let _ = r.take(MAX_ERROR_BODY as u64).read_to_end(&mut out);
        out
    };
    match coding {
        None | Some("") | Some("identity") => Ok(body.to_vec()),
        Some("gzip") | Some("x-gzip") => Ok(inflate(&mut flate2::read::GzDecoder::new(body))),
        Some("deflate") => {
            // RFC 9110 says zlib; some servers send raw deflate.
            let z = inflate(&mut flate2::read::ZlibDecoder::new(body));
            Ok(if z.is_empty() {
                inflate(&mut flate2::read::DeflateDecoder::new(body))
            } else {
                z
            })
        }
        Some(other) => Err(format!(
            "({} bytes of {other}-encoded body, not decoded)",
            body.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};

    use super::*;

    const TEXT: &[u8] = br#"{"error":{"message":"rate limit exceeded"}}"#;

    #[test]
    fn gzip_and_deflate_bodies_are_decoded() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        gz.write_all(TEXT).unwrap();
        assert_eq!(decode(Some("gzip"), &gz.finish().unwrap()).unwrap(), TEXT);
        let mut z = ZlibEncoder::new(Vec::new(), Compression::default());
        z.write_all(TEXT).unwrap();
        assert_eq!(decode(Some("deflate"), &z.finish().unwrap()).unwrap(), TEXT);
        let mut raw = DeflateEncoder::new(Vec::new(), Compression::default());
        raw.write_all(TEXT).unwrap();
        assert_eq!(
            decode(Some("deflate"), &raw.finish().unwrap()).unwrap(),
            TEXT
        );
        assert_eq!(decode(None, TEXT).unwrap(), TEXT);
        assert_eq!(decode(Some("identity"), TEXT).unwrap(), TEXT);
    }

    #[test]
    fn a_cut_gzip_body_yields_what_precedes_the_cut() {
        let long = "x".repeat(10_000);
        let mut gz = GzEncoder::new(Vec::new(), Compression::none());
        gz.write_all(long.as_bytes()).unwrap();
        let bytes = gz.finish().unwrap();
        let out = decode(Some("gzip"), &bytes[..bytes.len() / 2]).unwrap();
        assert!(!out.is_empty() && out.len() < long.len());
        assert!(out.iter().all(|&b| b == b'x'));
    }

    #[test]
    fn other_codings_and_broken_bodies_stay_one_bounded_line() {
        let e = decode(Some("br"), b"\x1b\x00\x00").unwrap_err();
        assert_eq!(e, "(3 bytes of br-encoded body, not decoded)");
        // Not gzip at all: nothing decoded, an empty message rather than noise.
        let out = decode(Some("gzip"), b"plain text").unwrap();
        assert_eq!(error_message(&out), "(empty body)");
    }
}
