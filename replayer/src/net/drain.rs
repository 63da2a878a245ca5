//! Reading what is left of a streamed response after its end marker, so that the
//! connection goes back to the pool.
//!
//! A stream decoder stops at the dialect's end marker (`data: [DONE]`, TGI's final
//! event, llama.cpp's `"stop": true`): the answer is complete and its end time is that
//! marker's. But the HTTP response is not over until the body's own end (the chunked
//! terminator `0\r\n\r\n`, or the last byte of a `Content-Length` body), and uvicorn
//! (vLLM, SGLang) writes that terminator separately, about 40 µs later. hyper returns a
//! connection to the idle pool only when the body was read to its end; a response
//! dropped before it closes the connection, and the next request pays a new TCP (and
//! TLS) handshake inside its timings. Measured against a real vLLM before this module:
//! 58-80 of 100 streamed requests opened a new connection during the run.
//!
//! The rest is read after the record is final (nothing here moves a timestamp), bounded
//! in bytes and time: a server that sends more than [`DRAIN_MAX_BYTES`] or keeps the body
//! open [`DRAIN_TIMEOUT`] after its end marker loses the connection, never the run's time.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// The most bytes read after the end marker before the connection is given up.
pub const DRAIN_MAX_BYTES: usize = 64 << 10;

/// How long the body's own end may take after the end marker.
pub const DRAIN_TIMEOUT: Duration = Duration::from_millis(250);

/// How reading the rest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drained {
    /// The body ended: the connection is back in the pool (when the server keeps it).
    Clean,
    /// Too many bytes, too slow, a transport error or the run's abort: the connection
    /// is closed.
    GivenUp,
}

/// Reads `resp` to its end within the bounds above (or until `abort`).
pub(crate) async fn drain(mut resp: reqwest::Response, abort: &CancellationToken) -> Drained {
    let read_rest = async {
        let mut left = DRAIN_MAX_BYTES;
        loop {
            match resp.chunk().await {
                Ok(None) => return Drained::Clean,
                Ok(Some(c)) if c.len() <= left => left -= c.len(),
                Ok(Some(_)) | Err(_) => return Drained::GivenUp,
            }
        }
    };
    tokio::select! {
        biased;
        _ = abort.cancelled() => Drained::GivenUp,
        _ = tokio::time::sleep(DRAIN_TIMEOUT) => Drained::GivenUp,
        d = read_rest => d,
    }
}
