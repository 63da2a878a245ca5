//! What makes a comparison fair, read from the run logs' headers and checked: the same
//! trace, the same replay options, the client host, the server each log recorded, the
//! prefix-cache state each run started in, and the client's health (a client that fell
//! behind, or ran CPU-bound, measured itself, not the server).

use formats::RunLog;

/// Dispatch lateness p99 above which a run's client is said to have fallen behind, s
/// (the replayer's own health line warns from 1 ms).
pub const LATENESS_LIMIT_S: f64 = 0.001;

/// The context lines, the warnings, and the runs whose client fell behind.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    /// What was checked and found alike (or only informative).
    pub lines: Vec<String>,
    /// What differs between the sides and may explain a difference.
    pub warnings: Vec<String>,
    /// One line per run whose client fell behind: said at the top of the report.
    pub client_behind: Vec<String>,
}

/// The replay options that shape what a server sees, as one comparable line.
fn options(r: &RunLog) -> String {
    let o = &r.header.options;
    format!(
        "stream {}, concurrency {}, time scale {}, ignore_eos {}, min_tokens {}, max requests {}, duration {}, warm-up {}",
        o.stream,
        o.concurrency.map_or("open loop".into(), |c| c.to_string()),
        o.time_scale,
        o.send_ignore_eos,
        o.send_min_tokens,
        o.max_requests.map_or("all".into(), |n| n.to_string()),
        o.duration_ms.map_or("none".into(), |d| format!("{d} ms")),
        o.warmup
    )
}

/// The server as its log described it ("" when it said nothing).
fn server(r: &RunLog) -> String {
    r.header
        .server_identity
        .as_ref()
        .map(formats::ServerIdentity::describe)
        .unwrap_or_default()
}

/// How the run's prefix cache started: `cold` (reset ok), `warm?` (no reset asked or it
/// failed: whatever earlier runs left).
fn cache_start(r: &RunLog) -> &'static str {
    match &r.header.prefix_cache_reset {
        Some(reset) if reset.is_ok() => "cold",
        _ => "warm?",
    }
}

/// The p99 of (dispatched - scheduled), s.
fn lateness_p99(r: &RunLog) -> Option<f64> {
    let mut late: Vec<f64> = r
        .records
        .iter()
        .filter_map(|x| Some(x.dispatched_ns?.saturating_sub(x.scheduled_ns) as f64 / 1e9))
        .collect();
    late.sort_by(f64::total_cmp);
    crate::stats::quantile_sorted(&late, 0.99)
}

/// One value per side, or the values that differ.
fn alike<T: PartialEq + Clone>(
    a: &[&RunLog],
    b: &[&RunLog],
    f: impl Fn(&RunLog) -> T,
) -> (Vec<T>, Vec<T>, bool) {
    let va: Vec<T> = a.iter().map(|r| f(r)).collect();
    let vb: Vec<T> = b.iter().map(|r| f(r)).collect();
    let all_same = va.iter().chain(&vb).all(|x| *x == va[0]);
    (va, vb, all_same)
}

/// Checks the two sides' runs.
pub fn check(a: &[&RunLog], b: &[&RunLog]) -> Context {
    let mut c = Context::default();
    let (ta, tb, same) = alike(a, b, |r| {
        (r.header.trace.name.clone(), r.header.trace.sha256.clone())
    });
    if same {
        c.lines.push(format!(
            "trace: the same ({}, sha256 {:.12})",
            ta[0].0, ta[0].1
        ));
    } else {
        c.lines.push(format!(
            "trace: different (A {}, B {}): requests are not paired",
            ta[0].0, tb[0].0
        ));
    }
    let (oa, ob, same) = alike(a, b, options);
    if same {
        c.lines.push(format!("options: the same ({})", oa[0]));
    } else {
        c.warnings.push(format!(
            "the replay options differ: A {}; B {}",
            oa[0], ob[0]
        ));
    }
    let (ha, hb, same) = alike(a, b, |r| r.header.host.clone());
    c.lines.push(if same {
        format!("client host: the same ({})", ha[0])
    } else {
        format!(
            "client host: different (A {}, B {})",
            ha.join(","),
            hb.join(",")
        )
    });
    let (sa, sb, same) = alike(a, b, server);
    if !same {
        c.warnings.push(format!(
            "the servers differ: A `{}`; B `{}`",
            sa[0],
            sb.iter().find(|s| **s != sa[0]).unwrap_or(&sb[0])
        ));
    } else if !sa[0].is_empty() {
        c.lines.push(format!("server: the same ({})", sa[0]));
    }
    let (ca, cb, same) = alike(a, b, cache_start);
    if same {
        c.lines
            .push(format!("prefix cache at the start: {} in every run", ca[0]));
    } else {
        c.warnings.push(format!(
            "the runs started with different prefix-cache states: A {}, B {} (cold: reset before the run; warm?: not reset, whatever earlier runs left)",
            ca.join(","),
            cb.join(",")
        ));
    }
    for (side, runs) in [("A", a), ("B", b)] {
        for (i, r) in runs.iter().enumerate() {
            if let Some(p99) = lateness_p99(r).filter(|p| *p > LATENESS_LIMIT_S) {
                c.client_behind.push(format!(
                    "the client fell behind in {side}'s run {}: dispatch lateness p99 {:.1} ms (> {:.0} ms): its times include the client's delay",
                    i + 1,
                    p99 * 1e3,
                    LATENESS_LIMIT_S * 1e3
                ));
            }
            if let Some(t) = cpu_bound(r) {
                c.client_behind.push(format!(
                    "the client was CPU-bound in {side}'s run {}: {:.1} s of CPU on {} cores over the run (over 85% of every core): its times may include the client's delay",
                    i + 1,
                    t.client_cpu_ms.unwrap_or(0) as f64 / 1e3,
                    t.client_cores.map_or("?".into(), |c| c.to_string())
                ));
            }
        }
    }
    c
}

/// The run's trailer when it says the client was CPU-bound (`llmib replay` records it).
fn cpu_bound(r: &RunLog) -> Option<&formats::LogTrailer> {
    match &r.end {
        formats::LogEnd::Trailer(t) if t.client_cpu_bound == Some(true) => Some(t),
        _ => None,
    }
}
