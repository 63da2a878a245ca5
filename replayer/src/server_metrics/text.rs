//! A strict parser of the Prometheus text exposition format (0.0.4, and the OpenMetrics
//! text that servers send under the same path: `# EOF`, `# UNIT` are understood).
//!
//! Why not a crate: the one maintained-looking candidate, `prometheus-parse` 0.2.5 (last
//! release 2023), matches metric names with `\w+`, which excludes `:`, so it cannot read
//! `vllm:num_requests_running` or any `sglang:` name, the very series this is for; it
//! also pulls in `regex` and `chrono`. The grammar is small (a name, an optional label
//! set with three escapes, a float, an optional timestamp), so a hand parser of about a
//! hundred lines with tests is cheaper to trust than a dependency.
//!
//! Strict: a line that is neither a comment, blank, nor a well-formed sample is an error
//! naming its line number; a scrape that half-parses is not half-used.

/// The declared type of a metric family (`# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    /// In the order written.
    pub labels: Vec<(String, String)>,
    pub value: f64,
    /// Its family's `# TYPE`, `Untyped` without one.
    pub kind: Kind,
}

impl Series {
    /// `name{a="x",b="y"}` with labels sorted by name (just `name` without labels):
    /// the same series always gets the same key.
    pub fn key(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let mut labels: Vec<&(String, String)> = self.labels.iter().collect();
        labels.sort();
        let inner: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
            .collect();
        format!("{}{{{}}}", self.name, inner.join(","))
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Most samples one exposition may hold (a real vLLM's has about a thousand, every
/// histogram bucket included): a bound on what a hostile answer costs once parsed
/// (each sample takes tens of bytes beyond its text).
pub const MAX_SAMPLES: usize = 100_000;

/// Parses a whole exposition.
pub fn parse(text: &str) -> Result<Vec<Series>, String> {
    let mut types: std::collections::HashMap<String, Kind> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end_matches('\r');
        let fail = |m: &str| format!("line {}: {m}", i + 1);
        if line.trim().is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let mut words = comment.split_whitespace();
            if words.next() == Some("TYPE") {
                let name = words.next().ok_or_else(|| fail("TYPE without a name"))?;
                let kind = match words.next() {
                    Some("counter") => Kind::Counter,
                    Some("gauge") => Kind::Gauge,
                    Some("histogram") | Some("gaugehistogram") => Kind::Histogram,
                    Some("summary") => Kind::Summary,
                    Some("untyped") | Some("unknown") | Some("info") | Some("stateset") => {
                        Kind::Untyped
                    }
                    other => return Err(fail(&format!("unknown TYPE {other:?}"))),
                };
                types.insert(name.to_string(), kind);
            }
            continue;
        }
        let (name, labels, rest) = sample_line(line).map_err(|m| fail(&m))?;
        // value [timestamp] [# exemplar (OpenMetrics)]
        let rest = rest.split_once(" #").map_or(rest, |(before, _)| before);
        let mut fields = rest.split_whitespace();
        let value = fields.next().ok_or_else(|| fail("no value"))?;
        let value = parse_value(value).ok_or_else(|| fail(&format!("bad value `{value}`")))?;
        if let Some(ts) = fields.next()
            && ts.parse::<f64>().is_err()
        {
            return Err(fail(&format!("bad timestamp `{ts}`")));
        }
        if fields.next().is_some() {
            return Err(fail("text after the timestamp"));
        }
        if out.len() == MAX_SAMPLES {
            return Err(fail(&format!("more than {MAX_SAMPLES} samples")));
        }
        let kind = family_kind(&types, name);
        out.push(Series {
            name: name.to_string(),
            labels,
            value,
            kind,
        });
    }
    Ok(out)
}

/// The type of the family a sample belongs to: its own name's, or (histogram, summary
/// and counter parts) the name without `_bucket`, `_sum`, `_count`, `_total`, `_created`.
fn family_kind(types: &std::collections::HashMap<String, Kind>, name: &str) -> Kind {
    let find = |n: &str| types.get(n).copied();
    if let Some(k) = find(name) {
        return k;
    }
    for suffix in ["_bucket", "_sum", "_count", "_total", "_created"] {
        if let Some(k) = name.strip_suffix(suffix).and_then(find) {
            return k;
        }
    }
    Kind::Untyped
}

type Labels = Vec<(String, String)>;

/// Splits `name{labels} rest` into its parts.
fn sample_line(line: &str) -> Result<(&str, Labels, &str), String> {
    let end = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .unwrap_or(line.len());
    let name = &line[..end];
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(format!("bad metric name in `{line}`"));
    }
    let rest = &line[end..];
    let Some(inner) = rest.strip_prefix('{') else {
        if !rest.starts_with([' ', '\t']) {
            return Err(format!("bad metric name in `{line}`"));
        }
        return Ok((name, Vec::new(), rest));
    };
    let (labels, after) = label_set(inner)?;
    Ok((name, labels, after))
}

/// Parses `a="x",b="y"}` (after the `{`); returns the labels and what follows the `}`.
fn label_set(mut s: &str) -> Result<(Labels, &str), String> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start();
        if let Some(after) = s.strip_prefix('}') {
            return Ok((labels, after));
        }
        let eq = s.find('=').ok_or("label without `=`")?;
        let key = s[..eq].trim();
        let valid = !key.is_empty()
            && !key.starts_with(|c: char| c.is_ascii_digit())
            && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!("bad label name `{key}`"));
        }
        let quoted = s[eq + 1..]
            .trim_start()
            .strip_prefix('"')
            .ok_or("label value without quotes")?;
        let (value, after) = quoted_value(quoted)?;
        labels.push((key.to_string(), value));
        s = after.trim_start();
        if let Some(after) = s.strip_prefix(',') {
            s = after;
        } else if !s.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

/// Reads an escaped label value up to its closing quote.
fn quoted_value(s: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &s[i + 1..])),
            '\\' => match chars.next() {
                Some((_, '\\')) => value.push('\\'),
                Some((_, '"')) => value.push('"'),
                Some((_, 'n')) => value.push('\n'),
                other => return Err(format!("bad escape `\\{:?}`", other.map(|x| x.1))),
            },
            c => value.push(c),
        }
    }
    Err("unterminated label value".into())
}

/// A sample value: a float, `NaN`, `+Inf`, `-Inf` (Go's and Python's spellings).
fn parse_value(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => v.parse::<f64>().ok().filter(|x| x.is_finite()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VLLM: &str = r#"# HELP vllm:num_requests_running Number of requests in model execution batches.
# TYPE vllm:num_requests_running gauge
vllm:num_requests_running{engine="0",model_name="meta-llama/Llama-2-13b"} 3.0
# TYPE vllm:num_preemptions_total counter
vllm:num_preemptions_total{model_name="m"} 7.0
# TYPE vllm:e2e_request_latency_seconds histogram
vllm:e2e_request_latency_seconds_bucket{le="0.3",model_name="m"} 1.0
vllm:e2e_request_latency_seconds_bucket{le="+Inf",model_name="m"} 4.0
vllm:e2e_request_latency_seconds_sum{model_name="m"} 12.5
tgi_queue_size 2
odd{a="x\"y\\z\nw",} -Inf 1700000000000 # {trace_id="t"} 1
# EOF
"#;

    #[test]
    fn reads_vllm_names_types_labels_and_escapes() {
        let s = parse(VLLM).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s[0].name, "vllm:num_requests_running");
        assert_eq!(s[0].kind, Kind::Gauge);
        assert_eq!(s[0].value, 3.0);
        assert_eq!(
            s[0].key(),
            "vllm:num_requests_running{engine=\"0\",model_name=\"meta-llama/Llama-2-13b\"}"
        );
        assert_eq!(s[1].kind, Kind::Counter);
        assert_eq!(s[2].kind, Kind::Histogram);
        assert_eq!(s[3].value, 4.0);
        assert_eq!(s[4].kind, Kind::Histogram);
        assert_eq!(
            (s[5].kind, s[5].value, s[5].key().as_str()),
            (Kind::Untyped, 2.0, "tgi_queue_size")
        );
        assert_eq!(
            s[6].labels,
            vec![("a".to_string(), "x\"y\\z\nw".to_string())]
        );
        assert_eq!(s[6].value, f64::NEG_INFINITY);
        assert_eq!(s[6].key(), "odd{a=\"x\\\"y\\\\z\\nw\"}");
    }

    #[test]
    fn label_keys_are_sorted() {
        let s = parse("m{b=\"2\",a=\"1\"} 1\n").unwrap();
        assert_eq!(s[0].key(), "m{a=\"1\",b=\"2\"}");
    }

    #[test]
    fn malformed_lines_are_errors_with_their_line_number() {
        for (text, want) in [
            ("ok 1\nbad{a=\"1\" 2\n", "line 2"),
            ("m{a=1} 2\n", "without quotes"),
            ("m{a=\"1} 2\n", "unterminated"),
            ("m 1x\n", "bad value"),
            ("m\n", "bad metric name"),
            ("9m 1\n", "bad metric name"),
            ("m{a=\"\\t\"} 1\n", "bad escape"),
            ("# TYPE m nonsense\n", "unknown TYPE"),
            ("m 1 notatime\n", "bad timestamp"),
            ("m 1 2 3\n", "after the timestamp"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn simulator_exposition_parses() {
        // The shape the simulator's /metrics writes (tested against it in tests/).
        let s = parse("vllm:kv_cache_usage_perc{model_name=\"m\"} 0.25\nvllm:x_bucket{model_name=\"m\",le=\"+Inf\"} 3\n").unwrap();
        assert_eq!(s[0].value, 0.25);
        assert_eq!(s[1].labels[1], ("le".into(), "+Inf".into()));
    }
}
