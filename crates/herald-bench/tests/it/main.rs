//! Integration tests: `run()` against a tiny in-process SSE hub, checking
//! correctness (every event delivered once, in order), not speed.

mod hub;

use herald_bench::{BenchArgs, PayloadKind, PublishFormat};

fn args(url: String, publish_url: String) -> BenchArgs {
    BenchArgs {
        urls: vec![url],
        subscribers: 50,
        topics: 1,
        topic: None,
        publish_url: Some(publish_url),
        publish_format: PublishFormat::Raw,
        token: None,
        rate: 200.0,
        max_rate: false,
        size: 100,
        payload: PayloadKind::Padded,
        gzip: false,
        publishers: 2,
        pipeline: 1,
        duration: 1.0,
        warmup: 0.2,
        source_ips: 4,
        processes: 1,
        hub_pid: vec![std::process::id()],
        json: false,
        reconnect_storm: false,
        allow_remote: false,
        max_connections: 1000,
        connect_concurrency: 64,
        connect_timeout: 10.0,
        read_buffer: 4096,
        settle: 0.1,
        idle_after: 0.0,
        worker_exe: None,
    }
}

fn assert_exact(report: &herald_bench::Report, subscribers: u64) {
    assert_eq!(report.established, subscribers, "{report}");
    assert_eq!(report.failed, 0, "{report}");
    assert!(report.published > 0, "{report}");
    assert_eq!(report.publish_errors, 0, "{report}");
    assert_eq!(report.gaps, 0, "{report}");
    assert_eq!(report.duplicates, 0, "{report}");
    assert_eq!(report.missing, 0, "{report}");
    assert_eq!(report.foreign, 0, "{report}");
}

#[tokio::test]
async fn chunked_hub_gets_every_event_once() {
    let hub = hub::Hub::start(true).await;
    let report = herald_bench::run(args(hub.subscribe_url("t{i}"), hub.publish_url()))
        .await
        .unwrap();
    assert_exact(&report, 50);
    assert_eq!(report.deliveries, 50 * report.published, "{report}");
    assert!(report.latency_ms.samples > 0, "{report}");
    assert!(report.hub_kib_per_subscriber.is_some(), "{report}");
    assert!(report.hub_kib_per_subscriber_end.is_some(), "{report}");
    assert_eq!(report.hub_rss_idle_after_kib, None, "{report}");
}

#[tokio::test]
async fn identity_bodies_and_topics_keep_their_own_sequences() {
    let hub = hub::Hub::start(false).await;
    let mut args = args(hub.subscribe_url("t{i}"), hub.publish_url());
    args.topics = 5;
    args.max_rate = true;
    args.pipeline = 4;
    args.duration = 0.5;
    let report = herald_bench::run(args).await.unwrap();
    assert_exact(&report, 50);
    // Each topic's events reach its 10 subscribers.
    assert_eq!(report.deliveries, 10 * report.published, "{report}");
}

#[tokio::test]
async fn reconnect_storm_resumes_without_gaps() {
    let hub = hub::Hub::start(true).await;
    let mut args = args(hub.subscribe_url("t{i}"), hub.publish_url());
    args.reconnect_storm = true;
    args.hub_pid = Vec::new();
    let report = herald_bench::run(args).await.unwrap();
    assert_exact(&report, 50);
    let storm = report.storm.as_ref().unwrap();
    assert_eq!((storm.reconnected, storm.failed), (50, 0), "{report}");
    assert_eq!(storm.caught_up, 50, "{report}");
    assert_eq!(report.deliveries, 50 * report.published, "{report}");
}

#[tokio::test]
async fn workers_in_child_processes() {
    let hub = hub::Hub::start(true).await;
    let mut args = args(hub.subscribe_url("t{i}"), hub.publish_url());
    args.processes = 2;
    args.worker_exe = Some(env!("CARGO_BIN_EXE_herald-bench").into());
    let report = herald_bench::run(args).await.unwrap();
    assert_exact(&report, 50);
    assert_eq!(report.processes, 2);
    assert_eq!(report.deliveries, 50 * report.published, "{report}");
}

#[tokio::test]
async fn subscribers_spread_over_the_nodes_of_a_hub() {
    let nodes = hub::Hub::start_nodes(3, true).await;
    let mut args = args(nodes[0].subscribe_url("t{i}"), nodes[1].publish_url());
    args.urls = nodes.iter().map(|n| n.subscribe_url("t{i}")).collect();
    args.subscribers = 60;
    args.topics = 4;
    let me = std::process::id();
    args.hub_pid = vec![me, me, me];
    let report = herald_bench::run(args).await.unwrap();
    assert_exact(&report, 60);
    // Each topic's events reach its 15 subscribers, wherever they are.
    assert_eq!(report.deliveries, 15 * report.published, "{report}");
    assert_eq!(report.nodes.len(), 3, "{report}");
    for (node, hub) in report.nodes.iter().zip(&nodes) {
        assert_eq!(node.established, 20, "{report}");
        assert_eq!(node.url, hub.subscribe_url("t{i}"));
        assert_eq!(node.pids, [me]);
        assert!(node.kib_per_subscriber.is_some(), "{report}");
    }
    assert_eq!(report.hub_processes.len(), 3, "{report}");
    // The summed figures stay: three readings of the same process.
    let after: u64 = report
        .hub_processes
        .iter()
        .filter_map(|p| p.rss_after_kib)
        .sum();
    assert_eq!(report.hub_rss_after_kib, Some(after), "{report}");
    assert!(report.hub_cpu_percent.is_some(), "{report}");
    assert!(report.nodes[0].cpu_percent.is_some(), "{report}");
    assert!(!report.machine_cpus.is_empty(), "{report}");
}

#[tokio::test]
async fn gzip_streams_are_inflated_and_their_bytes_counted() {
    let hub = hub::Hub::start_gzip().await;
    let mut args = args(hub.subscribe_url("t{i}"), hub.publish_url());
    args.gzip = true;
    args.payload = PayloadKind::Json;
    args.idle_after = 0.3;
    let report = herald_bench::run(args).await.unwrap();
    assert_exact(&report, 50);
    assert_eq!(report.corrupt, 0, "{report}");
    assert_eq!(report.deliveries, 50 * report.published, "{report}");
    let bytes = &report.bytes;
    // The stream inflates to more than what crossed the wire...
    assert!(bytes.stream > bytes.body, "{report}");
    assert!(bytes.compression_ratio > 1.5, "{report}");
    // ...whose HTTP framing comes on top of the compressed body.
    assert!(bytes.wire > bytes.body, "{report}");
    assert!(bytes.stream_per_delivery > 150.0, "{report}");
    assert!(
        bytes.wire_per_delivery < bytes.stream_per_delivery,
        "{report}"
    );
    assert!(bytes.wire_per_subscriber > 0.0, "{report}");
    assert!(report.hub_rss_idle_after_kib.is_some(), "{report}");

    // Without --gzip the same hub sends the stream as it is.
    let report = herald_bench::run(self::args(hub.subscribe_url("t{i}"), hub.publish_url()))
        .await
        .unwrap();
    assert_exact(&report, 50);
    assert_eq!(report.bytes.stream, report.bytes.body, "{report}");
    assert_eq!(report.bytes.compression_ratio, 1.0, "{report}");
}

#[tokio::test]
async fn gzip_asked_but_not_given_fails_the_subscriptions() {
    let hub = hub::Hub::start(true).await;
    let mut args = args(hub.subscribe_url("t{i}"), hub.publish_url());
    args.gzip = true;
    args.subscribers = 5;
    let report = herald_bench::run(args).await.unwrap();
    assert_eq!((report.established, report.failed), (0, 5), "{report}");
    let error = report.first_error.as_deref().unwrap_or_default();
    assert!(error.contains("Content-Encoding: gzip"), "{report}");
}

#[tokio::test]
async fn every_url_must_be_loopback() {
    let hub = hub::Hub::start(true).await;
    let mut args = args(hub.subscribe_url("t{i}"), hub.publish_url());
    args.urls.push("http://192.0.2.1:80/sub?topic=t{i}".into());
    args.hub_pid = Vec::new();
    let error = herald_bench::run(args).await.unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
}

#[tokio::test]
async fn refuses_remote_targets_and_bad_bounds() {
    let mut remote = args(
        "http://192.0.2.1:80/s?topic=a".into(),
        "http://192.0.2.1/p".into(),
    );
    let error = herald_bench::run(remote.clone()).await.unwrap_err();
    assert!(error.to_string().contains("loopback"), "{error}");
    remote.duration = 100_000.0;
    assert!(herald_bench::run(remote.clone()).await.is_err());
    remote.duration = 1.0;
    remote.subscribers = 2000;
    let error = herald_bench::run(remote).await.unwrap_err();
    assert!(error.to_string().contains("max-connections"), "{error}");
}
