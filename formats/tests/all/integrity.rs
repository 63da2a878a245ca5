//! File integrity of both formats, byte by byte: every single-byte flip of a header or
//! trailer is caught, every cut is reported as truncated, damage as corrupted, and
//! version 1 files (no header or trailer checksum) still read.

use std::io::Cursor;

use formats::{
    Arrival, BackendInfo, FormatError, LengthDist, LogEnd, LogHeader, LogReader, LogRecord,
    LogWriter, Outcome, ReplayOptions, RunLog, SyntheticSpec, TokenizerInfo, TraceHeader,
    TraceReader, TraceRequest, TraceSpec, TraceWriter, crc32,
};
use serde::Serialize;

/// XOR masks applied to every byte position: each single bit, and a few multi-bit ones.
const MASKS: [u8; 11] = [
    0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, 0x0f, 0xf0, 0xff,
];

fn spec() -> TraceSpec {
    TraceSpec::Synthetic(SyntheticSpec {
        name: "t".into(),
        seed: 42,
        requests: 3,
        prompt_tokens: LengthDist::Fixed { value: 4, floor: 1 },
        output_tokens: LengthDist::Uniform {
            lo: 1,
            hi: 9,
            floor: 1,
        },
        arrival: Arrival::Poisson { rate: 2.0 },
        ignore_eos: true,
        prefix: None,
        sessions: None,
    })
}

fn trace_header(version: u32) -> TraceHeader {
    let mut h = TraceHeader::new(
        spec(),
        TokenizerInfo {
            kind: "builtin-words".into(),
            name: "words".into(),
            sha256: None,
        },
        3,
        "1",
    );
    h.version = version;
    h
}

fn request(id: u64) -> TraceRequest {
    TraceRequest {
        id,
        arrival_ns: id * 1000,
        prompt: format!("hello {id}"),
        prompt_token_ids: None,
        prompt_tokens: 2,
        max_tokens: 5 + id as u32,
        ignore_eos: true,
        ..Default::default()
    }
}

fn named<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).unwrap()
}

/// A 3-request trace as written by [`TraceWriter`], and the byte ranges of its header
/// and trailer.
struct Sample {
    bytes: Vec<u8>,
    header: std::ops::Range<usize>,
    trailer: std::ops::Range<usize>,
}

fn trace_sample() -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.msgpack");
    let mut w = TraceWriter::create(&path, &trace_header(2)).unwrap();
    for i in 0..3 {
        w.write(&request(i)).unwrap();
    }
    w.finish().unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = named(&trace_header(2)).len();
    let records: usize = (0..3).map(|i| named(&request(i)).len()).sum();
    Sample {
        header: 0..header_len,
        trailer: header_len + records..bytes.len(),
        bytes,
    }
}

fn read_trace_bytes(bytes: &[u8]) -> Result<Vec<TraceRequest>, FormatError> {
    TraceReader::new(Cursor::new(bytes))?.collect()
}

/// Every error shown to a user is one short line.
fn one_line(e: &FormatError) -> String {
    let msg = e.to_string();
    assert!(!msg.contains('\n') && msg.len() < 300, "{msg:?}");
    msg
}

#[test]
fn written_files_are_version_2_with_all_three_checksums() {
    let s = trace_sample();
    let b = &s.bytes;
    let raw_trailer = &b[s.trailer.clone()];
    #[derive(serde::Deserialize)]
    struct T {
        record_count: u64,
        crc32: u32,
        header_crc32: u32,
        trailer_crc32: u32,
    }
    let t: T = rmp_serde::from_slice(raw_trailer).unwrap();
    assert_eq!(t.record_count, 3);
    assert_eq!(t.crc32, crc32(&b[s.header.end..s.trailer.start]));
    assert_eq!(t.header_crc32, crc32(&b[s.header.clone()]));
    // The documented Python check: CRC of the trailer bytes before the last key.
    let key = b"\xadtrailer_crc32";
    let cut = raw_trailer
        .windows(key.len())
        .rposition(|w| w == key)
        .unwrap();
    assert_eq!(t.trailer_crc32, crc32(&raw_trailer[..cut]));
    assert_eq!(
        cut + key.len() + rmp_serde::to_vec(&t.trailer_crc32).unwrap().len(),
        raw_trailer.len(),
        "trailer_crc32 is the last entry"
    );
    let reader = TraceReader::new(Cursor::new(b)).unwrap();
    assert_eq!(reader.header().version, 2);
}

#[test]
fn every_flipped_byte_of_a_trace_header_or_trailer_is_an_error() {
    let s = trace_sample();
    for pos in s.header.clone().chain(s.trailer.clone()) {
        for mask in MASKS {
            let mut bad = s.bytes.clone();
            bad[pos] ^= mask;
            let e = match read_trace_bytes(&bad) {
                Ok(_) => panic!("byte {pos} ^ {mask:#04x} read as a valid trace"),
                Err(e) => e,
            };
            let msg = one_line(&e);
            // Damage is never mistaken for a cut; a trailer flip is always corruption
            // (a header flip may also make the file unrecognisable: "not an
            // llm-infer-bench file", "expected a llmib-trace file", "newer version").
            assert!(
                !msg.starts_with("truncated"),
                "byte {pos} ^ {mask:#04x}: {msg}"
            );
            if s.trailer.contains(&pos) {
                assert!(
                    msg.starts_with("corrupted file"),
                    "trailer byte {pos} ^ {mask:#04x}: {msg}"
                );
            }
        }
    }
}

#[test]
fn a_header_flip_inside_a_string_is_a_header_checksum_error() {
    let s = trace_sample();
    let pos = s.bytes.windows(5).position(|w| w == b"words").unwrap();
    let mut bad = s.bytes.clone();
    bad[pos] = b'x';
    let e = read_trace_bytes(&bad).unwrap_err();
    assert!(
        matches!(e, FormatError::HeaderChecksumMismatch { .. }),
        "{e:?}"
    );
    assert!(e.to_string().starts_with("corrupted file: header checksum"));
}

#[test]
fn every_cut_of_a_trace_says_truncated() {
    let s = trace_sample();
    assert!(matches!(
        read_trace_bytes(&[]),
        Err(FormatError::NotOurs(_))
    ));
    for cut in 1..s.bytes.len() {
        let e = read_trace_bytes(&s.bytes[..cut]).unwrap_err();
        let msg = one_line(&e);
        assert!(msg.starts_with("truncated file"), "cut {cut}: {msg}");
        if cut > s.trailer.start {
            assert!(
                matches!(e, FormatError::TruncatedTrailer { records: 3 }),
                "cut {cut}: {e:?}"
            );
        }
    }
    assert_eq!(read_trace_bytes(&s.bytes).unwrap().len(), 3);
}

#[test]
fn objects_other_than_the_trailer_after_the_last_request_are_corruption() {
    let s = trace_sample();
    // A fourth request where the trailer must be.
    let mut bad = s.bytes[..s.trailer.start].to_vec();
    bad.extend(named(&request(3)));
    let msg = one_line(&read_trace_bytes(&bad).unwrap_err());
    assert!(msg.starts_with("corrupted file"), "{msg}");
    // Trailing bytes after a valid trailer.
    let mut bad = s.bytes.clone();
    bad.push(0xc0);
    assert!(matches!(
        read_trace_bytes(&bad),
        Err(FormatError::TrailingData)
    ));
}

/// Trailer fields written by hand, in order, so tests can build any variant.
fn trailer_map(fields: &[(&str, u64)], seal: bool) -> Vec<u8> {
    let n = fields.len() + seal as usize;
    let mut out = vec![0x80 | n as u8];
    for (k, v) in fields {
        out.extend(rmp_serde::to_vec(k).unwrap());
        out.extend(if *k == "trailer" || *k == "complete" {
            rmp_serde::to_vec(&(*v != 0)).unwrap()
        } else {
            rmp_serde::to_vec(v).unwrap()
        });
    }
    if seal {
        let crc = crc32(&out);
        out.extend(rmp_serde::to_vec("trailer_crc32").unwrap());
        out.extend(rmp_serde::to_vec(&crc).unwrap());
    }
    out
}

/// A trace file with the given header version, the sample's requests, and `trailer`.
fn trace_file(version: u32, trailer: impl FnOnce(u32, u32) -> Vec<u8>) -> Vec<u8> {
    let header = named(&trace_header(version));
    let mut bytes = header.clone();
    let mut records = Vec::new();
    for i in 0..3 {
        records.extend(named(&request(i)));
    }
    bytes.extend(&records);
    bytes.extend(trailer(crc32(&header), crc32(&records)));
    bytes
}

#[test]
fn version_1_traces_still_read_and_are_still_checked() {
    let v1 = |_h, c| {
        trailer_map(
            &[("trailer", 1), ("record_count", 3), ("crc32", c as u64)],
            false,
        )
    };
    let file = trace_file(1, v1);
    let reader = TraceReader::new(Cursor::new(&file)).unwrap();
    assert_eq!(reader.header().version, 1);
    assert_eq!(
        reader.collect::<Result<Vec<_>, _>>().unwrap(),
        (0..3).map(request).collect::<Vec<_>>()
    );
    // Record damage, a cut trailer and a damaged trailer are told apart in v1 too.
    let mut bad = file.clone();
    let pos = bad.windows(7).position(|w| w == b"hello 1").unwrap();
    bad[pos] = b'j';
    assert!(matches!(
        read_trace_bytes(&bad),
        Err(FormatError::ChecksumMismatch { .. })
    ));
    let trailer_len = v1(0, 0).len();
    let cut = &file[..file.len() - trailer_len / 2];
    assert!(matches!(
        read_trace_bytes(cut),
        Err(FormatError::TruncatedTrailer { records: 3 })
    ));
    let mut bad = file.clone();
    let n = bad.len();
    bad[n - trailer_len + 9] ^= 0x01; // `true` becomes `false`
    let msg = one_line(&read_trace_bytes(&bad).unwrap_err());
    assert!(msg.starts_with("corrupted file: damaged trailer"), "{msg}");
}

#[test]
fn other_writers_int_encodings_are_accepted() {
    // Every integer as a full-width u64/u32, as some msgpack writers do.
    let file = trace_file(2, |h, c| {
        let mut out = vec![0x85];
        out.extend(rmp_serde::to_vec("trailer").unwrap());
        out.push(0xc3);
        out.extend(rmp_serde::to_vec("record_count").unwrap());
        out.push(0xcf);
        out.extend(3u64.to_be_bytes());
        out.extend(rmp_serde::to_vec("crc32").unwrap());
        out.push(0xce);
        out.extend(c.to_be_bytes());
        out.extend(rmp_serde::to_vec("header_crc32").unwrap());
        out.push(0xce);
        out.extend(h.to_be_bytes());
        let seal = crc32(&out);
        out.extend(rmp_serde::to_vec("trailer_crc32").unwrap());
        out.push(0xce);
        out.extend(seal.to_be_bytes());
        out
    });
    assert_eq!(read_trace_bytes(&file).unwrap().len(), 3);
}

#[test]
fn version_2_trailers_must_carry_both_checksums_with_the_seal_last() {
    let full = |h: u32, c: u32| {
        vec![
            ("trailer", 1),
            ("record_count", 3),
            ("crc32", c as u64),
            ("header_crc32", h as u64),
        ]
    };
    let ok = trace_file(2, |h, c| trailer_map(&full(h, c), true));
    assert_eq!(read_trace_bytes(&ok).unwrap().len(), 3);
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "no header_crc32",
            trace_file(2, |h, c| trailer_map(&full(h, c)[..3], true)),
        ),
        (
            "no trailer_crc32",
            trace_file(2, |h, c| trailer_map(&full(h, c), false)),
        ),
        (
            "trailer_crc32 is not its last field",
            trace_file(2, |h, c| {
                let mut t = trailer_map(&full(h, c), true);
                t[0] += 1;
                t.extend(rmp_serde::to_vec("extra").unwrap());
                t.push(0x01);
                t
            }),
        ),
    ];
    for (what, file) in cases {
        let e = read_trace_bytes(&file).unwrap_err();
        assert!(
            matches!(&e, FormatError::DamagedTrailer(m) if m.contains(what)),
            "{what}: {e}"
        );
    }
}

#[test]
fn damaged_header_values_read_as_short_lines() {
    // A header whose seed is the float 1e300: the decoder's message is made readable.
    #[derive(Serialize)]
    struct H<'a> {
        format: &'a str,
        version: u32,
        name: &'a str,
        seed: f64,
    }
    let bytes = named(&H {
        format: "llmib-trace",
        version: 2,
        name: "t",
        seed: 1e300,
    });
    let e = TraceReader::new(Cursor::new(bytes)).err().unwrap();
    let msg = one_line(&e);
    assert!(msg.starts_with("corrupted file: damaged header"), "{msg}");
    assert!(!msg.contains("0000000000"), "{msg}");
}

// ---------------------------------------------------------------- run logs

fn log_header(version: u32) -> LogHeader {
    let mut h = LogHeader::new(
        formats::TraceRef {
            name: "t".into(),
            sha256: "ab".repeat(32),
            request_count: 3,
            spec: None,
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
    );
    h.version = version;
    h
}

fn log_record(id: u64) -> LogRecord {
    let mut r = LogRecord::not_sent(id, id * 10, 3, 4, false);
    r.outcome = Outcome::Ok;
    r.dispatched_ns = Some(id * 10 + 1);
    r.events.push(id * 10 + 3, 4);
    r.end_ns = Some(id * 10 + 9);
    r.output_tokens = Some(4);
    r
}

fn log_sample(complete: bool, ended_ns: u64) -> Sample {
    log_sample_with(complete, ended_ns, None)
}

/// The client's CPU as a replay records it (values of several encoded widths).
const CLIENTS: [Option<formats::ClientCpu>; 3] = [
    None,
    Some(formats::ClientCpu {
        cpu_ms: 0,
        cores: 2,
        bound: false,
    }),
    Some(formats::ClientCpu {
        cpu_ms: 123_456_789,
        cores: 256,
        bound: true,
    }),
];

fn log_sample_with(complete: bool, ended_ns: u64, client: Option<formats::ClientCpu>) -> Sample {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("run.msgpack");
    let mut w = LogWriter::create(&path, &log_header(2)).unwrap();
    for i in 0..3 {
        w.write(&log_record(i)).unwrap();
    }
    w.finish_with_client(complete, ended_ns, client).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let header_len = named(&log_header(2)).len();
    let records: usize = (0..3).map(|i| named(&log_record(i)).len()).sum();
    Sample {
        header: 0..header_len,
        trailer: header_len + records..bytes.len(),
        bytes,
    }
}

fn read_log_bytes(bytes: &[u8]) -> Result<RunLog, FormatError> {
    let mut reader = LogReader::new(Cursor::new(bytes))?;
    let records = reader.by_ref().collect::<Result<Vec<_>, _>>()?;
    Ok(RunLog {
        header: reader.header().clone(),
        records,
        end: reader
            .end()
            .cloned()
            .expect("end known after the last record"),
    })
}

#[test]
fn flipped_log_header_or_trailer_bytes_never_read_as_what_was_written() {
    for client in CLIENTS {
        flipped_bytes_never_read_as_written(client);
    }
}

fn flipped_bytes_never_read_as_written(client: Option<formats::ClientCpu>) {
    let s = log_sample_with(true, 123_456_789_012, client);
    let written = read_log_bytes(&s.bytes).unwrap();
    assert!(written.has_trailer());
    let LogEnd::Trailer(t) = &written.end else {
        unreachable!()
    };
    assert_eq!(t.client_cpu_ms, client.map(|c| c.cpu_ms));
    assert_eq!(t.client_cores, client.map(|c| c.cores));
    assert_eq!(t.client_cpu_bound, client.map(|c| c.bound));
    for pos in s.header.clone().chain(s.trailer.clone()) {
        for mask in MASKS {
            let mut bad = s.bytes.clone();
            bad[pos] ^= mask;
            match read_log_bytes(&bad) {
                Err(e) => {
                    let msg = one_line(&e);
                    assert!(
                        !msg.starts_with("truncated"),
                        "byte {pos} ^ {mask:#04x}: {msg}"
                    );
                }
                Ok(log) => {
                    // Only a tail damaged beyond recognition may read, and never as a
                    // complete log or with anything but the written header and records.
                    assert!(
                        !log.has_trailer(),
                        "byte {pos} ^ {mask:#04x} read as a complete log"
                    );
                    assert_eq!(log.header, written.header, "byte {pos} ^ {mask:#04x}");
                    assert_eq!(log.records, written.records[..log.records.len()]);
                }
            }
        }
    }
}

#[test]
fn every_flipped_trailer_byte_of_a_log_is_a_damaged_trailer_while_it_starts_like_one() {
    let s = log_sample(false, 7);
    // From the end of the key `trailer` on, the trailer is recognisable.
    for pos in s.trailer.start + 9..s.trailer.end {
        for mask in MASKS {
            let mut bad = s.bytes.clone();
            bad[pos] ^= mask;
            let e = read_log_bytes(&bad).err().unwrap_or_else(|| {
                panic!("trailer byte {} ^ {mask:#04x} read", pos - s.trailer.start)
            });
            let msg = one_line(&e);
            assert!(msg.starts_with("corrupted file"), "{msg}");
        }
    }
}

#[test]
fn every_cut_of_a_log_is_a_truncated_log() {
    let cases = [(true, 1u64 << 40), (false, 3)]
        .into_iter()
        .flat_map(|c| CLIENTS.map(|client| (c, client)));
    for ((complete, ended), client) in cases {
        let s = log_sample_with(complete, ended, client);
        let written = read_log_bytes(&s.bytes).unwrap();
        for cut in 1..s.header.end {
            let e = read_log_bytes(&s.bytes[..cut]).unwrap_err();
            assert!(matches!(e, FormatError::TruncatedHeader), "cut {cut}: {e}");
        }
        for cut in s.header.end..s.bytes.len() {
            let log = read_log_bytes(&s.bytes[..cut]).unwrap_or_else(|e| panic!("cut {cut}: {e}"));
            let LogEnd::Truncated { records, .. } = log.end else {
                panic!("cut {cut}: {:?}", log.end);
            };
            assert_eq!(log.records.len() as u64, records);
            assert_eq!(log.records, written.records[..log.records.len()]);
            if cut > s.trailer.start {
                assert_eq!(records, 3, "cut {cut} inside the trailer");
            }
        }
    }
}

#[test]
fn version_1_logs_still_read() {
    let header = named(&log_header(1));
    let mut bytes = header.clone();
    let mut records = Vec::new();
    for i in 0..3 {
        records.extend(named(&log_record(i)));
    }
    bytes.extend(&records);
    let trailer = trailer_map(
        &[
            ("trailer", 1),
            ("complete", 1),
            ("record_count", 3),
            ("ended_ns", 99),
            ("crc32", crc32(&records) as u64),
        ],
        false,
    );
    bytes.extend(&trailer);
    let log = read_log_bytes(&bytes).unwrap();
    assert_eq!(log.header.version, 1);
    assert_eq!(log.records.len(), 3);
    let LogEnd::Trailer(t) = &log.end else {
        panic!("{:?}", log.end)
    };
    assert_eq!((t.complete, t.ended_ns, t.header_crc32), (true, 99, None));
    // A cut v1 trailer is a truncated log; a damaged one an error.
    let cut = read_log_bytes(&bytes[..bytes.len() - 3]).unwrap();
    assert!(matches!(cut.end, LogEnd::Truncated { records: 3, .. }));
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x01; // the crc32 value
    assert!(matches!(
        read_log_bytes(&bad),
        Err(FormatError::ChecksumMismatch { .. })
    ));
}
