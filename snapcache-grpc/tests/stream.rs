//! Snapshot then deltas, to many clients: convergence, one encoding per breadcrumb whatever
//! the client count, one snapshot encoding however many clients start at it.

mod common;

use common::*;
use snapcache::SyncStatus;
use std::time::Duration;

/// 20 clients (some joining mid-stream) end with exactly the cache's state, deletions included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_converge_to_the_final_state() {
    let cache = cache();
    let server = serve(config(), &cache).await;
    let early: Vec<_> = (0..10).map(|_| client(&server).spawn(())).collect();
    churn(&cache, "k", 5_000, 300);
    let late: Vec<_> = (0..10).map(|_| client(&server).spawn(())).collect();
    for i in 0..100 {
        cache
            .on_updates(vec![snapcache::Update::delete(format!("k{}", i * 3))])
            .unwrap();
    }
    churn(&cache, "j", 2_000, 50);
    in_sync(&cache).await;
    let expected = state(&cache);
    assert_eq!(expected.len(), 300 - 100 + 50);
    for c in early.iter().chain(&late) {
        converged(c, &cache).await;
        assert_eq!(c.map().unwrap(), expected);
    }
    server.shutdown().await;
}

/// Counts delta encodings with `clients` caught-up clients: one per breadcrumb.
async fn delta_encodings_with(clients: usize) -> (u64, u64) {
    let cache = cache();
    let server = serve(config(), &cache).await;
    in_sync(&cache).await;
    let start = cache.current_breadcrumb().sequence_number;
    let cs: Vec<_> = (0..clients).map(|_| client(&server).spawn(())).collect();
    for c in &cs {
        c.wait_until(|s| s.in_sync, DEADLINE).await.unwrap();
    }
    churn(&cache, "k", 2_000, 100);
    settled(&cache).await;
    for c in &cs {
        converged(c, &cache).await;
    }
    let published = cache.current_breadcrumb().sequence_number - start;
    let encodings = server.stats().delta_encodings;
    server.shutdown().await;
    (published, encodings)
}

/// Caught bug: `encode_per_client` (each client task encodes every breadcrumb: 20x).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_breadcrumb_is_encoded_once_whatever_the_client_count() {
    for clients in [1, 20] {
        let (published, encodings) = delta_encodings_with(clients).await;
        assert!(published >= 150, "{published} breadcrumbs");
        assert!(
            encodings <= published,
            "{clients} clients: {encodings} delta encodings for {published} breadcrumbs"
        );
        // Every breadcrumb after the start was streamed, so each was encoded exactly once.
        assert_eq!(encodings, published, "{clients} clients");
    }
}

/// Caught bug: `snapshot_per_client` (20 encodings).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_starting_together_share_one_snapshot_encoding() {
    let cache = cache();
    let config = snapcache_grpc::server::ServerConfig {
        snapshot_reuse: Duration::from_secs(600),
        snapshot_chunk_bytes: 4096,
        ..config()
    };
    let server = serve(config, &cache).await;
    churn(&cache, "k", 5_000, 5_000);
    in_sync(&cache).await;
    let cs: Vec<_> = (0..20).map(|_| client(&server).spawn(())).collect();
    let expected = state(&cache);
    for c in &cs {
        converged(c, &cache).await;
        assert_eq!(c.map().unwrap(), expected);
        assert_eq!(c.state().snapshots, 1);
        assert_eq!(c.state().status, Some(SyncStatus::InSync));
    }
    let stats = server.stats();
    assert_eq!(stats.snapshots_generated, 1, "{stats:?}");
    assert_eq!(stats.snapshots_reused, 19, "{stats:?}");
    assert_eq!(stats.snapshots_sent, 20, "{stats:?}");
    // Several chunks (4 KiB raw each), compressed once: the bytes sent are 20 times those
    // encoded.
    assert!(stats.snapshot_bytes_encoded > 0);
    assert!(stats.snapshot_bytes_sent >= 20 * stats.snapshot_bytes_encoded);
    server.shutdown().await;
}
