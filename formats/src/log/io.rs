//! Reading and writing a run log: the trailer (record count, checksums, whether the run
//! ended normally), the writer that appends records as they finish, and the reader
//! that tolerates a missing trailer (a killed writer) but not a damaged one.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{FormatError, Result};
use crate::log::header::{LOG_FORMAT, LOG_VERSION, LogHeader};
use crate::log::record::LogRecord;
use crate::object::{decode, encode_named};
use crate::stream::{Next, ObjectReader, ObjectWriter, decode_header, open_buffered};
use crate::trailer::{Hole, Sealed, Tail, TrailerSums};

/// Last object of a run log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogTrailer {
    /// Always true: marks this object as the trailer.
    pub trailer: bool,
    /// False when the run was interrupted (Ctrl-C) or stopped by `--duration`.
    pub complete: bool,
    pub record_count: u64,
    /// When the run ended, ns since run start.
    pub ended_ns: u64,
    /// CRC-32 (zlib) of the concatenated bytes of all record objects.
    pub crc32: u32,
    /// CRC-32 of the header object's bytes (version 2; `None` in version 1 logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_crc32: Option<u32>,
    /// The client's CPU time over the run (the replayer's process, without its
    /// dispatcher thread, which spins by design), ms; absent when not measured (logs
    /// written before, virtual-time runs, merged shards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cpu_ms: Option<u64>,
    /// Cores the client's machine offered the replayer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cores: Option<u32>,
    /// The client used more than 85% of every core over a run longer than 0.5 s: its
    /// timings may include its own delay (`llmib replay` warned so at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cpu_bound: Option<bool>,
    /// CRC-32 of this trailer's bytes before the `trailer_crc32` key, which is the last
    /// entry (version 2; `None` in version 1 logs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailer_crc32: Option<u32>,
}

impl Sealed for LogTrailer {
    fn set_trailer_crc32(&mut self, crc: u32) {
        self.trailer_crc32 = Some(crc);
    }

    fn sums(&self) -> TrailerSums {
        TrailerSums {
            trailer: self.trailer,
            record_count: self.record_count,
            crc32: self.crc32,
            header_crc32: self.header_crc32,
            trailer_crc32: self.trailer_crc32,
        }
    }
}

/// Trailer fields a reader cannot know before reading them.
const LOG_TRAILER_HOLES: &[(&str, Hole)] = &[
    ("complete", Hole::Bool),
    ("ended_ns", Hole::Uint),
    ("client_cpu_ms", Hole::Uint),
    ("client_cores", Hole::Uint),
    ("client_cpu_bound", Hole::Bool),
];

/// The client's CPU over a run, for the trailer (see [`LogTrailer::client_cpu_ms`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientCpu {
    pub cpu_ms: u64,
    pub cores: u32,
    pub bound: bool,
}

/// Appends records to a run log as they finish.
pub struct LogWriter {
    inner: ObjectWriter<BufWriter<File>>,
}

impl LogWriter {
    /// Creates the log, replacing an existing regular file (a directory, device node,
    /// FIFO or socket at `path` is refused). See [`LogWriter::create_new`].
    pub fn create(path: impl AsRef<Path>, header: &LogHeader) -> Result<Self> {
        Self::open(path.as_ref(), header, true)
    }

    /// Creates the log only if nothing exists at `path` (atomically: `O_EXCL`), so a
    /// run can never replace an earlier one by accident.
    pub fn create_new(path: impl AsRef<Path>, header: &LogHeader) -> Result<Self> {
        Self::open(path.as_ref(), header, false)
    }

    fn open(path: &Path, header: &LogHeader, replace: bool) -> Result<Self> {
        crate::output::ensure_regular_or_absent(path)?;
        crate::output::ensure_parent_dir(path)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true);
        if replace {
            options.create(true).truncate(true);
        } else {
            options.create_new(true);
        }
        let file = options.open(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                FormatError::Output(crate::output::OutputError::Exists {
                    path: path.to_path_buf(),
                })
            }
            _ => FormatError::io(path, e),
        })?;
        let mut inner = ObjectWriter::buffered(file, header)?;
        inner.flush()?;
        Ok(LogWriter { inner })
    }

    pub fn write(&mut self, record: &LogRecord) -> Result<()> {
        self.inner.write_record(record)
    }

    /// Pushes buffered records to the operating system.
    pub fn flush(&mut self) -> Result<()> {
        self.inner.flush()
    }

    pub fn record_count(&self) -> u64 {
        self.inner.count()
    }

    /// Writes the trailer, flushes and syncs.
    pub fn finish(self, complete: bool, ended_ns: u64) -> Result<LogTrailer> {
        self.finish_with_client(complete, ended_ns, None)
    }

    /// [`LogWriter::finish`], recording the client's CPU over the run when measured.
    pub fn finish_with_client(
        self,
        complete: bool,
        ended_ns: u64,
        client: Option<ClientCpu>,
    ) -> Result<LogTrailer> {
        let mut trailer = LogTrailer {
            trailer: true,
            complete,
            record_count: self.inner.count(),
            ended_ns,
            crc32: self.inner.crc32(),
            header_crc32: Some(self.inner.header_crc32()),
            client_cpu_ms: client.map(|c| c.cpu_ms),
            client_cores: client.map(|c| c.cores),
            client_cpu_bound: client.map(|c| c.bound),
            trailer_crc32: None,
        };
        let file = self.inner.finish(&mut trailer)?;
        file.sync_all()?;
        Ok(trailer)
    }
}

/// How a log ended, known once all records were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// A valid trailer: count and checksum verified.
    Trailer(LogTrailer),
    /// No trailer (the writer was killed): every complete record was returned;
    /// `partial_tail` says whether a half-written record was dropped.
    Truncated { records: u64, partial_tail: bool },
}

/// Streams the records of a run log. A missing trailer is not an error (see
/// [`LogReader::end`]); a bad checksum or count, or a damaged trailer, is.
pub struct LogReader<R: BufRead> {
    header: LogHeader,
    objects: ObjectReader<R>,
    end: Option<LogEnd>,
    failed: bool,
}

impl LogReader<BufReader<File>> {
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        LogReader::new(open_buffered(path.as_ref())?)
    }
}

impl<R: BufRead> LogReader<R> {
    pub fn new(input: R) -> Result<Self> {
        let mut objects = ObjectReader::new(input);
        let header: LogHeader = decode_header(objects.header(LOG_FORMAT, LOG_VERSION)?)?;
        Ok(LogReader {
            header,
            objects,
            end: None,
            failed: false,
        })
    }

    pub fn header(&self) -> &LogHeader {
        &self.header
    }

    /// How the file ended; `None` until the iterator is exhausted.
    pub fn end(&self) -> Option<&LogEnd> {
        self.end.as_ref()
    }

    fn next_record(&mut self) -> Result<Option<LogRecord>> {
        let index = self.objects.count();
        match self.objects.next()? {
            Next::Record(bytes) => Ok(Some(decode("log record", index + 1, bytes)?)),
            Next::Trailer => {
                let trailer: LogTrailer = self.objects.trailer()?;
                self.end = Some(LogEnd::Trailer(trailer));
                Ok(None)
            }
            Next::EndWithoutTrailer => {
                self.end = Some(LogEnd::Truncated {
                    records: index,
                    partial_tail: false,
                });
                Ok(None)
            }
            Next::PartialTail => self.partial_tail(index),
            Next::Invalid(message) => {
                let message = format!("after {index} records: {message}");
                Err(match self.objects.tail(&[], &[]) {
                    Tail::DamagedTrailer => FormatError::DamagedTrailer(message),
                    _ => FormatError::Corrupted(message),
                })
            }
        }
    }

    /// A file ending inside an object: a cut record or a cut trailer is a truncated
    /// log (a killed writer), anything else an error.
    fn partial_tail(&mut self, index: u64) -> Result<Option<LogRecord>> {
        // A trailer with the client's CPU (a replay) or without (any other writer).
        let with = self
            .objects
            .tail(&self.expected_trailer(true), LOG_TRAILER_HOLES);
        let tail = match with {
            Tail::CutTrailer => with,
            _ => self
                .objects
                .tail(&self.expected_trailer(false), LOG_TRAILER_HOLES),
        };
        match tail {
            Tail::CutRecord | Tail::CutTrailer => {
                self.end = Some(LogEnd::Truncated {
                    records: index,
                    partial_tail: true,
                });
                Ok(None)
            }
            Tail::DamagedTrailer => Err(FormatError::DamagedTrailer(format!(
                "the file ends inside a trailer that does not match its {index} records"
            ))),
            Tail::Other => Err(FormatError::Corrupted(format!(
                "after {index} records the file ends inside an object that is neither a record nor a trailer"
            ))),
        }
    }

    /// The trailer this crate's writer puts after the records read so far, with
    /// placeholders for the fields in [`LOG_TRAILER_HOLES`]; `client`: with the client's
    /// CPU fields.
    fn expected_trailer(&self, client: bool) -> Vec<u8> {
        let sums = self.objects.expected_sums();
        let trailer = LogTrailer {
            trailer: true,
            complete: false,
            record_count: sums.record_count,
            ended_ns: 0,
            crc32: sums.crc32,
            header_crc32: sums.header_crc32,
            client_cpu_ms: client.then_some(0),
            client_cores: client.then_some(0),
            client_cpu_bound: client.then_some(false),
            trailer_crc32: sums.trailer_crc32,
        };
        let mut out = Vec::new();
        encode_named("trailer", &trailer, &mut out).expect("a trailer always encodes");
        out
    }
}

impl<R: BufRead> Iterator for LogReader<R> {
    type Item = Result<LogRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.end.is_some() || self.failed {
            return None;
        }
        match self.next_record() {
            Ok(Some(r)) => Some(Ok(r)),
            Ok(None) => None,
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// A whole run log in memory.
#[derive(Debug, Clone)]
pub struct RunLog {
    pub header: LogHeader,
    pub records: Vec<LogRecord>,
    pub end: LogEnd,
}

impl RunLog {
    /// True when the log has a verified trailer.
    pub fn has_trailer(&self) -> bool {
        matches!(self.end, LogEnd::Trailer(_))
    }
}

/// Reads a whole run log (tolerating a missing trailer, see [`LogEnd`]).
pub fn read_log(path: impl AsRef<Path>) -> Result<RunLog> {
    let mut reader = LogReader::open(path)?;
    let mut records = Vec::new();
    for r in reader.by_ref() {
        records.push(r?);
    }
    let end = reader
        .end()
        .cloned()
        .expect("iterator exhausted without error");
    Ok(RunLog {
        header: reader.header,
        records,
        end,
    })
}
