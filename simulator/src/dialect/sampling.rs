//! The 2023 servers' `SamplingParams`, as their source checks a request's keys and
//! values: what answers a plain HTTP 500 (a Python `TypeError` or `ValueError` raised in
//! the handler, before any response) and what passes.
//!
//! Why here and exact: the simulator is where a client meets these failures without a
//! GPU, so a key the real server rejects must be rejected here too (or a client that
//! sends it would pass every simulated test and fail every real run), and a key it
//! accepts must pass.
//!
//! Checked against the source:
//! - vLLM's legacy `vllm/entrypoints/api_server.py` pops `prompt` and `stream` and calls
//!   `SamplingParams(**request_dict)`; `vllm/sampling_params.py` of the v0.1.4 release
//!   (PyPI sdist, 2023-08-25; the original benchmark's commit 28873a2 is dated to v0.1.4
//!   in `../shared/captures/reconstructed/README.md`: the repository snapshot was too
//!   large to fetch here, so the commit itself was not read) takes 12 keywords: `n`,
//!   `best_of`, `presence_penalty`, `frequency_penalty`, `temperature`, `top_p`, `top_k`,
//!   `use_beam_search`, `stop`, `ignore_eos`, `max_tokens`, `logprobs` (lines 45-59) and
//!   checks them in `_verify_args`, `_verify_beam_search`, `_verify_greedy_sampling`
//!   (lines 85-130). v0.1.3 has the same 12; v0.1.5 (2023-09-08) added `length_penalty`
//!   and `early_stopping`; `stop_token_ids` and `skip_special_tokens` came later still.
//! - LightLLM at 718e6d6 (2023-08-28): `lightllm/server/api_server.py` pops `inputs`,
//!   reads `request_dict["parameters"]` (other top-level keys are ignored), calls
//!   `SamplingParams(**parameters)` then `verify()`; `lightllm/server/sampling_params.py`
//!   takes 8 keywords: `do_sample`, `presence_penalty`, `frequency_penalty`,
//!   `temperature`, `top_p`, `top_k`, `ignore_eos`, `max_new_tokens` (lines 9-19);
//!   `do_sample == False` (the default) resets temperature, top_p, top_k to 1, 1, 1
//!   (lines 28-34); `verify()` (lines 37-50). `stop_sequences` and `return_details` came
//!   in later LightLLM versions.
//!
//! Python semantics kept: a JSON bool is a number in comparisons (`True == 1`), a
//! string, list, object or null compared with a number raises `TypeError` (a 500, like
//! a failed check), `None` is accepted where the parameter defaults to `None`.

use serde_json::{Map, Value};

/// Python truthiness of a JSON value.
pub(crate) fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `_SAMPLING_EPS` of both servers.
const EPS: f64 = 1e-5;

/// `SamplingParams.__init__` keywords of vLLM 0.1.4.
pub(crate) const VLLM_KEYS: [&str; 12] = [
    "n",
    "best_of",
    "presence_penalty",
    "frequency_penalty",
    "temperature",
    "top_p",
    "top_k",
    "use_beam_search",
    "stop",
    "ignore_eos",
    "max_tokens",
    "logprobs",
];

/// `SamplingParams.__init__` keywords of LightLLM at 718e6d6.
pub(crate) const LIGHTLLM_KEYS: [&str; 8] = [
    "do_sample",
    "presence_penalty",
    "frequency_penalty",
    "temperature",
    "top_p",
    "top_k",
    "ignore_eos",
    "max_new_tokens",
];

/// A value as Python compares it with a float; `None` for what raises `TypeError`.
fn py_num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

/// Parameter `key` as a number, `default` when absent; `Err` when Python would raise.
fn num(params: &Map<String, Value>, key: &str, default: f64) -> Result<f64, ()> {
    params.get(key).map_or(Ok(default), |v| py_num(v).ok_or(()))
}

/// Like [`num`] for a parameter whose default is `None` (`None` stays `None`).
fn opt_num(params: &Map<String, Value>, key: &str) -> Result<Option<f64>, ()> {
    match params.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => py_num(v).map(Some).ok_or(()),
    }
}

/// vLLM 0.1.4's `SamplingParams(**params)`: `Err` when it raises (unknown key, bad type
/// or value). `params` is the request without `prompt` and `stream`.
pub(crate) fn vllm_0_1_4(params: &Map<String, Value>) -> Result<(), ()> {
    if params.keys().any(|k| !VLLM_KEYS.contains(&k.as_str())) {
        return Err(());
    }
    let n = num(params, "n", 1.0)?;
    let best_of = opt_num(params, "best_of")?.unwrap_or(n);
    let presence = num(params, "presence_penalty", 0.0)?;
    let frequency = num(params, "frequency_penalty", 0.0)?;
    let temperature = num(params, "temperature", 1.0)?;
    let top_p = num(params, "top_p", 1.0)?;
    let top_k = num(params, "top_k", -1.0)?;
    let max_tokens = num(params, "max_tokens", 16.0)?;
    let logprobs = opt_num(params, "logprobs")?;
    // `list(stop)` of a number raises; None, a string or any iterable passes.
    if params
        .get("stop")
        .is_some_and(|s| matches!(s, Value::Number(_) | Value::Bool(_)))
    {
        return Err(());
    }
    let valid = n >= 1.0
        && best_of >= n
        && (-2.0..=2.0).contains(&presence)
        && (-2.0..=2.0).contains(&frequency)
        && temperature >= 0.0
        && top_p > 0.0
        && top_p <= 1.0
        && !(top_k < -1.0 || top_k == 0.0)
        && max_tokens >= 1.0
        && logprobs.is_none_or(|l| l >= 0.0);
    if !valid {
        return Err(());
    }
    let beam = params.get("use_beam_search").is_some_and(truthy);
    let defaults_kept = top_p >= 1.0 - EPS && top_k == -1.0;
    let ok = if beam {
        best_of != 1.0 && temperature <= EPS && defaults_kept
    } else if temperature < EPS {
        best_of <= 1.0 && defaults_kept
    } else {
        true
    };
    if ok { Ok(()) } else { Err(()) }
}

/// Python's `v == False`: `False`, `0` and `0.0` (not `None`).
fn py_eq_false(v: &Value) -> bool {
    py_num(v) == Some(0.0)
}

/// LightLLM 718e6d6's `SamplingParams(**parameters)` then `verify()`: `Err` when either
/// raises.
pub(crate) fn lightllm_718e6d6(params: &Map<String, Value>) -> Result<(), ()> {
    if params.keys().any(|k| !LIGHTLLM_KEYS.contains(&k.as_str())) {
        return Err(());
    }
    let greedy = params.get("do_sample").is_none_or(py_eq_false);
    let (mut temperature, top_p, mut top_k) = if greedy {
        // Overwritten before any comparison: their values are never looked at.
        (1.0, 1.0, 1.0)
    } else {
        (
            num(params, "temperature", 1.0)?,
            num(params, "top_p", 1.0)?,
            num(params, "top_k", -1.0)?,
        )
    };
    if (0.0..EPS).contains(&temperature) {
        temperature = 1.0;
        top_k = 1.0;
    }
    let valid = num(params, "presence_penalty", 0.0)? >= 0.0
        && num(params, "frequency_penalty", 0.0)? >= 0.0
        && temperature > 0.0
        && top_p > 0.0
        && top_p <= 1.0
        && !(top_k < -1.0 || top_k == 0.0)
        && num(params, "max_new_tokens", 16.0)? >= 1.0;
    if valid { Ok(()) } else { Err(()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!(),
        }
    }

    #[test]
    fn vllm_accepts_what_the_replayer_sends_and_every_0_1_4_keyword() {
        assert!(vllm_0_1_4(&map(json!({"max_tokens": 8, "ignore_eos": true, "n": 1}))).is_ok());
        let all = json!({"n": 1, "best_of": 1, "presence_penalty": 0.5,
            "frequency_penalty": -0.5, "temperature": 0.7, "top_p": 0.9, "top_k": 40,
            "use_beam_search": false, "stop": ["\n"], "ignore_eos": true,
            "max_tokens": 8, "logprobs": 1});
        assert!(vllm_0_1_4(&map(all)).is_ok());
        assert!(
            vllm_0_1_4(&map(
                json!({"stop": "x", "logprobs": null, "best_of": null})
            ))
            .is_ok()
        );
    }

    #[test]
    fn vllm_rejects_later_keywords_and_bad_values() {
        for bad in [
            json!({"length_penalty": 1.0}),
            json!({"early_stopping": false}),
            json!({"stop_token_ids": [2]}),
            json!({"skip_special_tokens": true}),
            json!({"min_tokens": 1}),
            json!({"max_tokens": 0}),
            json!({"max_tokens": "8"}),
            json!({"temperature": -0.1}),
            json!({"temperature": null}),
            json!({"top_p": 0}),
            json!({"top_k": 0}),
            json!({"presence_penalty": 2.5}),
            json!({"n": 2, "best_of": 1}),
            json!({"logprobs": -1}),
            json!({"stop": 3}),
            // Greedy: best_of, top_p and top_k must keep their defaults.
            json!({"temperature": 0, "top_k": 5}),
            json!({"temperature": 0, "best_of": 2}),
            // Beam search: best_of > 1, temperature 0.
            json!({"use_beam_search": true}),
            json!({"use_beam_search": true, "best_of": 2, "temperature": 1.0}),
        ] {
            assert!(vllm_0_1_4(&map(bad.clone())).is_err(), "{bad}");
        }
        assert!(
            vllm_0_1_4(&map(
                json!({"use_beam_search": true, "best_of": 2, "temperature": 0})
            ))
            .is_ok()
        );
        // Python compares bools as numbers.
        assert!(vllm_0_1_4(&map(json!({"top_p": true}))).is_ok());
    }

    #[test]
    fn lightllm_accepts_its_eight_keywords_and_greedy_ignores_sampling_values() {
        assert!(
            lightllm_718e6d6(&map(json!({"do_sample": false, "ignore_eos": true,
                "max_new_tokens": 8})))
            .is_ok()
        );
        // do_sample false: temperature, top_p and top_k are overwritten before checks.
        assert!(lightllm_718e6d6(&map(json!({"temperature": "x", "top_k": 0}))).is_ok());
        assert!(
            lightllm_718e6d6(&map(json!({"do_sample": true, "temperature": 0.0,
                "top_p": 0.5, "top_k": 3, "presence_penalty": 0.1})))
            .is_ok()
        );
    }

    #[test]
    fn lightllm_rejects_later_keywords_and_bad_values() {
        for bad in [
            json!({"stop_sequences": ["\n"]}),
            json!({"return_details": true}),
            json!({"max_tokens": 8}),
            json!({"max_new_tokens": 0}),
            json!({"max_new_tokens": "8"}),
            json!({"presence_penalty": -0.1}),
            json!({"frequency_penalty": null}),
            json!({"do_sample": true, "temperature": -1.0}),
            json!({"do_sample": true, "top_p": 1.5}),
            json!({"do_sample": true, "top_k": 0}),
            // `None == False` is false: sampling, and None compared raises.
            json!({"do_sample": null, "temperature": null}),
        ] {
            assert!(lightllm_718e6d6(&map(bad.clone())).is_err(), "{bad}");
        }
    }
}
