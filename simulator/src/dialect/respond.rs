//! Response bytes every dialect writes: a response with a content type, the Python
//! servers' bare 500s, and JSON strings escaped as Rust's serde_json and Python's
//! `json.dumps` write them.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::BytesMut;

/// A full response with an optional content type.
pub(crate) fn response(
    status: StatusCode,
    content_type: Option<&'static str>,
    body: impl Into<Body>,
) -> Response {
    let mut r = Response::new(body.into());
    *r.status_mut() = status;
    if let Some(ct) = content_type {
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    r
}

pub(crate) const JSON: &str = "application/json";
pub(crate) const SSE: &str = "text/event-stream";
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// Uvicorn's plain `Internal Server Error` (vLLM and LightLLM on an exception).
pub(crate) fn uvicorn_500() -> Response {
    response(
        StatusCode::INTERNAL_SERVER_ERROR,
        Some(TEXT),
        "Internal Server Error",
    )
}

/// An injected HTTP error fault as the 2023 Python servers (vLLM, LightLLM) answer it:
/// 429 and 503 as a proxy in front of them would (plain text), 500 as uvicorn does.
pub(crate) fn python_injected_error(status: StatusCode) -> Response {
    match status {
        StatusCode::INTERNAL_SERVER_ERROR => uvicorn_500(),
        s => response(s, Some(TEXT), s.canonical_reason().unwrap_or("Error")),
    }
}

/// Append `s` as a JSON string literal (with quotes).
pub(crate) fn push_json_str(out: &mut BytesMut, s: &str) {
    let v = serde_json::to_string(s).expect("strings serialize");
    out.extend_from_slice(v.as_bytes());
}

/// Python's `json.dumps(s)` of a string (ensure_ascii=True): non-ASCII as \uXXXX.
pub(crate) fn push_py_json_str(out: &mut BytesMut, s: &str) {
    out.extend_from_slice(b"\"");
    for c in s.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            '\u{8}' => out.extend_from_slice(b"\\b"),
            '\u{c}' => out.extend_from_slice(b"\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.extend_from_slice(format!("\\u{:04x}", unit).as_bytes());
                }
            }
            c => {
                let mut b = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            }
        }
    }
    out.extend_from_slice(b"\"");
}
