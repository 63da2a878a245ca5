//! The ground-truth log: what the server really did, per request, on its own clock.
//!
//! JSON Lines, one object per request, written when the request's life ends (response
//! finished, failed, or client gone), so lines are in completion order, not arrival order.
//! All times are integer nanoseconds since the server started, on one monotonic clock.
//! Field meanings and units are in `simulator/README.md`.
//!
//! A dedicated writer thread owns the file: handlers only push records into a channel,
//! so disk latency never reaches a response. It flushes at least once a second and on
//! [`crate::SimServer::shutdown`].

use std::io::{BufRead, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::SimError;

/// How a request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Answered in full.
    #[serde(rename = "ok")]
    Ok,
    /// Injected HTTP 429 (overloaded / rate limited).
    #[serde(rename = "http_429")]
    Http429,
    /// Injected HTTP 500.
    #[serde(rename = "http_500")]
    Http500,
    /// Injected HTTP 503.
    #[serde(rename = "http_503")]
    Http503,
    /// Injected generation error (TGI's 424; a 200 + error event on its streams).
    #[serde(rename = "http_424")]
    Http424,
    /// Injected: the connection was cut mid-response.
    #[serde(rename = "disconnect")]
    Disconnect,
    /// Well-formed request refused by validation (too long, bad parameter value).
    #[serde(rename = "validation_error")]
    ValidationError,
    /// Malformed request: bad JSON, wrong types, missing fields.
    #[serde(rename = "bad_request")]
    BadRequest,
    /// The client closed the connection before the response was complete.
    #[serde(rename = "client_gone")]
    ClientGone,
}

impl Outcome {
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Http429 => "http_429",
            Outcome::Http500 => "http_500",
            Outcome::Http503 => "http_503",
            Outcome::Http424 => "http_424",
            Outcome::Disconnect => "disconnect",
            Outcome::ValidationError => "validation_error",
            Outcome::BadRequest => "bad_request",
            Outcome::ClientGone => "client_gone",
        }
    }
}

/// One request's ground truth.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TruthRecord {
    /// Arrival order on this server, from 0.
    pub seq: u64,
    /// The `X-Request-Id` header, when the client sent one.
    pub request_id: Option<String>,
    pub dialect: String,
    /// Request path, e.g. `/generate_stream`.
    pub route: String,
    pub stream: bool,
    /// Request headers received (the handler starts), ns.
    pub received_ns: u64,
    /// First admission into the running batch (start of its prefill step), ns.
    pub admitted_ns: Option<u64>,
    /// First token written to the response body, ns.
    pub first_token_ns: Option<u64>,
    /// First answer token (not reasoning) written, ns: the first token's time unless the
    /// request reasoned (`reasoning_tokens`); null when its answer never came.
    #[serde(default)]
    pub first_answer_ns: Option<u64>,
    /// Every token's time, ns: streamed, when its event was handed to the connection;
    /// not streamed, when the engine produced it.
    pub token_ns: Vec<u64>,
    /// Response complete (or abandoned), ns.
    pub finished_ns: u64,
    pub prompt_tokens: u32,
    /// The request's output limit (max_tokens / max_new_tokens, after defaults).
    pub max_tokens: u32,
    /// Tokens written.
    pub output_tokens: u32,
    /// Of those, reasoning tokens (OpenAI chat with `--reasoning-tokens`).
    #[serde(default)]
    pub reasoning_tokens: u32,
    /// HTTP status sent (0 when none was sent).
    pub http_status: u16,
    pub outcome: Option<Outcome>,
    /// Injected fault: http_429, http_500, http_503, disconnect, stall, slow_first_byte,
    /// generation_error.
    pub fault: Option<String>,
    /// Times evicted and recomputed (vLLM policy).
    pub preemptions: u32,
    /// Prompt tokens found in the engine's prefix cache at its first admission (0
    /// without a prefix cache).
    #[serde(default)]
    pub cached_tokens: u32,
    /// `length` or `eos` when generation ended normally.
    pub finish_reason: Option<String>,
    /// The profile ran this many times faster than calibrated (`--speedup K`): every
    /// time in this record is on the real (dilated) clock; times x K are in the
    /// profile's units. Absent when 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup: Option<f64>,
}

pub(crate) enum Msg {
    Record(Box<TruthRecord>),
    Close(mpsc::Sender<std::io::Result<()>>),
}

/// Handle to the writer thread.
pub(crate) struct TruthWriter {
    tx: mpsc::Sender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
    path: PathBuf,
}

impl TruthWriter {
    pub(crate) fn create(path: &Path) -> Result<TruthWriter, SimError> {
        let err = |source| SimError::TruthLog {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::create(path).map_err(err)?;
        let (tx, rx) = mpsc::channel::<Msg>();
        let thread = std::thread::Builder::new()
            .name("llmib-sim-truth".into())
            .spawn(move || writer_loop(BufWriter::with_capacity(1 << 16, file), rx))
            .map_err(err)?;
        Ok(TruthWriter {
            tx,
            thread: Some(thread),
            path: path.to_path_buf(),
        })
    }

    pub(crate) fn sender(&self) -> mpsc::Sender<Msg> {
        self.tx.clone()
    }

    /// Flush, close, and join the writer thread.
    pub(crate) async fn close(mut self) -> Result<(), SimError> {
        let (ack_tx, ack_rx) = mpsc::channel();
        let _ = self.tx.send(Msg::Close(ack_tx));
        let thread = self.thread.take();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let r = ack_rx.recv().unwrap_or(Ok(()));
            if let Some(t) = thread {
                let _ = t.join();
            }
            r
        })
        .await
        .unwrap_or(Ok(()))
        .map_err(|source| SimError::TruthLog { path, source })
    }
}

fn writer_loop(mut out: BufWriter<std::fs::File>, rx: mpsc::Receiver<Msg>) {
    let mut dirty = false;
    let mut error: Option<std::io::Error> = None;
    loop {
        match rx.recv_timeout(Duration::from_millis(500)) {
            Ok(Msg::Record(r)) => {
                if error.is_none() {
                    let line = serde_json::to_vec(&r).expect("records serialize");
                    if let Err(e) = out.write_all(&line).and_then(|_| out.write_all(b"\n")) {
                        error = Some(e);
                    }
                    dirty = true;
                }
            }
            Ok(Msg::Close(ack)) => {
                let r = match error.take() {
                    Some(e) => Err(e),
                    None => out.flush().and_then(|_| out.get_ref().sync_data()),
                };
                let _ = ack.send(r);
                return;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if dirty && error.is_none() {
                    if let Err(e) = out.flush() {
                        error = Some(e);
                    }
                    dirty = false;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                let _ = out.flush();
                return;
            }
        }
    }
}

/// Read a whole truth log.
pub fn read_truth_log(path: impl AsRef<Path>) -> Result<Vec<TruthRecord>, SimError> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|source| SimError::TruthLog {
        path: path.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| SimError::TruthLog {
            path: path.to_path_buf(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let rec = serde_json::from_str(&line).map_err(|e| SimError::TruthParse {
            path: path.to_path_buf(),
            line: i + 1,
            message: e.to_string(),
        })?;
        out.push(rec);
    }
    Ok(out)
}
