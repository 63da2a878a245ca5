//! The cool-down against the simulator's `/metrics`, and the queue-state reading.

use std::time::Duration;

use simulator::{Dialect, Profile, SimConfig};

use super::*;

fn series(text: &str) -> Vec<Series> {
    text::parse(text).unwrap()
}

#[test]
fn queue_state_prefers_vllm_names_and_sums_label_sets() {
    let s = series(
        "vllm:num_requests_running{engine=\"0\"} 2\nvllm:num_requests_running{engine=\"1\"} 3\n\
         sglang:num_running_reqs 9\nvllm:gpu_cache_usage_perc{engine=\"0\"} 0.5\n\
         vllm:gpu_cache_usage_perc{engine=\"1\"} 0.25\n",
    );
    let q = QueueState::from_series(&s);
    assert_eq!(q.running, Some(5.0));
    assert_eq!(q.waiting, None);
    assert_eq!(q.kv_usage, Some(0.5));
    assert!(!q.is_idle());
    let q = QueueState::from_series(&series(
        "sglang:num_queue_reqs 0\nsglang:num_running_reqs 0\n",
    ));
    assert_eq!((q.running, q.waiting), (Some(0.0), Some(0.0)));
    assert!(q.is_idle());
    let q = QueueState::from_series(&series("tgi_queue_size 4\ntgi_batch_current_size 1\n"));
    assert_eq!((q.running, q.waiting), (Some(1.0), Some(4.0)));
}

#[test]
fn only_engine_gauges_and_counters_are_kept() {
    let s = series(
        "# TYPE vllm:a gauge\nvllm:a 1\n# TYPE vllm:h histogram\nvllm:h_bucket{le=\"1\"} 1\n\
         vllm:h_sum 1\n# TYPE vllm:c_total counter\nvllm:c_total 2\nvllm:c_created 17\n\
         process_cpu_seconds_total 3\nvllm:nan NaN\ntgi_queue_size 0\n",
    );
    let kept: Vec<&str> = s
        .iter()
        .filter(|s| keep(s))
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(kept, ["vllm:a", "vllm:c_total", "tgi_queue_size"]);
}

#[test]
fn auto_url_is_metrics_on_the_endpoint_host() {
    assert_eq!(
        auto_url("http://h:8000/v1").unwrap().as_str(),
        "http://h:8000/metrics"
    );
    assert!(parse_url("ftp://h/metrics").is_err());
}

/// Sends a TGI `/generate` of `tokens` tokens and waits for its answer.
async fn generate(base: String, tokens: u32) -> reqwest::StatusCode {
    let body =
        format!("{{\"inputs\":\"hello world\",\"parameters\":{{\"max_new_tokens\":{tokens}}}}}");
    crate::net::http::client_builder(&crate::net::tls::plain())
        .build()
        .unwrap()
        .post(format!("{base}/generate"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_until_idle_waits_for_the_running_requests() {
    let server = simulator::start(SimConfig::new(
        Dialect::Tgi,
        Profile::builtin("tiny").unwrap(),
    ))
    .await
    .unwrap();
    let base = server.base_url();
    let url = format!("{base}/metrics");
    // Idle at once before any request.
    let idle = wait_until_idle(&url, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(idle.polls, 1);
    assert_eq!(idle.kv_usage, Some(0.0));
    // Four long requests (about 1 s each on the tiny profile; longer under load).
    let tasks: Vec<_> = (0..4)
        .map(|_| tokio::spawn(generate(base.clone(), 1900)))
        .collect();
    // Until the engine says they run (a condition, not a guess of how long).
    let parsed = parse_url(&url).unwrap();
    let c = client(&TlsOptions::default(), &parsed, Duration::from_secs(5)).unwrap();
    let running = loop {
        let q = QueueState::from_series(&fetch(&c, &parsed).await.unwrap());
        if q.running.unwrap() > 0.0 {
            break q;
        }
        assert!(
            !tasks.iter().all(|t| t.is_finished()),
            "the requests ended before the engine was seen running them"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(running.kv_usage.unwrap() > 0.0);
    match wait_until_idle(&url, Duration::from_millis(20)).await {
        Err(ServerMetricsError::NotIdle { running, .. }) => assert!(running > 0.0),
        other => panic!("expected NotIdle, got {other:?}"),
    }
    let idle = wait_until_idle(&url, Duration::from_secs(120))
        .await
        .unwrap();
    assert!(idle.polls >= 1);
    for t in tasks {
        assert!(t.await.unwrap().is_success());
    }
    let after = QueueState::from_series(&fetch(&c, &parsed).await.unwrap());
    assert!(after.is_idle(), "{after:?}");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn servers_that_cannot_say_are_reported_at_the_first_poll() {
    let server = simulator::start(SimConfig::new(
        Dialect::Tgi,
        Profile::builtin("tiny").unwrap(),
    ))
    .await
    .unwrap();
    let base = server.base_url();
    let long = Duration::from_secs(60);
    match wait_until_idle(&format!("{base}/nope"), long).await {
        Err(ServerMetricsError::Fetch { status, .. }) => assert_eq!(status, Some(404)),
        other => panic!("expected a 404, got {other:?}"),
    }
    // `/health` answers 200 with an empty body: parses, but holds no queue gauge.
    match wait_until_idle(&format!("{base}/health"), long).await {
        Err(e @ ServerMetricsError::NoQueueMetrics { .. }) => {
            assert!(e.to_string().contains("no running or waiting gauge"))
        }
        other => panic!("expected NoQueueMetrics, got {other:?}"),
    }
    server.shutdown().await.unwrap();
    match wait_until_idle(&format!("{base}/metrics"), long).await {
        Err(e @ ServerMetricsError::Fetch { status: None, .. }) => {
            assert!(!e.to_string().contains('\n'))
        }
        other => panic!("expected a connection failure, got {other:?}"),
    }
}
