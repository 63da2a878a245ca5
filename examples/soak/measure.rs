//! The soak's measurements: client RSS over the run, how promptly records reached the
//! file, the client's dispatch lateness.
//!
//! Why these: a replayer that leaks per request would show RSS rising with the request
//! count (so the soak reports start, peak and end, and the drift between the first and
//! last tenth of the run); one that buffers its log would leave a killed run with
//! nothing (so the soak measures the longest time the on-disk record count stood still
//! while requests were completing, and how long any record took to reach the file).

use crate::tail::Seen;

/// One ~100 ms sample of the running replay.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Seconds since the replay process started.
    pub t_s: f64,
    pub rss_kib: u64,
    /// Major page faults of the client so far.
    pub major_faults: u64,
    /// Complete records readable from the log file at that moment.
    pub on_disk: u64,
}

/// Client RSS over the run, KiB. The run is the samples while requests were
/// completing (records on disk, fewer than all): `start` is its first sample (trace
/// loaded, every body prepared), `end` its last, `peak` the highest of all samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rss {
    pub start: u64,
    pub peak: u64,
    pub end: u64,
    /// Median of the last tenth of the run minus median of the first tenth, KiB.
    pub drift: i64,
    /// Steady growth per completed request, bytes: see [`steady_growth`].
    pub bytes_per_request: f64,
}

pub fn rss(samples: &[Sample], n: u64) -> Rss {
    let run: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.on_disk > 0 && s.on_disk < n)
        .collect();
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Rss::default();
    };
    let tenth = (run.len() / 10).max(1);
    let median = |xs: &[&Sample]| {
        let mut v: Vec<u64> = xs.iter().map(|s| s.rss_kib).collect();
        v.sort_unstable();
        v[v.len() / 2] as i64
    };
    Rss {
        start: first.rss_kib,
        peak: samples.iter().map(|s| s.rss_kib).max().unwrap_or(0),
        end: last.rss_kib,
        drift: median(&run[run.len() - tenth..]) - median(&run[..tenth]),
        bytes_per_request: steady_growth(&run, n),
    }
}

/// RSS growth per completed request in the middle 80% of the run, bytes: the median
/// over windows of 5% of the requests each. A leak grows RSS in every window; a burst of
/// concurrency after a client stall raises the allocator's high-water mark once, in one
/// window, and does not move the median.
fn steady_growth(run: &[&Sample], n: u64) -> f64 {
    let window = (n / 20).max(1);
    let mut slopes: Vec<f64> = Vec::new();
    let mut lo = n / 10;
    while lo + window <= n - n / 10 {
        let inside: Vec<&&Sample> = run
            .iter()
            .filter(|s| (lo..lo + window).contains(&s.on_disk))
            .collect();
        if let (Some(a), Some(b)) = (inside.first(), inside.last())
            && b.on_disk > a.on_disk
        {
            let grown = (b.rss_kib as f64 - a.rss_kib as f64) * 1024.0;
            slopes.push(grown / (b.on_disk - a.on_disk) as f64);
        }
        lo += window;
    }
    slopes.sort_by(f64::total_cmp);
    slopes.get(slopes.len() / 2).copied().unwrap_or(0.0)
}

/// How promptly records reached the file.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flush {
    /// Longest interval between two growths of the on-disk record count (or from the
    /// first completion to the first record) during which a request completed, ns.
    pub max_gap_ns: u64,
    /// Longest time from a request's completion to its record being readable, ns.
    pub max_delay_ns: u64,
    /// p99 of that delay, ns.
    pub p99_delay_ns: u64,
}

pub fn flush(records: &[Seen]) -> Flush {
    let mut completions: Vec<u64> = records.iter().filter_map(|r| r.completed_unix_ns).collect();
    completions.sort_unstable();
    // The standstill before the first record counts too: from the first completion.
    let mut growths: Vec<u64> = completions.first().copied().into_iter().collect();
    growths.extend(records.iter().map(|r| r.readable_unix_ns));
    growths.dedup();
    let mut max_gap_ns = 0;
    for w in growths.windows(2) {
        let (a, b) = (w[0], w[1]);
        let i = completions.partition_point(|&c| c < a);
        if completions.get(i).is_some_and(|&c| c < b) {
            max_gap_ns = max_gap_ns.max(b - a);
        }
    }
    let mut delays: Vec<u64> = records
        .iter()
        .filter_map(|r| Some(r.readable_unix_ns.saturating_sub(r.completed_unix_ns?)))
        .collect();
    Flush {
        max_gap_ns,
        max_delay_ns: delays.iter().copied().max().unwrap_or(0),
        p99_delay_ns: percentile(&mut delays, 0.99),
    }
}

/// Dispatch lateness of the run (`dispatched - scheduled`), ns.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lateness {
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

pub fn lateness(records: &[Seen]) -> Lateness {
    let mut v: Vec<u64> = records.iter().filter_map(|r| r.lateness_ns).collect();
    Lateness {
        p50: percentile(&mut v, 0.5),
        p99: percentile(&mut v, 0.99),
        max: v.iter().copied().max().unwrap_or(0),
    }
}

/// Nearest-rank percentile (0 for no values).
pub fn percentile(v: &mut [u64], q: f64) -> u64 {
    if v.is_empty() {
        return 0;
    }
    v.sort_unstable();
    let rank = ((q * v.len() as f64).ceil() as usize).clamp(1, v.len());
    v[rank - 1]
}

/// Major page faults of the client while requests were completing.
pub fn major_faults(samples: &[Sample], n: u64) -> u64 {
    let run: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.on_disk > 0 && s.on_disk < n)
        .collect();
    match (run.first(), run.last()) {
        (Some(a), Some(b)) => b.major_faults.saturating_sub(a.major_faults),
        _ => 0,
    }
}

/// The samples as CSV (`t_s,rss_kib,records_on_disk,major_faults`), for plotting.
pub fn samples_csv(samples: &[Sample]) -> String {
    let mut s = String::from("t_s,rss_kib,records_on_disk,major_faults\n");
    for x in samples {
        s.push_str(&format!(
            "{:.3},{},{},{}\n",
            x.t_s, x.rss_kib, x.on_disk, x.major_faults
        ));
    }
    s
}
