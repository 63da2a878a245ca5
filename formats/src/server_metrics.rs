//! The server-metrics sidecar (`llmib-server-metrics`, version 1): the serving backend's
//! own Prometheus metrics, scraped during a run, on the run's clock.
//!
//! Why a sidecar file next to the run log rather than a new record kind inside it: the
//! run log's contract is "one record per trace request", counted and checksummed by its
//! trailer, and every existing reader decodes each object as a request record. A new
//! kind inside would make every older reader fail on new logs (a sample does not decode
//! as a request), and would tie the samples' life to the request writer's (the scraper
//! runs on its own task and clock tick). A sidecar leaves run logs byte-for-byte what
//! they were, so readers of any version are unaffected, and the log header names it
//! ([`crate::ReplayOptions::server_metrics`]) so a reader knows it should be there.
//!
//! JSON Lines: a header line, then one [`MetricSample`] per line, each line written and
//! flushed as its scrape ends, so a killed run loses nothing already scraped. A last
//! line without its newline is a cut write and is dropped ([`ServerMetricsLog::cut`]);
//! any other line that does not parse is an error. The file is at
//! [`sidecar_path`]`(log)`: the log's path with `.server-metrics.jsonl` appended.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};

pub const SERVER_METRICS_FORMAT: &str = "llmib-server-metrics";
/// Version written; readers read every version up to it.
pub const SERVER_METRICS_VERSION: u32 = 1;
/// What [`sidecar_path`] appends to a run log's path.
pub const SERVER_METRICS_SUFFIX: &str = ".server-metrics.jsonl";

/// The sidecar of the run log at `log`.
pub fn sidecar_path(log: impl AsRef<Path>) -> PathBuf {
    let mut p = log.as_ref().as_os_str().to_owned();
    p.push(SERVER_METRICS_SUFFIX);
    PathBuf::from(p)
}

/// True for a path named like a sidecar (directory scans skip them as logs).
pub fn is_sidecar_path(path: impl AsRef<Path>) -> bool {
    path.as_ref()
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with(SERVER_METRICS_SUFFIX))
}

/// What a run log's header says about its sidecar
/// ([`crate::ReplayOptions::server_metrics`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerMetricsRef {
    /// The URL scraped.
    pub url: String,
    /// Time between the starts of two scrapes, ns.
    pub interval_ns: u64,
}

/// First line of a sidecar.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerMetricsHeader {
    /// Always `"llmib-server-metrics"`.
    pub format: String,
    /// Format version, currently 1.
    pub version: u32,
    /// The run log's `started_unix_ns`: sample times count from the same instant. A
    /// sidecar whose value differs from its log's belongs to another run.
    pub started_unix_ns: u64,
    /// The URL scraped.
    pub url: String,
    /// Time between the starts of two scrapes, ns.
    pub interval_ns: u64,
}

impl ServerMetricsHeader {
    pub fn new(started_unix_ns: u64, url: impl Into<String>, interval_ns: u64) -> Self {
        ServerMetricsHeader {
            format: SERVER_METRICS_FORMAT.to_string(),
            version: SERVER_METRICS_VERSION,
            started_unix_ns,
            url: url.into(),
            interval_ns,
        }
    }
}

/// One scrape. Times are ns on the run's clock (since its start instant; a scrape may
/// start before the first request is due).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// The GET was started.
    pub start_ns: u64,
    /// The whole body was received (or the scrape failed).
    pub end_ns: u64,
    /// Why the scrape failed (one line); `series` is then empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Requests being generated (`vllm:num_requests_running`, `sglang:num_running_reqs`,
    /// `tgi_batch_current_size`), summed over label sets; absent when the server does
    /// not export any of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running: Option<f64>,
    /// Requests queued (`vllm:num_requests_waiting`, `sglang:num_queue_reqs`,
    /// `tgi_queue_size`), summed over label sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<f64>,
    /// KV-cache usage, 0 to 1 (`vllm:kv_cache_usage_perc`, else
    /// `vllm:gpu_cache_usage_perc`, else `sglang:token_usage`), the largest over label
    /// sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kv_usage: Option<f64>,
    /// Every kept series: `name{label="value",...}` (labels sorted, as the text format
    /// writes them) to its value. Kept: gauges, counters and untyped series of the
    /// `vllm:`, `sglang:` and `tgi_` families (histograms and summaries are not).
    #[serde(default)]
    pub series: BTreeMap<String, f64>,
}

impl MetricSample {
    /// The scrape's midpoint: the instant its values are taken to describe.
    pub fn mid_ns(&self) -> u64 {
        self.start_ns + (self.end_ns.saturating_sub(self.start_ns)) / 2
    }
}

/// Appends samples to a sidecar, one flushed line each.
pub struct ServerMetricsWriter {
    out: BufWriter<File>,
    path: PathBuf,
    count: u64,
}

impl ServerMetricsWriter {
    /// Create (or replace) the file and write the header line. A regular file or a
    /// symbolic link at `path` is removed first, never written through: see
    /// [`ServerMetricsWriter::create_new`].
    pub fn create(path: impl AsRef<Path>, header: &ServerMetricsHeader) -> Result<Self> {
        let path = path.as_ref();
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.is_file() || m.file_type().is_symlink() => {
                std::fs::remove_file(path).map_err(|e| FormatError::io(path, e))?;
            }
            _ => {}
        }
        Self::create_new(path, header)
    }

    /// Create the file only if nothing exists at `path` (atomically: `O_EXCL`, which
    /// also refuses a symbolic link there rather than following it), and write the
    /// header line. The same rules as the run log's (`LogWriter::create_new`): a
    /// sidecar never replaces anything by accident, and a link planted at its path
    /// cannot redirect it onto another file.
    pub fn create_new(path: impl AsRef<Path>, header: &ServerMetricsHeader) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        crate::output::ensure_parent_dir(&path)?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::AlreadyExists => {
                    FormatError::Output(crate::output::OutputError::Exists { path: path.clone() })
                }
                _ => FormatError::io(&path, e),
            })?;
        let mut w = ServerMetricsWriter {
            out: BufWriter::new(file),
            path,
            count: 0,
        };
        w.line(header)?;
        Ok(w)
    }

    /// Append one sample and flush it to the file.
    pub fn write(&mut self, sample: &MetricSample) -> Result<()> {
        self.line(sample)?;
        self.count += 1;
        Ok(())
    }

    pub fn sample_count(&self) -> u64 {
        self.count
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn line<T: Serialize>(&mut self, v: &T) -> Result<()> {
        let io = |e| FormatError::io(&self.path, e);
        serde_json::to_writer(&mut self.out, v).map_err(|e| io(e.into()))?;
        self.out.write_all(b"\n").map_err(io)?;
        self.out.flush().map_err(io)
    }
}

/// A whole sidecar in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerMetricsLog {
    pub header: ServerMetricsHeader,
    pub samples: Vec<MetricSample>,
    /// The last line was cut (a killed writer) and dropped.
    pub cut: bool,
}

/// Reads a sidecar (see the module docs for what is tolerated).
pub fn read_server_metrics(path: impl AsRef<Path>) -> Result<ServerMetricsLog> {
    let path = path.as_ref();
    let file = File::open(path).map_err(|e| FormatError::io(path, e))?;
    let mut lines = Vec::new();
    let mut reader = BufReader::new(file);
    let mut cut = false;
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| FormatError::io(path, e))?;
        if n == 0 {
            break;
        }
        if !line.ends_with('\n') {
            cut = true;
            break;
        }
        lines.push(line);
    }
    let Some(first) = lines.first() else {
        return Err(FormatError::NotOurs(format!(
            "{}: empty server-metrics file",
            path.display()
        )));
    };
    let header = parse_header(path, first)?;
    let samples = lines[1..]
        .iter()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| FormatError::Malformed {
                what: "server-metrics sample",
                index: i as u64 + 1,
                message: e.to_string(),
            })
        })
        .collect::<Result<Vec<MetricSample>>>()?;
    Ok(ServerMetricsLog {
        header,
        samples,
        cut,
    })
}

fn parse_header(path: &Path, line: &str) -> Result<ServerMetricsHeader> {
    let not_ours =
        || FormatError::NotOurs(format!("{}: not a server-metrics file", path.display()));
    let value: serde_json::Value = serde_json::from_str(line).map_err(|_| not_ours())?;
    match value.get("format").and_then(|f| f.as_str()) {
        Some(SERVER_METRICS_FORMAT) => {}
        Some(other) => {
            return Err(FormatError::WrongKind {
                expected: SERVER_METRICS_FORMAT,
                found: other.to_string(),
            });
        }
        None => return Err(not_ours()),
    }
    let header: ServerMetricsHeader =
        serde_json::from_value(value).map_err(|e| FormatError::DamagedHeader(e.to_string()))?;
    if header.version > SERVER_METRICS_VERSION {
        return Err(FormatError::NewerVersion {
            kind: SERVER_METRICS_FORMAT,
            found: header.version,
            supported: SERVER_METRICS_VERSION,
        });
    }
    Ok(header)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: u64, running: f64) -> MetricSample {
        MetricSample {
            start_ns: t,
            end_ns: t + 10,
            running: Some(running),
            series: [(
                "vllm:num_requests_running{model_name=\"m\"}".into(),
                running,
            )]
            .into(),
            ..Default::default()
        }
    }

    #[test]
    fn round_trip_and_sidecar_name() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("run.llmib");
        let path = sidecar_path(&log);
        assert!(
            path.to_str()
                .unwrap()
                .ends_with("run.llmib.server-metrics.jsonl")
        );
        assert!(is_sidecar_path(&path) && !is_sidecar_path(&log));
        let header = ServerMetricsHeader::new(42, "http://h/metrics", 500_000_000);
        let mut w = ServerMetricsWriter::create(&path, &header).unwrap();
        w.write(&sample(0, 1.0)).unwrap();
        w.write(&MetricSample {
            start_ns: 5,
            end_ns: 9,
            error: Some("connection refused".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(w.sample_count(), 2);
        drop(w);
        let read = read_server_metrics(&path).unwrap();
        assert_eq!(read.header, header);
        assert!(!read.cut);
        assert_eq!(read.samples[0], sample(0, 1.0));
        assert_eq!(read.samples[1].error.as_deref(), Some("connection refused"));
        assert_eq!(read.samples[1].mid_ns(), 7);
    }

    #[test]
    fn a_cut_last_line_is_dropped_a_bad_line_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.server-metrics.jsonl");
        let header = ServerMetricsHeader::new(1, "u", 1);
        let mut w = ServerMetricsWriter::create(&path, &header).unwrap();
        w.write(&sample(0, 2.0)).unwrap();
        drop(w);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.extend_from_slice(b"{\"start_ns\":3,\"en");
        std::fs::write(&path, &bytes).unwrap();
        let read = read_server_metrics(&path).unwrap();
        assert!(read.cut);
        assert_eq!(read.samples, vec![sample(0, 2.0)]);
        bytes.extend_from_slice(b"\n");
        std::fs::write(&path, &bytes).unwrap();
        let err = read_server_metrics(&path).unwrap_err().to_string();
        assert!(err.contains("server-metrics sample"), "{err}");
    }

    #[test]
    fn other_files_are_told_apart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x");
        std::fs::write(&path, "{\"format\":\"llmib-trace\"}\n").unwrap();
        assert!(matches!(
            read_server_metrics(&path),
            Err(FormatError::WrongKind { .. })
        ));
        std::fs::write(&path, "hello\n").unwrap();
        assert!(matches!(
            read_server_metrics(&path),
            Err(FormatError::NotOurs(_))
        ));
        std::fs::write(&path, "{\"format\":\"llmib-server-metrics\",\"version\":9,\"started_unix_ns\":0,\"url\":\"u\",\"interval_ns\":1}\n").unwrap();
        assert!(matches!(
            read_server_metrics(&path),
            Err(FormatError::NewerVersion { .. })
        ));
    }
}
