//! Round trips, truncation and corruption of both formats.

use std::io::Cursor;

use super::*;

fn spec() -> TraceSpec {
    TraceSpec::Synthetic(SyntheticSpec {
        name: "t".into(),
        seed: 42,
        requests: 3,
        prompt_tokens: LengthDist::Fixed { value: 4, floor: 1 },
        output_tokens: LengthDist::CappedExponential {
            mean: 128.0,
            cap: 512,
            floor: 1,
        },
        arrival: Arrival::Poisson { rate: 2.0 },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    })
}

fn header(n: u64) -> TraceHeader {
    TraceHeader::new(
        spec(),
        TokenizerInfo {
            kind: "builtin-words".into(),
            name: "words-v1".into(),
            sha256: None,
        },
        n,
        "1",
    )
}

fn request(id: u64) -> TraceRequest {
    TraceRequest {
        id,
        arrival_ns: id * 1000,
        prompt: format!("hello {id}"),
        prompt_token_ids: id.is_multiple_of(2).then(|| vec![1, 2, id as u32]),
        prompt_tokens: 3,
        max_tokens: 10 + id as u32,
        ignore_eos: true,
        ..Default::default()
    }
}

fn write_trace(dir: &std::path::Path, n: u64) -> std::path::PathBuf {
    let path = dir.join("t.msgpack");
    let mut w = TraceWriter::create(&path, &header(n)).unwrap();
    for i in 0..n {
        w.write(&request(i)).unwrap();
    }
    w.finish().unwrap();
    path
}

#[test]
fn trace_round_trip_and_no_temp_left() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_trace(dir.path(), 3);
    let (h, reqs) = read_trace(&path).unwrap();
    assert_eq!(h, header(3));
    assert_eq!(reqs, (0..3).map(request).collect::<Vec<_>>());
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "temporary file left behind");
}

#[test]
fn unfinished_trace_leaves_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.msgpack");
    {
        let mut w = TraceWriter::create(&path, &header(3)).unwrap();
        w.write(&request(0)).unwrap();
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    let mut w = TraceWriter::create(&path, &header(3)).unwrap();
    w.write(&request(0)).unwrap();
    assert!(matches!(w.finish(), Err(FormatError::CountMismatch { .. })));
    assert!(!path.exists());
}

#[test]
fn trace_fields_are_named_maps() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(write_trace(dir.path(), 1)).unwrap();
    for key in [
        "format",
        "llmib-trace",
        "generator_version",
        "request_count",
        "arrival_ns",
        "prompt_token_ids",
        "max_tokens",
        "ignore_eos",
        "trailer",
        "crc32",
        "capped_exponential",
    ] {
        assert!(
            bytes.windows(key.len()).any(|w| w == key.as_bytes()),
            "{key} missing"
        );
    }
}

#[test]
fn truncated_trace_is_an_error_at_every_cut() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(write_trace(dir.path(), 3)).unwrap();
    let header_len = rmp_serde::to_vec_named(&header(3)).unwrap().len();
    for cut in (header_len..bytes.len()).step_by(3) {
        let reader = TraceReader::new(Cursor::new(&bytes[..cut])).unwrap();
        let result: Result<Vec<_>> = reader.collect();
        assert!(
            matches!(
                result,
                Err(FormatError::Truncated { .. } | FormatError::TruncatedTrailer { records: 3 })
            ),
            "cut {cut}: {result:?}"
        );
    }
}

#[test]
fn corrupted_trace_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(write_trace(dir.path(), 3)).unwrap();
    // Change a character of a prompt: still valid msgpack, different bytes.
    let pos = bytes.windows(7).position(|w| w == b"hello 1").unwrap();
    let mut bad = bytes.clone();
    bad[pos] = b'j';
    let result: Result<Vec<_>> = TraceReader::new(Cursor::new(&bad)).unwrap().collect();
    assert!(
        matches!(result, Err(FormatError::ChecksumMismatch { .. })),
        "{result:?}"
    );
    // Trailing garbage.
    let mut bad = bytes.clone();
    bad.push(0x01);
    let result: Result<Vec<_>> = TraceReader::new(Cursor::new(&bad)).unwrap().collect();
    assert!(
        matches!(result, Err(FormatError::TrailingData)),
        "{result:?}"
    );
}

#[test]
fn foreign_and_newer_files_get_clear_errors() {
    let err = |bytes: &[u8]| {
        TraceReader::new(Cursor::new(bytes.to_vec()))
            .err()
            .unwrap()
            .to_string()
    };
    assert!(err(b"").contains("empty"));
    assert!(
        err(b"hello world").contains("not"),
        "{}",
        err(b"hello world")
    );
    #[derive(serde::Serialize)]
    struct H<'a> {
        format: &'a str,
        version: u32,
    }
    let newer = rmp_serde::to_vec_named(&H {
        format: "llmib-trace",
        version: 9,
    })
    .unwrap();
    assert!(err(&newer).contains("newer"), "{}", err(&newer));
    let log = rmp_serde::to_vec_named(&H {
        format: "llmib-log",
        version: 1,
    })
    .unwrap();
    assert!(
        err(&log).contains("expected a llmib-trace file"),
        "{}",
        err(&log)
    );
    let other = rmp_serde::to_vec_named(&H {
        format: "parquet",
        version: 1,
    })
    .unwrap();
    assert!(err(&other).contains("unknown format"), "{}", err(&other));
}

fn log_header() -> LogHeader {
    LogHeader::new(
        TraceRef {
            name: "t".into(),
            sha256: "00".repeat(32),
            request_count: 3,
            spec: Some(spec()),
        },
        BackendInfo {
            kind: "tgi".into(),
            endpoint: "http://127.0.0.1:1".into(),
            model: None,
            simulated: None,
        },
        1_700_000_000_000_000_000,
        "0.1.0",
        "host",
        ReplayOptions::default(),
    )
}

fn record(id: u64) -> LogRecord {
    let mut r = LogRecord::not_sent(id, id * 10, 3, 4, id == 0);
    r.outcome = Outcome::Ok;
    r.dispatched_ns = Some(id * 10 + 1);
    r.first_byte_ns = Some(id * 10 + 2);
    r.events.push(id * 10 + 3, 1);
    r.events.push(id * 10 + 5_000_000_000, 3);
    r.end_ns = Some(id * 10 + 5_000_000_001);
    r.output_tokens = Some(4);
    r.server_timing.insert("x-queue-time".into(), "3".into());
    r
}

#[test]
fn log_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.msgpack");
    let mut w = LogWriter::create(&path, &log_header()).unwrap();
    for i in 0..3 {
        w.write(&record(i)).unwrap();
    }
    let trailer = w.finish(true, 99).unwrap();
    let log = read_log(&path).unwrap();
    assert_eq!(log.header, log_header());
    assert_eq!(log.records, (0..3).map(record).collect::<Vec<_>>());
    assert_eq!(log.end, LogEnd::Trailer(trailer));
    assert!(log.has_trailer());
}

/// The server's identity and the prefix-cache reset round-trip through a log, and a
/// header written without them (an older log) reads with both absent.
#[test]
fn server_identity_and_cache_reset_round_trip_and_are_optional() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.msgpack");
    let mut h = log_header();
    let mut id = ServerIdentity {
        kind: Some("vllm".into()),
        version: Some("0.32.0".into()),
        server_header: Some("uvicorn".into()),
        models: vec![ServedModel {
            id: "tiny-llama".into(),
            max_model_len: Some(2048),
        }],
        sources: vec![IdentitySource {
            request: "GET /version".into(),
            body: Some(r#"{"version":"0.32.0"}"#.into()),
            truncated: false,
        }],
        elapsed_ns: 1_500_000,
        ..Default::default()
    };
    id.cache_config.insert("block_size".into(), "128".into());
    h.server_identity = Some(id);
    h.prefix_cache_reset = Some(PrefixCacheReset {
        outcome: "ok".into(),
        request: Some("POST /reset_prefix_cache".into()),
        tried: vec!["POST /reset_prefix_cache".into()],
        attempts: 1,
        http_status: Some(200),
        answer: Some(r#"{"success":true}"#.into()),
        at_unix_ns: 1_699_999_999_990_000_000,
        before_start_ns: 10_000_000,
    });
    LogWriter::create(&path, &h)
        .unwrap()
        .finish(true, 1)
        .unwrap();
    assert_eq!(read_log(&path).unwrap().header, h);

    // An older writer's header: the same map without the two keys.
    let old = log_header();
    let bytes = rmp_serde::to_vec_named(&old).unwrap();
    let back: LogHeader = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back.server_identity, None);
    assert_eq!(back.prefix_cache_reset, None);
}

#[test]
fn killed_log_is_readable_up_to_the_last_whole_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.msgpack");
    let mut w = LogWriter::create(&path, &log_header()).unwrap();
    for i in 0..3 {
        w.write(&record(i)).unwrap();
    }
    w.finish(true, 99).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = rmp_serde::to_vec_named(&log_header()).unwrap().len();
    let rec_len = rmp_serde::to_vec_named(&record(1)).unwrap().len();
    // Cut inside the third record.
    let cut = header_len + 2 * rec_len + 5;
    let mut reader = LogReader::new(Cursor::new(&bytes[..cut])).unwrap();
    let records: Vec<_> = reader.by_ref().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), 2);
    assert_eq!(
        reader.end(),
        Some(&LogEnd::Truncated {
            records: 2,
            partial_tail: true
        })
    );
    // Cut exactly at a record boundary.
    let mut reader = LogReader::new(Cursor::new(&bytes[..header_len + rec_len])).unwrap();
    assert_eq!(reader.by_ref().count(), 1);
    assert_eq!(
        reader.end(),
        Some(&LogEnd::Truncated {
            records: 1,
            partial_tail: false
        })
    );
}

/// The connection and send times are optional fields: absent from the bytes when not
/// known, so logs written before they existed (which lack the keys) read the same.
#[test]
fn connection_times_are_optional_and_round_trip() {
    let plain = record(1);
    let bytes = rmp_serde::to_vec_named(&plain).unwrap();
    for key in [&b"connect_start_ns"[..], b"connect_ns", b"sent_ns"] {
        assert!(!bytes.windows(key.len()).any(|w| w == key));
    }
    let back: LogRecord = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, plain);
    assert_eq!((back.connect_ns, back.sent_ns), (None, None));

    let mut timed = record(2);
    timed.connect_start_ns = Some(21);
    timed.connect_ns = Some(22);
    timed.sent_ns = Some(23);
    let bytes = rmp_serde::to_vec_named(&timed).unwrap();
    let back: LogRecord = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, timed);
}

/// The reasoning fields are optional too: a record without reasoning carries none of
/// their keys (so logs written before they existed read the same), and a record of a
/// reasoning stream round-trips.
#[test]
fn reasoning_fields_are_optional_and_round_trip() {
    let plain = record(1);
    let bytes = rmp_serde::to_vec_named(&plain).unwrap();
    for key in [
        &b"first_reasoning_ns"[..],
        b"first_answer_ns",
        b"reasoning_tokens",
    ] {
        assert!(!bytes.windows(key.len()).any(|w| w == key));
    }
    let back: LogRecord = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, plain);

    let mut thinking = record(2);
    thinking.first_reasoning_ns = Some(23);
    thinking.first_answer_ns = Some(5_000_000_000);
    thinking.reasoning_tokens = Some(1);
    thinking.server_reasoning_tokens = Some(1);
    let bytes = rmp_serde::to_vec_named(&thinking).unwrap();
    let back: LogRecord = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, thinking);
}

/// A header written before the warm-up existed has no `warm_connections`; one with it
/// round-trips.
#[test]
fn warm_connections_in_the_header_are_optional() {
    let old = log_header();
    let bytes = rmp_serde::to_vec_named(&old).unwrap();
    assert!(!bytes.windows(16).any(|w| w == b"warm_connections"));
    let mut new = log_header();
    new.options.warm_connections = Some(WarmConnections {
        requested: 8,
        basis: "concurrency".into(),
        bounded: false,
        opened: 8,
        elapsed_ns: 1_234_567,
    });
    let bytes = rmp_serde::to_vec_named(&new).unwrap();
    let back: LogHeader = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, new);
}

#[test]
fn corrupted_log_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.msgpack");
    let mut w = LogWriter::create(&path, &log_header()).unwrap();
    w.write(&record(1)).unwrap();
    w.finish(true, 9).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    let pos = bytes
        .windows(12)
        .position(|w| w == b"x-queue-time")
        .unwrap();
    bytes[pos] = b'y';
    let result: Result<Vec<_>> = LogReader::new(Cursor::new(bytes)).unwrap().collect();
    assert!(matches!(result, Err(FormatError::ChecksumMismatch { .. })));
}

#[test]
fn outcome_strings_are_the_documented_ones() {
    for o in Outcome::ALL {
        let bytes = rmp_serde::to_vec(&o).unwrap();
        let s: String = rmp_serde::from_slice(&bytes).unwrap();
        assert_eq!(s, o.as_str());
    }
}

#[test]
fn spec_toml_parses_with_defaults_and_rejects_unknown_fields() {
    let text = r#"
name = "latency-qps4"
seed = 1
requests = 1000
prompt_tokens = { dist = "uniform", lo = 1, hi = 512 }
output_tokens = { dist = "capped_exponential", mean = 128.0, cap = 512 }
arrival = { process = "poisson", rate = 4.0 }
"#;
    let s: SyntheticSpec = toml::from_str(text).unwrap();
    assert!(s.ignore_eos);
    assert_eq!(s.output_tokens.floor(), 1);
    assert_eq!(TraceSpec::Synthetic(s.clone()).rate_per_s(), Some(4.0));
    assert_eq!(TraceSpec::Synthetic(s).output_cap(), Some(512));
    let bad = text.replace("seed = 1", "seed = 1\ncolour = 3");
    assert!(toml::from_str::<SyntheticSpec>(&bad).is_err());
}

#[test]
fn simulator_header_parses() {
    let s = SimulatedInfo::from_header("profile=tiny; dialect=vllm").unwrap();
    assert_eq!((s.profile.as_str(), s.dialect.as_str()), ("tiny", "vllm"));
    assert!(SimulatedInfo::from_header("dialect=vllm").is_none());
    assert!(SimulatedInfo::from_header("").is_none());
}

fn turn(id: u64, session: u64, turn: u32) -> TraceRequest {
    let messages = vec![ChatMessage::new("user", format!("q{id}"))];
    TraceRequest {
        session_id: Some(session),
        turn: Some(turn),
        think_ns: (turn > 0).then_some(5_000),
        prompt: render_messages(&messages),
        messages: Some(messages),
        ..request(id)
    }
}

fn write_requests(
    dir: &std::path::Path,
    header: &TraceHeader,
    requests: &[TraceRequest],
) -> Result<std::path::PathBuf> {
    let path = dir.join("s.msgpack");
    let mut w = TraceWriter::create(&path, header)?;
    for r in requests {
        w.write(r)?;
    }
    w.finish()
}

#[test]
fn plain_traces_stay_version_2_and_sessions_need_version_3() {
    let dir = tempfile::tempdir().unwrap();
    let plain = write_trace(dir.path(), 2);
    let (h, _) = read_trace(&plain).unwrap();
    assert_eq!(h.version, TRACE_VERSION_PLAIN);
    let err = write_requests(dir.path(), &header(1), &[turn(0, 0, 0)]).unwrap_err();
    assert!(err.to_string().contains("version 3"), "{err}");
}

#[test]
fn session_trace_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let reqs = vec![
        turn(0, 0, 0),
        turn(1, 1, 0),
        turn(2, 0, 1),
        turn(3, 1, 1),
        turn(4, 0, 2),
    ];
    let path = write_requests(dir.path(), &header(5).with_sessions(), &reqs).unwrap();
    let (h, back) = read_trace(&path).unwrap();
    assert_eq!(h.version, 3);
    assert_eq!(back, reqs);
    assert_eq!(back[2].prompt, "user: q2");
}

#[test]
fn session_rules_are_enforced_on_write() {
    let dir = tempfile::tempdir().unwrap();
    let bad: Vec<(&str, Vec<TraceRequest>)> = vec![
        (
            "turn 1 of session 0 where turn 2",
            vec![turn(0, 0, 0), turn(1, 0, 2)],
        ),
        ("starts at turn 1", vec![turn(0, 0, 1)]),
        ("numbered in order", vec![turn(0, 1, 0)]),
        ("`think_ns` on a session's first turn", {
            let mut r = turn(0, 0, 0);
            r.think_ns = Some(1);
            vec![r]
        }),
        ("go together", {
            let mut r = turn(0, 0, 0);
            r.turn = None;
            vec![r]
        }),
        ("end with a user message", {
            let mut r = turn(0, 0, 0);
            r.messages = Some(vec![ChatMessage::new("assistant", "a")]);
            vec![r]
        }),
    ];
    for (want, reqs) in bad {
        let h = header(reqs.len() as u64).with_sessions();
        let err = write_requests(dir.path(), &h, &reqs)
            .unwrap_err()
            .to_string();
        // "turn 1 of session 0 where turn 2" reads "turn 2 of session 0 where turn 1".
        let want = want.replace(
            "turn 1 of session 0 where turn 2",
            "turn 2 of session 0 where turn 1",
        );
        assert!(err.contains(&want), "{err} / {want}");
    }
}

#[test]
fn session_rules_are_enforced_on_read() {
    // A writer that does not check (raw objects) can still put a bad session in a file;
    // the reader must refuse it, or a replayer would wait forever for a missing turn.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("raw.msgpack");
    let h = header(2).with_sessions();
    let mut w = crate::stream::ObjectWriter::new(Vec::new(), &h).unwrap();
    w.write_record(&turn(0, 0, 0)).unwrap();
    w.write_record(&turn(1, 0, 2)).unwrap();
    let mut trailer = TraceTrailer {
        trailer: true,
        record_count: 2,
        crc32: w.crc32(),
        header_crc32: Some(w.header_crc32()),
        trailer_crc32: None,
    };
    let bytes = w.write_trailer(&mut trailer).unwrap();
    std::fs::write(&path, bytes).unwrap();
    let err = read_trace(&path).unwrap_err().to_string();
    assert!(
        err.contains("turn 2 of session 0 where turn 1 was expected"),
        "{err}"
    );
}

#[test]
fn messages_render_as_role_lines() {
    let m = [
        ChatMessage::new("system", "be brief"),
        ChatMessage::new("user", "hi"),
        ChatMessage::new("assistant", "hello"),
        ChatMessage::new("user", "again"),
    ];
    assert_eq!(
        render_messages(&m),
        "system: be brief\nuser: hi\nassistant: hello\nuser: again"
    );
    assert_eq!(render_messages(&[]), "");
}

#[test]
fn simulator_header_round_trips_with_and_without_speedup() {
    for speedup in [None, Some(8.0), Some(2.5)] {
        let info = SimulatedInfo {
            dialect: "openai".into(),
            profile: "a800-llama2-13b".into(),
            speedup,
            virtual_time: false,
        };
        assert_eq!(SimulatedInfo::from_header(&info.header_value()), Some(info));
    }
    // Older simulators send no speed-up; nonsense values are ignored, not trusted.
    let old = SimulatedInfo::from_header("profile=tiny; dialect=tgi").unwrap();
    assert_eq!(old.speedup, None);
    let bad = SimulatedInfo::from_header("profile=tiny; dialect=tgi; speedup=0.5").unwrap();
    assert_eq!(bad.speedup, None);
}
