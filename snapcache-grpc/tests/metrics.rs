//! The server exports Typha's metric names through the `metrics` facade (its own test binary:
//! it installs a global recorder).

mod common;

use std::collections::HashMap;

use common::*;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::MetricKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typhas_metrics_are_exported() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let cache = cache();
    let server = serve(config(), &cache).await;
    churn(&cache, "k", 500, 50);
    in_sync(&cache).await;
    let clients: Vec<_> = (0..3).map(|_| client(&server).spawn(())).collect();
    for c in &clients {
        converged(c, &cache).await;
    }
    churn(&cache, "k", 500, 50);
    settled(&cache).await;
    for c in &clients {
        converged(c, &cache).await;
    }
    let during = values(&snapshotter);
    server.shutdown().await;
    // The debugging recorder's snapshots drain: these are the changes since `during`.
    let after = values(&snapshotter);

    let counter = |m: &HashMap<String, DebugValue>, name: &str| match m.get(name) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name}: {other:?}"),
    };
    let gauge = |m: &HashMap<String, DebugValue>, name: &str| match m.get(name) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        other => panic!("{name}: {other:?}"),
    };
    let samples = |m: &HashMap<String, DebugValue>, name: &str| match m.get(name) {
        Some(DebugValue::Histogram(h)) => h.len(),
        other => panic!("{name}: {other:?}"),
    };
    assert_eq!(counter(&during, "typha_connections_accepted"), 3);
    assert_eq!(gauge(&during, "typha_connections_active"), 3.0);
    assert_eq!(gauge(&during, "typha_connections_streaming"), 3.0);
    assert_eq!(counter(&during, "typha_snapshots_generated"), 1);
    assert_eq!(counter(&during, "typha_snapshots_reused"), 2);
    assert_eq!(samples(&during, "typha_client_snapshot_send_secs"), 3);
    assert!(samples(&during, "typha_kvs_per_msg") >= 3);
    assert!(samples(&during, "typha_client_latency_secs") >= 3);
    assert!(counter(&during, "snapcache_delta_encodings") >= 50);
    // From the cache itself (snapcache's `metrics` feature).
    assert!(counter(&during, "typha_updates_total") >= 1000);
    // After the shutdown: every stream dropped (shutting down), none active.
    assert_eq!(
        counter(
            &after,
            "typha_connections_dropped{reason=END_REASON_SHUTTING_DOWN}"
        ),
        3
    );
    assert_eq!(gauge(&after, "typha_connections_active"), -3.0);
    assert_eq!(gauge(&after, "typha_connections_streaming"), -3.0);
}

/// Metric name (with labels as `{k=v}`) to value.
fn values(snapshotter: &metrics_util::debugging::Snapshotter) -> HashMap<String, DebugValue> {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (kind, key) = key.into_parts();
            let _: MetricKind = kind;
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let name = if labels.is_empty() {
                key.name().to_owned()
            } else {
                format!("{}{{{}}}", key.name(), labels.join(","))
            };
            (name, value)
        })
        .collect()
}
