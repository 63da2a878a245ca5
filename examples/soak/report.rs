//! The soak's results, printed as Markdown tables (the README's performance table takes
//! its rows from here).

use replayer::fmt_ns;

use crate::faults::FaultTally;
use crate::measure::{Flush, Lateness, Rss};
use crate::verify::Check;

/// Everything the soak prints at the end.
pub struct Report<'a> {
    pub title: String,
    pub load_before: String,
    pub load_after: String,
    pub replay_summary: &'a str,
    pub requests: u64,
    pub rate: f64,
    pub arrival: &'a str,
    pub replay_wall_s: f64,
    pub faults: &'a [FaultTally],
    pub records: u64,
    pub trailer: &'a str,
    pub rss: Rss,
    pub flush: Flush,
    pub lateness: Lateness,
    pub major_faults: u64,
    pub checks: &'a [Check],
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn signed_mib(kib: i64) -> String {
    format!("{:+.1} MiB", kib as f64 / 1024.0)
}

pub fn print(r: &Report) {
    println!("\n## {}", r.title);
    println!(
        "load average (1/5/15 min): {} before, {} after",
        r.load_before, r.load_after
    );
    println!("\nreplay summary (llmib replay stdout):");
    for line in r.replay_summary.lines() {
        println!("    {line}");
    }
    print_measurements(r);
    print_faults(r.faults);
    print_checks(r.checks);
}

fn print_measurements(r: &Report) {
    let injected: u64 = r.faults.iter().map(|f| f.injected).sum();
    let accounted: u64 = r.faults.iter().map(|f| f.accounted).sum();
    println!("\n| measurement | value |");
    println!("| --- | --- |");
    println!(
        "| requests, rate | {} at {} req/s ({}), replay {:.1} s |",
        r.requests, r.rate, r.arrival, r.replay_wall_s
    );
    println!(
        "| faults injected / accounted | {injected} / {accounted} ({:.2}% of requests) |",
        100.0 * injected as f64 / r.requests.max(1) as f64
    );
    println!("| records / trailer | {} / {} |", r.records, r.trailer);
    println!(
        "| client RSS start / peak / end | {} / {} / {} (first to last tenth {}; steady growth {:.0} B per request) |",
        mib(r.rss.start),
        mib(r.rss.peak),
        mib(r.rss.end),
        signed_mib(r.rss.drift),
        r.rss.bytes_per_request
    );
    println!(
        "| max flush gap; completion-to-disk p99 / max | {}; {} / {} |",
        fmt_ns(r.flush.max_gap_ns),
        fmt_ns(r.flush.p99_delay_ns),
        fmt_ns(r.flush.max_delay_ns)
    );
    println!(
        "| client lateness p50 / p99 / max | {} / {} / {} |",
        fmt_ns(r.lateness.p50),
        fmt_ns(r.lateness.p99),
        fmt_ns(r.lateness.max)
    );
    println!(
        "| client major page faults during the run | {} |",
        r.major_faults
    );
}

fn print_faults(faults: &[FaultTally]) {
    println!("\n| fault | injected | accounted |");
    println!("| --- | --- | --- |");
    for f in faults {
        println!("| {} | {} | {} |", f.kind, f.injected, f.accounted);
    }
}

fn print_checks(checks: &[Check]) {
    println!("\n| check | result | detail |");
    println!("| --- | --- | --- |");
    for c in checks {
        let result = if c.ok { "ok" } else { "**FAILED**" };
        println!("| {} | {result} | {} |", c.name, c.detail);
    }
}
