//! Import of a Mooncake trace JSONL: one object per line,
//! `{"timestamp": ms, "input_length": tokens, "output_length": tokens, "hash_ids": [..]}`
//! (the format of Mooncake's published traces; `hash_ids` names each `block_tokens`
//! block of the prompt, the last one possibly partial, and equal ids mean a shared
//! prefix).
//!
//! * `timestamp` is a non-negative integer of milliseconds; records are sorted stably
//!   by it (equal timestamps keep file order), and `arrival_ns = (timestamp - first) *
//!   10^6` exactly, then divided by `time_scale` (rounded to ns) when it is not 1.
//! * `prompt_tokens = input_length` (at least 1, at most the generator's limit) and
//!   `max_tokens = max(output_length, 1)`; `hash_ids` must have exactly
//!   `ceil(input_length / block_tokens)` entries, each below 2^63.
//! * Prompt text preserves the trace's prefix reuse (see [`crate::import::block`]).
//! * Other keys are ignored. A malformed line is a one-line error naming the file, the
//!   line and the field.

use std::io::Read;
use std::path::Path;

use formats::{
    InputFile, InputKind, MooncakeImportSpec, TraceHeader, TraceRequest, TraceSpec, TraceWriter,
};
use serde_json::Value;

use crate::GENERATOR_VERSION;
use crate::dist::{scale_ns, scale_overflow};
use crate::error::{GenError, Result};
use crate::import::azure::ImportReport;
use crate::import::block::{BlockBuilder, HASH_ID_LIMIT};
use crate::import::lines::{empty_file, for_each_line};
use crate::limits::MAX_PROMPT_TOKENS;
use crate::prompt::PromptSource;

/// Import options (the CLI flags).
#[derive(Debug, Clone)]
pub struct MooncakeOptions {
    /// Trace name; defaults to the file stem.
    pub name: Option<String>,
    pub seed: u64,
    pub time_scale: f64,
    pub max_requests: Option<u64>,
    pub block_tokens: u32,
    pub ignore_eos: bool,
}

impl Default for MooncakeOptions {
    fn default() -> Self {
        MooncakeOptions {
            name: None,
            seed: 0,
            time_scale: 1.0,
            max_requests: None,
            block_tokens: 512,
            ignore_eos: true,
        }
    }
}

/// One JSONL record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MooncakeRecord {
    pub timestamp_ms: u64,
    pub input_length: u32,
    pub output_length: u32,
    pub hash_ids: Vec<u64>,
    /// 1-based line in the file.
    pub line: usize,
}

/// Reads every record of a Mooncake JSONL, sorted stably by timestamp.
pub fn read_mooncake(path: &Path, block_tokens: u32) -> Result<Vec<MooncakeRecord>> {
    Ok(read_hashed(path, block_tokens)?.0)
}

/// [`read_mooncake`] and the sha256 of the bytes read (the file is read once: it may be
/// a FIFO).
fn read_hashed(path: &Path, block_tokens: u32) -> Result<(Vec<MooncakeRecord>, String)> {
    let mut input = InputFile::open(path, InputKind::MOONCAKE_JSONL)?;
    let records = records(&mut input, block_tokens)?;
    Ok((records, input.finish()?))
}

/// Parses every record read from `input`; `path` only labels errors.
pub fn parse_mooncake(
    input: impl Read,
    path: &Path,
    block_tokens: u32,
) -> Result<Vec<MooncakeRecord>> {
    let mut input = InputFile::from_reader(input, path, InputKind::MOONCAKE_JSONL)?;
    records(&mut input, block_tokens)
}

fn records<R: Read>(input: &mut InputFile<R>, block_tokens: u32) -> Result<Vec<MooncakeRecord>> {
    let mut records = Vec::new();
    let any = for_each_line(input, |n, line| {
        records.push(parse_record(line, n, block_tokens)?);
        Ok(())
    })?;
    if !any {
        return Err(empty_file(input, "one JSON object per line"));
    }
    records.sort_by_key(|r| r.timestamp_ms); // stable
    Ok(records)
}

fn parse_record(
    line: &str,
    n: usize,
    block_tokens: u32,
) -> std::result::Result<MooncakeRecord, String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(obj) = v else {
        return Err("expected a JSON object".into());
    };
    let field = |k: &str| obj.get(k).ok_or_else(|| format!("missing field {k}"));
    let int = |k: &str, max: u64| -> std::result::Result<u64, String> {
        let v = field(k)?;
        match v.as_u64() {
            Some(x) if x <= max => Ok(x),
            Some(x) => Err(format!("field {k}: {x} exceeds the maximum of {max}")),
            None => Err(format!(
                "field {k}: expected a non-negative integer, found {}",
                clip(&v.to_string())
            )),
        }
    };
    let timestamp_ms = int("timestamp", u64::MAX / 1_000_000)?;
    let input_length = int("input_length", u64::from(MAX_PROMPT_TOKENS))? as u32;
    if input_length == 0 {
        return Err("field input_length: must be at least 1".into());
    }
    let output_length = int("output_length", u64::from(u32::MAX))? as u32;
    let Some(ids) = field("hash_ids")?.as_array() else {
        return Err("field hash_ids: expected an array of integers".into());
    };
    let want = input_length.div_ceil(block_tokens) as usize;
    if ids.len() != want {
        return Err(format!(
            "field hash_ids: {} entries, but input_length {input_length} in blocks of {block_tokens} tokens needs {want}",
            ids.len()
        ));
    }
    let hash_ids = ids
        .iter()
        .map(|h| match h.as_u64() {
            Some(x) if x < HASH_ID_LIMIT => Ok(x),
            _ => Err(format!(
                "field hash_ids: {} is not an integer in 0..2^63",
                clip(&h.to_string())
            )),
        })
        .collect::<std::result::Result<_, _>>()?;
    Ok(MooncakeRecord {
        timestamp_ms,
        input_length,
        output_length,
        hash_ids,
        line: n,
    })
}

/// A value quoted for an error message, cut to 40 characters.
fn clip(s: &str) -> String {
    const MAX: usize = 40;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn check_options(o: &MooncakeOptions) -> Result<()> {
    crate::spec::check_name_flag(o.name.as_deref())?;
    let bad = |m: String| Err(GenError::InvalidSpec(m));
    if !(o.time_scale.is_finite() && o.time_scale > 0.0) {
        return bad(format!(
            "--time-scale must be a finite number > 0, got {}",
            o.time_scale
        ));
    }
    if o.max_requests == Some(0) || o.block_tokens == 0 {
        return bad("--max-requests and --block-tokens must be at least 1".into());
    }
    Ok(())
}

/// Imports a Mooncake JSONL into the trace file `out`.
pub fn import_mooncake(
    file: &Path,
    opts: &MooncakeOptions,
    source: &PromptSource,
    out: &Path,
) -> Result<ImportReport> {
    check_options(opts)?;
    let (records, sha256) = read_hashed(file, opts.block_tokens)?;
    let keep = opts
        .max_requests
        .map_or(records.len(), |m| records.len().min(m as usize));
    let kept = &records[..keep];
    let name = opts.name.clone().unwrap_or_else(|| {
        file.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "mooncake".into())
    });
    let spec = MooncakeImportSpec {
        name,
        seed: opts.seed,
        source_file: file
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
        source_sha256: sha256,
        time_scale: opts.time_scale,
        max_requests: opts.max_requests,
        block_tokens: opts.block_tokens,
        ignore_eos: opts.ignore_eos,
    };
    let n = kept.len() as u64;
    let header = TraceHeader::new(
        TraceSpec::Mooncake(spec),
        source.info().clone(),
        n,
        GENERATOR_VERSION,
    );
    let mut writer = TraceWriter::create(out, &header)?;
    let mut blocks = BlockBuilder::new(source, opts.seed);
    let t0 = kept[0].timestamp_ms;
    let (mut pt, mut ot) = (0u64, 0u64);
    for (id, r) in kept.iter().enumerate() {
        let off = (r.timestamp_ms - t0) * 1_000_000;
        let arrival_ns = scale_ns(off, opts.time_scale)
            .ok_or_else(|| scale_overflow(file, r.line, opts.time_scale))?;
        let p = blocks
            .build(&r.hash_ids, r.input_length, opts.block_tokens)
            .map_err(|e| GenError::BadRow {
                path: file.to_path_buf(),
                line: r.line,
                message: e.to_string(),
            })?;
        let max_tokens = r.output_length.max(1);
        pt += u64::from(r.input_length);
        ot += u64::from(max_tokens);
        writer.write(&TraceRequest {
            id: id as u64,
            arrival_ns,
            prompt: p.text,
            prompt_token_ids: p.token_ids,
            prompt_tokens: r.input_length,
            max_tokens,
            ignore_eos: opts.ignore_eos,
            ..Default::default()
        })?;
    }
    let path = writer.finish()?;
    Ok(ImportReport {
        path,
        rows: records.len(),
        requests: n,
        prompt_tokens: pt,
        output_tokens: ot,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> std::result::Result<Vec<MooncakeRecord>, String> {
        parse_mooncake(text.as_bytes(), Path::new("m.jsonl"), 512).map_err(|e| e.to_string())
    }

    #[test]
    fn records_parse_and_sort_stably() {
        let r = parse(concat!(
            "{\"timestamp\": 5, \"input_length\": 513, \"output_length\": 0, \"hash_ids\": [0, 1]}\n",
            "\n",
            "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 2, \"hash_ids\": [7], \"x\": 1}\n",
            "{\"timestamp\": 5, \"input_length\": 512, \"output_length\": 3, \"hash_ids\": [0]}\n",
        ))
        .unwrap();
        let lines: Vec<usize> = r.iter().map(|r| r.line).collect();
        assert_eq!(lines, [3, 1, 4]);
        assert_eq!(r[1].hash_ids, [0, 1]);
    }

    #[test]
    fn bad_records_name_line_and_field() {
        let ok =
            "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}\n";
        for (line2, want) in [
            ("[1, 2]", "m.jsonl:2: expected a JSON object"),
            ("{\"timestamp\": 0", "m.jsonl:2: not JSON"),
            (
                "{\"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}",
                "m.jsonl:2: missing field timestamp",
            ),
            (
                "{\"timestamp\": -1, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}",
                "m.jsonl:2: field timestamp: expected a non-negative integer, found -1",
            ),
            (
                "{\"timestamp\": 1.5, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}",
                "field timestamp: expected a non-negative integer",
            ),
            (
                "{\"timestamp\": 18446744073709551615, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [0]}",
                "m.jsonl:2: field timestamp: 18446744073709551615 exceeds the maximum",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 99999999999, \"output_length\": 1, \"hash_ids\": [0]}",
                "field input_length: 99999999999 exceeds the maximum of 1048576",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 0, \"output_length\": 1, \"hash_ids\": []}",
                "field input_length: must be at least 1",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 600, \"output_length\": 1, \"hash_ids\": [0]}",
                "field hash_ids: 1 entries, but input_length 600 in blocks of 512 tokens needs 2",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": [\"a\"]}",
                "field hash_ids: \"a\" is not an integer in 0..2^63",
            ),
            (
                "{\"timestamp\": 0, \"input_length\": 1, \"output_length\": 1, \"hash_ids\": 3}",
                "field hash_ids: expected an array",
            ),
        ] {
            let e = parse(&format!("{ok}{line2}\n")).unwrap_err();
            assert!(e.contains(want), "{e} / {want}");
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(parse("").unwrap_err().contains("m.jsonl:1: empty file"));
        let e = parse_mooncake(&b"{\"a\xff\": 1}\n"[..], Path::new("m.jsonl"), 512).unwrap_err();
        assert_eq!(e.to_string(), "m.jsonl:1: not UTF-8 (byte 4)");
    }
}
