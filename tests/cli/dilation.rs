//! Time dilation end to end: the first requests of the committed QPS-8 latency trace,
//! replayed at time scale K against the calibrated profile sped up K times, analyse to
//! the numbers of the same requests replayed in real time against the profile as
//! calibrated, and to the engine model's own numbers in virtual time (the reference
//! neither run can fake): latencies x K, rates / K, labelled x K.

use std::path::{Path, PathBuf};

use formats::SimulatedInfo;
use replayer::{BackendKind, IgnoreEos, ReplayConfig, StopHandle};
use simulator::{Dialect, Policy, Profile, SimConfig, VirtualRequest};

use crate::common;

const TRACE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/traces/latency-qps8.msgpack");
const REQUESTS: u64 = 40;

/// Replays the trace's first requests against the a800 profile sped up `k` times.
async fn run(k: f64, dir: &Path) -> PathBuf {
    let profile = Profile::builtin("a800-llama2-13b")
        .unwrap()
        .sped_up(k)
        .unwrap();
    let server = simulator::start(SimConfig::new(Dialect::Tgi, profile))
        .await
        .unwrap();
    let log = dir.join(format!("k{k}.msgpack"));
    let mut c = ReplayConfig::new(BackendKind::Tgi, server.base_url(), log.clone());
    c.time_scale = k;
    c.max_requests = Some(REQUESTS);
    c.fields.ignore_eos = IgnoreEos::FromTrace;
    c.progress = false;
    c.simulated = Some(SimulatedInfo {
        dialect: "tgi".into(),
        profile: "a800-llama2-13b".into(),
        speedup: (k != 1.0).then_some(k),
        virtual_time: false,
    });
    replayer::replay(Path::new(TRACE), c, StopHandle::new())
        .await
        .unwrap();
    server.shutdown().await.unwrap();
    log
}

/// Median end-to-end latency of the same requests in virtual time (profile units).
fn virtual_median_e2e_s() -> f64 {
    let (_, reqs) = formats::read_trace(TRACE).unwrap();
    let reqs: Vec<VirtualRequest> = reqs
        .iter()
        .take(REQUESTS as usize)
        .map(|r| VirtualRequest {
            arrival_ns: r.arrival_ns,
            prompt_tokens: r.prompt_tokens,
            max_tokens: r.max_tokens,
            target_tokens: r.max_tokens,
        })
        .collect();
    let profile = Profile::builtin("a800-llama2-13b").unwrap();
    let (res, _) = simulator::simulate(profile.engine(Policy::Tgi).unwrap(), Policy::Tgi, &reqs);
    let mut e2e: Vec<f64> = res
        .iter()
        .zip(&reqs)
        .map(|(r, q)| (r.finished_ns - q.arrival_ns) as f64 / 1e9)
        .collect();
    e2e.sort_by(f64::total_cmp);
    (e2e[19] + e2e[20]) / 2.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The lock is held across the awaits on purpose: the whole test is timed; nothing else in
// this runtime takes it.
#[allow(clippy::await_holding_lock)]
async fn a_dilated_run_analyses_to_the_profiles_numbers() {
    let _timing = common::timing_sensitive();
    let dir = tempfile::tempdir().unwrap();
    let k = 20.0;
    let real = run(1.0, dir.path()).await;
    let fast = run(k, dir.path()).await;
    let runs = analyzer::load_runs(&[&real, &fast]).unwrap();
    assert_eq!(
        runs.runs.iter().map(|r| r.dilation).collect::<Vec<_>>(),
        [1.0, k]
    );
    let report = analyzer::report(&runs, &analyzer::AnalyzeOptions::default()).unwrap();
    let (a, b) = (&report.runs[0], &report.runs[1]);
    // Both offer the trace's 8 requests/s in the profile's time: one column, and the
    // dilated run needs no time-scale warning.
    assert_eq!(a.placement, b.placement);
    assert!(
        b.warnings.iter().all(|w| !w.contains("time scale")),
        "{:?}",
        b.warnings
    );
    assert!(
        b.row_label()
            .ends_with("(simulated, a800-llama2-13b, x 20)")
    );
    let e2e = |r: &analyzer::RunReport| r.metrics.e2e_s.p50.unwrap();
    let reference = virtual_median_e2e_s();
    for r in [a, b] {
        let dev = e2e(r) / reference - 1.0;
        assert!(
            dev.abs() < 0.1,
            "{}: median e2e {} vs {reference}",
            r.run,
            e2e(r)
        );
    }
    let dur = |r: &analyzer::RunReport| r.metrics.duration_s.unwrap();
    assert!(
        (dur(b) / dur(a) - 1.0).abs() < 0.1,
        "{} vs {}",
        dur(b),
        dur(a)
    );
    let tput = |r: &analyzer::RunReport| r.metrics.throughput_tok_s.unwrap();
    assert!(
        (tput(b) / tput(a) - 1.0).abs() < 0.1,
        "{} vs {}",
        tput(b),
        tput(a)
    );
}
