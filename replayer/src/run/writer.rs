//! The log writer: its own OS thread, so file I/O never runs on the runtime that
//! timestamps responses.
//!
//! Records arrive over a channel in the order requests finish and are appended at once;
//! the file is flushed at least every [`FLUSH_EVERY`], so a killed run leaves a log
//! readable up to its last flush. The writer is also the last line of defence for the
//! "exactly one record per trace request" rule: it drops (and counts) a duplicate id,
//! and at the end writes a record for any id that never got one (also counted). Both
//! counters must stay zero; tests check them.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use formats::{LogRecord, LogTrailer, LogWriter, Outcome};

pub const FLUSH_EVERY: Duration = Duration::from_millis(500);

/// How long the writer sleeps when it finds no record waiting. It polls instead of
/// blocking on the channel because a blocked receiver makes every sender wake it: a
/// futex call and a context switch per record, paid on the runtime's threads (10% of the
/// client's CPU in a profile of 20,000 short requests). Records reach the file at most
/// this much later; the writer costs ~500 wake-ups per second when idle.
const IDLE_POLL: Duration = Duration::from_millis(2);

pub(crate) enum WriterMsg {
    Record {
        record: Box<LogRecord>,
        /// Dispatch lateness of the request (`None` for never-started requests).
        lateness_ns: Option<Lateness>,
    },
    /// All records are in: write the trailer.
    Finish {
        complete: bool,
        ended_ns: u64,
        client: Option<formats::ClientCpu>,
    },
}

/// How late a request was, ns after its scheduled time: when the dispatcher handed it
/// to the runtime, and when its task started (the record's dispatch time, before any
/// concurrency wait).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Lateness {
    pub handoff_ns: u64,
    pub start_ns: u64,
}

/// One entry per replayed request, for records the writer has to make up.
pub(crate) struct Expected {
    pub id: u64,
    pub scheduled_ns: u64,
    pub prompt_tokens: u32,
    pub max_tokens: u32,
    pub warmup: bool,
    pub session_id: Option<u64>,
    pub turn: Option<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct WriterReport {
    pub records: u64,
    pub by_outcome: BTreeMap<Outcome, u64>,
    pub lateness_ns: Vec<u64>,
    pub handoff_lateness_ns: Vec<u64>,
    /// `dispatched_ns - scheduled_ns` of dispatched requests (lateness + slot wait).
    pub dispatch_delay_ns: Vec<u64>,
    pub output_tokens: u64,
    pub duplicates_dropped: u64,
    pub missing_filled: u64,
    pub trailer: Option<LogTrailer>,
    pub error: Option<String>,
}

pub(crate) fn run(
    rx: Receiver<WriterMsg>,
    log: LogWriter,
    expected: Vec<Expected>,
) -> WriterReport {
    let mut w = Writer::new(log, expected);
    let mut finish = None;
    loop {
        match rx.try_recv() {
            Ok(WriterMsg::Record {
                record,
                lateness_ns,
            }) => {
                if !w.accept(&record, lateness_ns) {
                    continue;
                }
            }
            Ok(WriterMsg::Finish {
                complete,
                ended_ns,
                client,
            }) => {
                finish = Some((complete, ended_ns, client));
            }
            Err(TryRecvError::Empty) => {
                w.flush_if_due();
                std::thread::sleep(IDLE_POLL);
                continue;
            }
            Err(TryRecvError::Disconnected) => break,
        }
        w.flush_if_due();
    }
    w.fill_missing();
    let (complete, ended_ns, client) = finish.unwrap_or((false, 0, None));
    w.finish(complete, ended_ns, client)
}

/// The writer's state: the log, which trace requests have their record, the report.
struct Writer {
    log: LogWriter,
    /// Sorted by id.
    expected: Vec<Expected>,
    first_id: u64,
    /// The ids are `first_id..first_id + n` (a whole trace): a record's index is its id
    /// less `first_id`; otherwise (a shard's requests) it is searched for.
    contiguous: bool,
    seen: Vec<bool>,
    report: WriterReport,
    last_flush: Instant,
}

impl Writer {
    fn new(log: LogWriter, expected: Vec<Expected>) -> Self {
        let n = expected.len();
        Writer {
            log,
            first_id: expected.first().map_or(0, |e| e.id),
            contiguous: expected.last().map_or(0, |e| e.id)
                == expected.first().map_or(0, |e| e.id) + n.saturating_sub(1) as u64,
            seen: vec![false; n],
            expected,
            report: WriterReport {
                lateness_ns: Vec::with_capacity(n),
                dispatch_delay_ns: Vec::with_capacity(n),
                ..WriterReport::default()
            },
            last_flush: Instant::now(),
        }
    }

    /// Writes a request's record unless its id already has one (or is not in the run):
    /// `false` then, and the duplicate is counted.
    fn accept(&mut self, record: &LogRecord, lateness_ns: Option<Lateness>) -> bool {
        let idx = if self.contiguous {
            record.id.wrapping_sub(self.first_id) as usize
        } else {
            self.expected
                .binary_search_by_key(&record.id, |e| e.id)
                .unwrap_or(usize::MAX)
        };
        if idx >= self.seen.len() || self.seen[idx] {
            self.report.duplicates_dropped += 1;
            return false;
        }
        self.seen[idx] = true;
        if let Some(l) = lateness_ns {
            self.report.lateness_ns.push(l.start_ns);
            self.report.handoff_lateness_ns.push(l.handoff_ns);
        }
        self.write(record);
        true
    }

    fn write(&mut self, rec: &LogRecord) {
        let report = &mut self.report;
        if report.error.is_some() {
            return;
        }
        if let Err(e) = self.log.write(rec) {
            report.error = Some(format!("writing the run log: {e}"));
            return;
        }
        report.records += 1;
        *report.by_outcome.entry(rec.outcome).or_default() += 1;
        report.output_tokens += rec.output_tokens.unwrap_or(0) as u64;
        if let Some(d) = rec.dispatched_ns {
            report
                .dispatch_delay_ns
                .push(d.saturating_sub(rec.scheduled_ns));
        }
    }

    fn flush_if_due(&mut self) {
        if self.last_flush.elapsed() >= FLUSH_EVERY {
            if self.report.error.is_none()
                && let Err(e) = self.log.flush()
            {
                self.report.error = Some(format!("flushing the run log: {e}"));
            }
            self.last_flush = Instant::now();
        }
    }

    /// Writes a record for every request that never got one (counted: always 0 unless a
    /// bug).
    fn fill_missing(&mut self) {
        let expected = std::mem::take(&mut self.expected);
        for (e, seen) in expected.iter().zip(std::mem::take(&mut self.seen)) {
            if !seen {
                self.report.missing_filled += 1;
                let mut rec = LogRecord::not_sent(
                    e.id,
                    e.scheduled_ns,
                    e.prompt_tokens,
                    e.max_tokens,
                    e.warmup,
                );
                rec.session_id = e.session_id;
                rec.turn = e.turn;
                rec.error = Some("internal error: no record was produced for this request".into());
                self.write(&rec);
            }
        }
    }

    /// Writes the trailer (complete only if no record had to be made up), with the
    /// client's CPU over the run.
    fn finish(
        mut self,
        complete: bool,
        ended_ns: u64,
        client: Option<formats::ClientCpu>,
    ) -> WriterReport {
        let report = &mut self.report;
        if report.error.is_none() {
            match self.log.finish_with_client(
                complete && report.missing_filled == 0,
                ended_ns,
                client,
            ) {
                Ok(t) => report.trailer = Some(t),
                Err(e) => report.error = Some(format!("finishing the run log: {e}")),
            }
        }
        self.report
    }
}
