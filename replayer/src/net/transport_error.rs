//! One-line descriptions of transport errors (reqwest's, with their causes), for the
//! records of requests that failed on the wire and for the checks before a run. Apart
//! from the request task and the client setup because both describe errors alike.

use std::time::Duration;

use crate::dialect::adapter::bounded;
use crate::net::tls::{describe_tls, tls_cause};

/// Describes a transport error with its causes, on one bounded line (a TLS failure
/// by its TLS reason, see [`crate::net::tls::describe_tls`]).
pub(crate) fn describe(e: &reqwest::Error) -> String {
    if let Some(t) = tls_cause(e) {
        return bounded(&describe_tls(t));
    }
    let mut s = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(cause) = src {
        let t = cause.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = cause.source();
    }
    bounded(&s)
}

/// Why a request before the run got no answer, on one line.
pub(crate) fn unreachable_why(e: &reqwest::Error, timeout: Duration) -> String {
    if let Some(t) = tls_cause(e) {
        return describe_tls(t);
    }
    if e.is_timeout() {
        return format!("no answer within {:.1} s", timeout.as_secs_f64());
    }
    if e.is_connect() {
        let mut m = String::from("connection failed");
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            m = format!("connection failed: {s}");
            src = s.source();
        }
        return m;
    }
    describe(e)
}
