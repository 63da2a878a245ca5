//! Model discovery for the OpenAI dialects: without `--model`, the run asks the server
//! which models it serves (`GET /v1/models`) before anything is prepared, because the
//! model name goes into every request body.
//!
//! Why not just omit `model`: most OpenAI-compatible servers (vLLM, SGLang, TGI's
//! Messages API, hosted gateways) refuse a request without it, and a server serving
//! several models must be told which one; picking one silently would measure a model
//! the user did not choose. So: the only model is used (and recorded in the log
//! header, with `options.model_discovered`), several fail naming the choices, and a
//! server whose list fails (some do not implement it) fails asking for `--model`.

use std::time::Duration;

use reqwest::header::HeaderMap;
use serde::Deserialize;

use crate::error::ReplayError;

/// Bound of the model list's body.
const MAX_LIST_BYTES: usize = 1 << 20;
/// Names shown when the server serves several models.
const MAX_NAMED: usize = 8;

#[derive(Deserialize)]
struct List {
    data: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    id: String,
}

/// The model to use: the only one the server lists at `url` (its `/v1/models`).
pub(crate) async fn discover(
    client: &reqwest::Client,
    url: &reqwest::Url,
    headers: &HeaderMap,
    timeout: Duration,
) -> Result<String, ReplayError> {
    let shown = formats::redact_url(url.as_str());
    let fail = |why: String| {
        ReplayError::Config(format!(
            "no --model given and GET {shown} {why}: give the model with --model"
        ))
    };
    let body = async {
        let resp = client
            .get(url.clone())
            .headers(headers.clone())
            .send()
            .await?;
        let status = resp.status();
        let body = read_bounded(resp).await?;
        Ok::<_, reqwest::Error>((status, body))
    };
    let (status, body) = match tokio::time::timeout(timeout, body).await {
        Err(_) => return Err(fail(format!("got no answer within {timeout:?}"))),
        // A certificate problem is not solved by --model: say what is.
        Ok(Err(e)) if crate::net::tls::tls_cause(&e).is_some() => {
            return Err(ReplayError::Endpoint {
                endpoint: shown.clone(),
                message: crate::net::transport_error::describe(&e),
            });
        }
        Ok(Err(e)) => {
            return Err(fail(format!(
                "failed ({})",
                crate::net::transport_error::describe(&e)
            )));
        }
        Ok(Ok(answer)) => answer,
    };
    if !status.is_success() {
        let msg = crate::dialect::adapter::error_message(&body);
        let code = status.as_u16();
        return Err(fail(if body.iter().all(u8::is_ascii_whitespace) {
            format!("answered HTTP {code} with an empty body")
        } else {
            format!("answered HTTP {code} ({msg})")
        }));
    }
    pick(&body).map_err(|why| match why {
        Pick::Several(names) => ReplayError::Config(format!(
            "no --model given and the server serves {names}: choose one with --model"
        )),
        Pick::Unusable(why) => fail(why),
    })
}

async fn read_bounded(mut resp: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_LIST_BYTES {
            break;
        }
    }
    Ok(body)
}

/// Why a model list gives no single model.
#[derive(Debug, PartialEq, Eq)]
enum Pick {
    /// Several models: how many, and their names (bounded).
    Several(String),
    /// Not a list, or an empty one.
    Unusable(String),
}

/// The only model of an OpenAI model list (`{"data":[{"id":..},..]}`; an id listed
/// twice counts once).
fn pick(body: &[u8]) -> Result<String, Pick> {
    let list: List = serde_json::from_slice(body).map_err(|e| {
        Pick::Unusable(format!(
            "did not answer an OpenAI model list ({})",
            crate::dialect::adapter::bounded(&e.to_string())
        ))
    })?;
    let mut ids: Vec<String> = Vec::new();
    for e in list.data {
        if !ids.contains(&e.id) {
            ids.push(e.id);
        }
    }
    match ids.len() {
        0 => Err(Pick::Unusable("listed no model".into())),
        1 => Ok(ids.pop().expect("one id")),
        n => {
            let shown: Vec<&str> = ids.iter().take(MAX_NAMED).map(String::as_str).collect();
            let more = if n > MAX_NAMED {
                format!(" and {} more", n - MAX_NAMED)
            } else {
                String::new()
            };
            Err(Pick::Several(format!(
                "{n} models ({}{more})",
                shown.join(", ")
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_only_model_is_picked() {
        let body = br#"{"object":"list","data":[{"id":"llama-3","object":"model"}]}"#;
        assert_eq!(pick(body).unwrap(), "llama-3");
        // llama.cpp lists the model under `models` too, and the same id twice is one.
        let body = br#"{"models":[{"name":"m"}],"data":[{"id":"m"},{"id":"m"}]}"#;
        assert_eq!(pick(body).unwrap(), "m");
    }

    #[test]
    fn several_models_are_named_and_bounded() {
        let body = br#"{"data":[{"id":"a"},{"id":"b"}]}"#;
        assert_eq!(
            pick(body).unwrap_err(),
            Pick::Several("2 models (a, b)".into())
        );
        let many: Vec<String> = (0..10).map(|i| format!(r#"{{"id":"m{i}"}}"#)).collect();
        let body = format!(r#"{{"data":[{}]}}"#, many.join(","));
        let Pick::Several(names) = pick(body.as_bytes()).unwrap_err() else {
            panic!("several")
        };
        assert!(names.starts_with("10 models (m0, m1,"), "{names}");
        assert!(names.ends_with("m7 and 2 more)"), "{names}");
    }

    #[test]
    fn empty_and_malformed_lists_are_unusable() {
        for body in [
            &br#"{"data":[]}"#[..],
            b"<html>",
            br#"{"data":[{"name":"x"}]}"#,
        ] {
            assert!(matches!(pick(body), Err(Pick::Unusable(_))), "{body:?}");
        }
    }
}
