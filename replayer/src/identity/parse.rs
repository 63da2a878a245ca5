//! What each identity endpoint's answer says, read into a [`ServerIdentity`]: pure
//! functions of the bodies, so every server's format is tested without the server.
//!
//! Formats (documented by each server, checked against the real ones where the project
//! has them, see `../shared/real-servers/`):
//! * OpenAI `GET /v1/models`: `{"data":[{"id","owned_by","max_model_len"}]}` (vLLM and
//!   SGLang add `max_model_len`; `owned_by` is `vllm`, `sglang`, `llamacpp`...).
//! * vLLM `GET /version`: `{"version":"0.32.0"}`.
//! * TGI `GET /info`: `{"model_id","version","max_total_tokens","max_batch_total_tokens",..}`.
//! * SGLang `GET /get_server_info`: the server arguments (`model_path`, `context_length`,
//!   `page_size`, `disable_radix_cache`...), `version`, and `internal_states` (with
//!   `max_total_num_tokens`).
//! * llama.cpp `GET /props`: `{"default_generation_settings":{"n_ctx"},"total_slots",
//!   "model_path","build_info"}`.
//! * vLLM `GET /metrics`: `vllm:cache_config_info{block_size="128",...} 1.0`, an info
//!   gauge whose labels are the cache settings.

use formats::{ServedModel, ServerIdentity};
use serde_json::Value;

/// Longest string kept inside a recorded body (`chat_template` and the like are cut).
const MAX_STRING: usize = 200;
/// Most elements of an array kept inside a recorded body.
const MAX_ARRAY: usize = 16;
/// Most bytes of a recorded body.
pub(crate) const MAX_RECORDED: usize = 4096;
/// Most models kept from a list.
const MAX_MODELS: usize = 32;
/// Most cache settings kept, and the longest value.
const MAX_SETTINGS: usize = 64;
const MAX_SETTING_LEN: usize = 128;

/// Which endpoint answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Models,
    Version,
    TgiInfo,
    SglangInfo,
    LlamacppProps,
    Metrics,
}

impl Endpoint {
    pub(crate) const ALL: [Endpoint; 6] = [
        Endpoint::Models,
        Endpoint::Version,
        Endpoint::TgiInfo,
        Endpoint::SglangInfo,
        Endpoint::LlamacppProps,
        Endpoint::Metrics,
    ];

    pub(crate) fn path(self) -> &'static str {
        match self {
            Endpoint::Models => "/v1/models",
            Endpoint::Version => "/version",
            Endpoint::TgiInfo => "/info",
            Endpoint::SglangInfo => "/get_server_info",
            Endpoint::LlamacppProps => "/props",
            Endpoint::Metrics => "/metrics",
        }
    }

    /// Most bytes read from its answer.
    pub(crate) fn limit(self) -> usize {
        match self {
            // A real vLLM's is about 50 KB; histograms grow with the engines.
            Endpoint::Metrics => 4 << 20,
            _ => 256 << 10,
        }
    }
}

/// Adds what `endpoint`'s answer `body` says to `id`; returns whether it was an answer
/// of that endpoint's format (and so worth recording).
pub(crate) fn absorb(id: &mut ServerIdentity, endpoint: Endpoint, body: &[u8]) -> bool {
    if endpoint == Endpoint::Metrics {
        return metrics(id, body);
    }
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let v = Value::Object(v);
    match endpoint {
        Endpoint::Models => models(id, &v),
        Endpoint::Version => version(id, &v),
        Endpoint::TgiInfo => tgi(id, &v),
        Endpoint::SglangInfo => sglang(id, &v),
        Endpoint::LlamacppProps => llamacpp(id, &v),
        Endpoint::Metrics => false,
    }
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(bounded(s, MAX_SETTING_LEN)),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn bounded(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn set_kind(id: &mut ServerIdentity, kind: &str) {
    if id.kind.is_none() {
        id.kind = Some(kind.to_string());
    }
}

fn set_version(id: &mut ServerIdentity, v: Option<&Value>) {
    if id.version.is_none() {
        id.version = v.and_then(text).filter(|s| !s.is_empty());
    }
}

/// Adds a model, or its limit to the model already listed under that id.
fn add_model(id: &mut ServerIdentity, name: &str, max_model_len: Option<u64>) {
    if let Some(m) = id.models.iter_mut().find(|m| m.id == name) {
        m.max_model_len = m.max_model_len.or(max_model_len);
    } else if id.models.len() < MAX_MODELS {
        id.models.push(ServedModel {
            id: bounded(name, MAX_SETTING_LEN),
            max_model_len,
        });
    }
}

fn add_setting(id: &mut ServerIdentity, key: &str, v: Option<&Value>) {
    if let Some(t) = v.and_then(text)
        && id.cache_config.len() < MAX_SETTINGS
    {
        id.cache_config.insert(key.to_string(), t);
    }
}

fn models(id: &mut ServerIdentity, v: &Value) -> bool {
    let Some(list) = v.get("data").and_then(Value::as_array) else {
        return false;
    };
    for m in list {
        let Some(name) = m.get("id").and_then(Value::as_str) else {
            continue;
        };
        add_model(id, name, m.get("max_model_len").and_then(Value::as_u64));
        match m.get("owned_by").and_then(Value::as_str) {
            Some(o @ ("vllm" | "sglang")) => set_kind(id, o),
            Some("llamacpp") => set_kind(id, "llamacpp"),
            _ => {}
        }
    }
    true
}

fn version(id: &mut ServerIdentity, v: &Value) -> bool {
    if v.get("version").and_then(text).is_none() {
        return false;
    }
    set_version(id, v.get("version"));
    true
}

fn tgi(id: &mut ServerIdentity, v: &Value) -> bool {
    let Some(model) = v.get("model_id").and_then(Value::as_str) else {
        return false;
    };
    set_kind(id, "tgi");
    set_version(id, v.get("version"));
    add_model(id, model, v.get("max_total_tokens").and_then(Value::as_u64));
    add_setting(
        id,
        "max_batch_total_tokens",
        v.get("max_batch_total_tokens"),
    );
    true
}

fn sglang(id: &mut ServerIdentity, v: &Value) -> bool {
    let Some(model) = v.get("model_path").and_then(Value::as_str) else {
        return false;
    };
    set_kind(id, "sglang");
    set_version(id, v.get("version"));
    let name = v
        .get("served_model_name")
        .and_then(Value::as_str)
        .unwrap_or(model);
    add_model(id, name, v.get("context_length").and_then(Value::as_u64));
    for key in ["page_size", "disable_radix_cache", "max_total_num_tokens"] {
        let state = v
            .get("internal_states")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|s| s.get(key));
        add_setting(id, key, v.get(key).or(state));
    }
    true
}

fn llamacpp(id: &mut ServerIdentity, v: &Value) -> bool {
    let settings = v.get("default_generation_settings");
    if settings.is_none() && v.get("build_info").is_none() {
        return false;
    }
    set_kind(id, "llamacpp");
    set_version(id, v.get("build_info"));
    let n_ctx = settings.and_then(|s| s.get("n_ctx"));
    add_setting(id, "n_ctx", n_ctx);
    add_setting(id, "total_slots", v.get("total_slots"));
    let model = v
        .get("model_alias")
        .or(v.get("model_path"))
        .and_then(Value::as_str);
    if let Some(m) = model {
        let n_ctx = n_ctx.and_then(Value::as_u64);
        if let [only] = id.models.as_mut_slice() {
            // llama-server serves one model, listed under its alias or file name.
            only.max_model_len = only.max_model_len.or(n_ctx);
        } else {
            add_model(id, m, n_ctx);
        }
    }
    true
}

/// The labels of the first `vllm:cache_config_info` sample (whole lines only: a body
/// cut at its bound still gives the lines before the cut).
fn metrics(id: &mut ServerIdentity, body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let Some(line) = text
        .lines()
        .find(|l| l.starts_with("vllm:cache_config_info{"))
    else {
        return false;
    };
    let Ok(series) = crate::server_metrics::text::parse(line) else {
        return false;
    };
    let Some(s) = series.first() else {
        return false;
    };
    set_kind(id, "vllm");
    for (k, v) in &s.labels {
        if id.cache_config.len() < MAX_SETTINGS {
            id.cache_config
                .insert(bounded(k, MAX_SETTING_LEN), bounded(v, MAX_SETTING_LEN));
        }
    }
    true
}

/// An answer as recorded: compact JSON, long strings and arrays shortened, at most
/// [`MAX_RECORDED`] bytes; and whether it had to be cut there.
pub(crate) fn recorded(body: &[u8]) -> (String, bool) {
    let compact = match serde_json::from_slice::<Value>(body) {
        Ok(v) => shorten(v, 0).to_string(),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
    };
    if compact.len() <= MAX_RECORDED {
        return (compact, false);
    }
    let mut end = MAX_RECORDED;
    while !compact.is_char_boundary(end) {
        end -= 1;
    }
    (compact[..end].to_string(), true)
}

/// Most nesting kept in a recorded body.
const MAX_DEPTH: usize = 4;

fn shorten(v: Value, depth: usize) -> Value {
    match v {
        Value::String(s) if s.len() > MAX_STRING => Value::String(bounded(&s, MAX_STRING)),
        Value::Array(a) if depth >= MAX_DEPTH => Value::String(format!("[{} items]", a.len())),
        Value::Object(o) if depth >= MAX_DEPTH => Value::String(format!("{{{} keys}}", o.len())),
        Value::Array(a) => {
            let n = a.len();
            let mut out: Vec<Value> = a
                .into_iter()
                .take(MAX_ARRAY)
                .map(|x| shorten(x, depth + 1))
                .collect();
            if n > MAX_ARRAY {
                out.push(Value::String(format!("… {} more", n - MAX_ARRAY)));
            }
            Value::Array(out)
        }
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, x)| (k, shorten(x, depth + 1)))
                .collect(),
        ),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(parts: &[(Endpoint, &str)]) -> ServerIdentity {
        let mut id = ServerIdentity::default();
        for (e, body) in parts {
            absorb(&mut id, *e, body.as_bytes());
        }
        id
    }

    #[test]
    fn a_real_vllm_says_its_version_model_limit_and_cache() {
        // ../shared/real-servers/vllm-cpu/README.md (vLLM 0.32.0).
        let metrics = "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n\
            # TYPE vllm:cache_config_info gauge\n\
            vllm:cache_config_info{block_size=\"128\",cache_dtype=\"auto\",enable_prefix_caching=\"True\",engine=\"0\",kv_cache_size_tokens=\"262144\",num_gpu_blocks=\"2048\"} 1.0\n\
            vllm:num_requests_running{engine=\"0\",model_name=\"tiny-llama\"} 0.0\n";
        let id = read(&[
            (
                Endpoint::Models,
                r#"{"object":"list","data":[{"id":"tiny-llama","object":"model","owned_by":"vllm","root":"/m","max_model_len":2048}]}"#,
            ),
            (Endpoint::Version, r#"{"version":"0.32.0"}"#),
            (Endpoint::TgiInfo, r#"{"detail":"Not Found"}"#),
            (Endpoint::Metrics, metrics),
        ]);
        assert_eq!(id.kind.as_deref(), Some("vllm"));
        assert_eq!(id.version.as_deref(), Some("0.32.0"));
        assert_eq!(
            id.models,
            [ServedModel {
                id: "tiny-llama".into(),
                max_model_len: Some(2048)
            }]
        );
        assert_eq!(id.cache_config["block_size"], "128");
        assert_eq!(id.cache_config["kv_cache_size_tokens"], "262144");
        assert_eq!(id.cache_config["enable_prefix_caching"], "True");
    }

    #[test]
    fn tgi_sglang_and_llamacpp_are_recognised() {
        let tgi = read(&[(
            Endpoint::TgiInfo,
            r#"{"model_id":"bigscience/bloom-560m","version":"1.0.1","max_total_tokens":2048,"max_batch_total_tokens":16000}"#,
        )]);
        assert_eq!(
            (tgi.kind.as_deref(), tgi.version.as_deref()),
            (Some("tgi"), Some("1.0.1"))
        );
        assert_eq!(tgi.models[0].max_model_len, Some(2048));
        assert_eq!(tgi.cache_config["max_batch_total_tokens"], "16000");

        let sglang = read(&[(
            Endpoint::SglangInfo,
            r#"{"model_path":"meta-llama/Llama-3.1-8B","context_length":8192,"page_size":1,"disable_radix_cache":false,"version":"0.4.6","internal_states":[{"max_total_num_tokens":400000}]}"#,
        )]);
        assert_eq!(sglang.kind.as_deref(), Some("sglang"));
        assert_eq!(sglang.version.as_deref(), Some("0.4.6"));
        assert_eq!(sglang.models[0].max_model_len, Some(8192));
        assert_eq!(sglang.cache_config["disable_radix_cache"], "false");
        assert_eq!(sglang.cache_config["max_total_num_tokens"], "400000");

        let llama = read(&[
            (
                Endpoint::Models,
                r#"{"models":[{"name":"m.gguf"}],"data":[{"id":"m.gguf","owned_by":"llamacpp"}]}"#,
            ),
            (
                Endpoint::LlamacppProps,
                r#"{"default_generation_settings":{"n_ctx":4096},"total_slots":16,"model_path":"/x/m.gguf","build_info":"b5000-abc"}"#,
            ),
        ]);
        assert_eq!(llama.kind.as_deref(), Some("llamacpp"));
        assert_eq!(llama.version.as_deref(), Some("b5000-abc"));
        assert_eq!(llama.models.len(), 1);
        assert_eq!(llama.models[0].max_model_len, Some(4096));
        assert_eq!(llama.cache_config["total_slots"], "16");
    }

    #[test]
    fn answers_of_another_shape_say_nothing() {
        let mut id = ServerIdentity::default();
        for e in Endpoint::ALL {
            for body in ["<html>404</html>", "[]", r#"{"error":"nope"}"#, ""] {
                assert!(!absorb(&mut id, e, body.as_bytes()), "{e:?} {body}");
            }
        }
        assert!(id.is_empty(), "{id:?}");
    }

    #[test]
    fn recorded_bodies_are_compact_and_bounded() {
        let template = "x".repeat(10_000);
        let body = format!(
            r#"{{ "chat_template": "{template}", "n": [ {} ], "a": {{"b":{{"c":{{"d":{{"e":1}}}}}}}} }}"#,
            (0..100)
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let (r, cut) = recorded(body.as_bytes());
        assert!(!cut);
        let v: Value = serde_json::from_str(&r).unwrap();
        assert_eq!(
            v["chat_template"].as_str().unwrap().len(),
            MAX_STRING + "…".len()
        );
        assert_eq!(v["n"].as_array().unwrap().len(), MAX_ARRAY + 1);
        assert_eq!(v["a"]["b"]["c"]["d"], "{1 keys}");
        let many: Vec<String> = (0..2000).map(|i| format!(r#""k{i}":{i}"#)).collect();
        let (r, cut) = recorded(format!("{{{}}}", many.join(",")).as_bytes());
        assert!(cut);
        assert_eq!(r.len(), MAX_RECORDED);
    }
}
