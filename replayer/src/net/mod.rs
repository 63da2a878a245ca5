//! The client's side of the wire: the HTTP client and its connections (timed, counted,
//! warmed up, resent, drained), TLS, error texts, and two requests a run makes to the
//! server besides the trace's (model discovery, the prefix-cache reset).
//!
//! * [`http`]: request URL, fixed headers, the run's client, the endpoint check;
//! * [`connect`], [`conn_count`], [`resend`], [`drain`], [`warm`]: each connection
//!   stamped on the request that opened it, connects counted (and gated during the
//!   warm-up), hyper-util's resends seen, bodies read to their end so connections are
//!   kept, the warm-up before the clock starts;
//! * [`standby`]: connections opened ahead of the requests that take them, for servers
//!   that close every connection after a stream (llama.cpp);
//! * [`tls`], [`tls_pinned`]: the rustls configuration (`--cacert`, `--insecure`);
//! * [`transport_error`], [`error_body`]: one-line texts of transport errors and of
//!   error answers;
//! * [`models`], [`cache_reset`]: requests made before the clock starts.
//!
//! Uses `config.rs`, `clock.rs`, `error.rs` and the dialects' error-text helpers; never
//! the run (`run/`), which uses it.

pub(crate) mod cache_reset;
pub(crate) mod conn_count;
pub(crate) mod connect;
pub(crate) mod drain;
pub(crate) mod error_body;
pub(crate) mod http;
pub(crate) mod models;
pub(crate) mod resend;
pub(crate) mod standby;
pub(crate) mod tls;
pub(crate) mod tls_pinned;
pub(crate) mod transport_error;
pub(crate) mod warm;

#[cfg(test)]
pub(crate) mod test_server;
