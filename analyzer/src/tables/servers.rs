//! The report's *Servers* section: which server, build and cache state each run
//! measured, from its log header (`server_identity`, `prefix_cache_reset`), one line a
//! run. Why in the report: two runs against "the endpoint" may have measured two server
//! versions or a cold and a warm prefix cache; the tables alone cannot show it.

use formats::{PrefixCacheReset, ServerIdentity};

use crate::report::Report;

/// Cache settings shown (the log keeps them all): vLLM's, SGLang's, llama.cpp's, TGI's.
const SHOWN: [&str; 10] = [
    "enable_prefix_caching",
    "block_size",
    "num_gpu_blocks",
    "kv_cache_size_tokens",
    "disable_radix_cache",
    "page_size",
    "max_total_num_tokens",
    "n_ctx",
    "total_slots",
    "max_batch_total_tokens",
];

/// The section, or nothing when no run recorded either field.
pub fn markdown(report: &Report) -> String {
    let lines: Vec<String> = report
        .runs
        .iter()
        .filter(|r| r.server_identity.is_some() || r.prefix_cache_reset.is_some())
        .map(|r| {
            let mut parts = Vec::new();
            if let Some(id) = &r.server_identity {
                parts.push(identity(id));
            }
            if let Some(reset) = &r.prefix_cache_reset {
                parts.push(reset_line(reset));
            }
            format!("- {}: {}\n", r.run, parts.join("; "))
        })
        .collect();
    if lines.is_empty() {
        return String::new();
    }
    format!("## Servers\n\n{}", lines.concat())
}

/// `vllm 0.32.0 (Server: uvicorn); model tiny-llama (max_model_len 2048); cache ...`.
pub fn identity(id: &ServerIdentity) -> String {
    if id.is_empty() {
        return "the server said nothing about itself".into();
    }
    let mut who = match (&id.kind, &id.version) {
        (Some(k), Some(v)) => format!("{k} {v}"),
        (Some(k), None) => k.clone(),
        (None, Some(v)) => format!("version {v}"),
        (None, None) => "unknown server".into(),
    };
    if let Some(s) = &id.server_header {
        who.push_str(&format!(" (Server: {s})"));
    }
    let mut parts = vec![who];
    if !id.models.is_empty() {
        let models: Vec<String> = id
            .models
            .iter()
            .map(|m| match m.max_model_len {
                Some(n) => format!("{} (max_model_len {n})", m.id),
                None => m.id.clone(),
            })
            .collect();
        let label = if models.len() == 1 { "model" } else { "models" };
        parts.push(format!("{label} {}", models.join(", ")));
    }
    let cache: Vec<String> = SHOWN
        .iter()
        .filter_map(|k| id.cache_config.get(*k).map(|v| format!("{k}={v}")))
        .collect();
    if !cache.is_empty() {
        parts.push(format!("cache {}", cache.join(", ")));
    }
    parts.join("; ")
}

/// `prefix cache reset before the run: ok (POST /reset_prefix_cache, 2.1 ms before the start)`.
pub fn reset_line(r: &PrefixCacheReset) -> String {
    let detail = match (r.outcome.as_str(), &r.request) {
        ("unsupported", _) => format!("tried {}", r.tried.join(", ")),
        (_, Some(req)) => match r.http_status {
            Some(s) if r.outcome != "ok" => format!("{req}: HTTP {s}"),
            _ => req.clone(),
        },
        (_, None) => String::new(),
    };
    let ms = r.before_start_ns as f64 / 1e6;
    format!(
        "prefix cache reset before the run: {} ({detail}, {ms:.1} ms before the start)",
        r.outcome
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::ServedModel;

    #[test]
    fn a_line_names_the_server_its_models_cache_and_reset() {
        let mut id = ServerIdentity {
            kind: Some("vllm".into()),
            version: Some("0.32.0".into()),
            server_header: Some("uvicorn".into()),
            models: vec![ServedModel {
                id: "tiny-llama".into(),
                max_model_len: Some(2048),
            }],
            ..Default::default()
        };
        id.cache_config.insert("block_size".into(), "128".into());
        id.cache_config
            .insert("enable_prefix_caching".into(), "True".into());
        id.cache_config.insert("cache_dtype".into(), "auto".into());
        assert_eq!(
            identity(&id),
            "vllm 0.32.0 (Server: uvicorn); model tiny-llama (max_model_len 2048); \
             cache enable_prefix_caching=True, block_size=128"
        );
        assert_eq!(
            identity(&ServerIdentity::default()),
            "the server said nothing about itself"
        );
        let mut r = PrefixCacheReset {
            outcome: "ok".into(),
            request: Some("POST /reset_prefix_cache".into()),
            tried: vec!["POST /reset_prefix_cache".into()],
            attempts: 1,
            http_status: Some(200),
            answer: Some(r#"{"success":true}"#.into()),
            at_unix_ns: 1,
            before_start_ns: 2_100_000,
        };
        assert_eq!(
            reset_line(&r),
            "prefix cache reset before the run: ok (POST /reset_prefix_cache, 2.1 ms before the start)"
        );
        r.outcome = "unsupported".into();
        r.request = None;
        assert!(reset_line(&r).contains("unsupported (tried POST /reset_prefix_cache"));
    }
}
