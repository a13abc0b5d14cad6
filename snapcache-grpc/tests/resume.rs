//! Resume (which Typha lacks): a client that reconnects to the same cache instance within the
//! window gets only the deltas it missed, coalesced, and no snapshot; outside the window it gets
//! a snapshot and a reason.

mod common;

use std::time::Duration;

use common::*;
use snapcache_grpc::server::{ServedCache, ServerConfig};

/// Caught bug: `resume_skips` (the resume starts a breadcrumb late: the client sees the gap in
/// the sequence numbers and resyncs with a snapshot, so `snapshots` is 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnecting_client_resumes_with_deltas_only() {
    let cache = cache();
    let served = ServedCache::new(cache.clone(), Duration::from_secs(60), 100_000);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = snapcache_grpc::server::Server::new(config())
        .served_cache("default", served.clone())
        .start(listener)
        .unwrap();
    churn(&cache, "k", 1_000, 100);
    in_sync(&cache).await;
    let c = client(&server).spawn(());
    converged(&c, &cache).await;
    assert_eq!(c.state().snapshots, 1);

    // The server goes away (a crash: connections cut) and a new one comes up on the same port,
    // serving the same cache instance; meanwhile the cache moves on by ~100 breadcrumbs of new
    // keys (every one of them must arrive).
    server.kill().await;
    let before = cache.current_breadcrumb().sequence_number;
    churn(&cache, "r", 1_000, 1_000);
    settled(&cache).await;
    let missed = cache.current_breadcrumb().sequence_number - before;
    assert!(missed >= 50, "{missed}");
    let server = serve_on_served(config(), &served, addr).await;
    converged(&c, &cache).await;
    assert_eq!(c.map().unwrap(), state(&cache));
    let s = c.state();
    assert_eq!((s.snapshots, s.resumes), (1, 1), "{s:?}");
    let stats = server.stats();
    assert_eq!(stats.snapshots_sent, 0, "{stats:?}");
    assert_eq!(stats.snapshot_bytes_sent, 0, "{stats:?}");
    assert_eq!(stats.resumes, 1, "{stats:?}");
    // Coalesced: far fewer messages than breadcrumbs missed.
    assert!(
        stats.delta_messages_sent < missed / 4,
        "{} messages for {missed} breadcrumbs",
        stats.delta_messages_sent
    );
    server.shutdown().await;
}

async fn serve_on_served(
    config: ServerConfig,
    served: &ServedCache,
    addr: std::net::SocketAddr,
) -> snapcache_grpc::server::ServerHandle {
    let listener = bounded(|| async { tokio::net::TcpListener::bind(addr).await.ok() }).await;
    snapcache_grpc::server::Server::new(config)
        .served_cache("default", served.clone())
        .start(listener)
        .unwrap()
}

/// The network drops the stream (a proxy cuts the connection); the client reconnects to the
/// same server and resumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_dropped_by_the_network_resumes() {
    let cache = cache();
    let server = serve(config(), &cache).await;
    let proxy = Proxy::start(server.local_addr()).await;
    let c = client_at(proxy.addr).spawn(());
    churn(&cache, "k", 500, 100);
    in_sync(&cache).await;
    converged(&c, &cache).await;
    for round in 0..3 {
        proxy.cut();
        churn(&cache, &format!("r{round}-"), 200, 200);
        settled(&cache).await;
        converged(&c, &cache).await;
    }
    assert_eq!(c.map().unwrap(), state(&cache));
    let s = c.state();
    assert_eq!(s.snapshots, 1, "{s:?}");
    assert!(s.resumes >= 3, "{s:?}");
    assert_eq!(server.stats().snapshots_sent, 1);
    server.shutdown().await;
}

/// A resume point older than the window gets a snapshot, and the client is told why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_outside_the_window_gets_a_snapshot_and_a_reason() {
    let cache = cache();
    let config = ServerConfig {
        resume_window_breadcrumbs: 10,
        ..config()
    };
    let server = serve(config, &cache).await;
    let proxy = Proxy::start(server.local_addr()).await;
    let c = client_at(proxy.addr)
        .backoff(Duration::from_millis(300), Duration::from_millis(300))
        .spawn(());
    churn(&cache, "k", 100, 100);
    in_sync(&cache).await;
    converged(&c, &cache).await;
    proxy.cut();
    // 100 breadcrumbs while the client waits out its backoff: far more than the 10 kept.
    churn(&cache, "r", 1_000, 1_000);
    settled(&cache).await;
    converged(&c, &cache).await;
    assert_eq!(c.map().unwrap(), state(&cache));
    let s = c.state();
    assert_eq!((s.snapshots, s.resumes), (2, 0), "{s:?}");
    let why = s.last_resume_refused.expect("a reason");
    assert!(why.contains("older than the resume window"), "{why}");
    server.shutdown().await;
}

/// Two servers of one cache instance: a client that knows both moves to the other when its
/// server goes away, and resumes there (same instance), with deltas only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_fails_over_to_another_server_of_the_instance_and_resumes() {
    let cache = cache();
    let served = ServedCache::new(cache.clone(), Duration::from_secs(60), 100_000);
    let start = || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        snapcache_grpc::server::Server::new(config())
            .served_cache("default", served.clone())
            .start(listener)
            .unwrap()
    };
    let (a, b) = (start().await, start().await);
    let c = client_at(a.local_addr())
        .server(b.local_addr().to_string())
        .spawn(());
    churn(&cache, "k", 500, 100);
    in_sync(&cache).await;
    converged(&c, &cache).await;
    let first = c.state().server.unwrap();
    let (gone, stays) = if first == a.local_addr().to_string() {
        (a, b)
    } else {
        (b, a)
    };
    gone.kill().await;
    churn(&cache, "r", 300, 300);
    settled(&cache).await;
    converged(&c, &cache).await;
    let s = c.state();
    assert_eq!(s.server.as_deref(), Some(&*stays.local_addr().to_string()));
    assert_eq!((s.snapshots, s.resumes), (1, 1), "{s:?}");
    assert_eq!(c.map().unwrap(), state(&cache));
    assert_eq!(stays.stats().snapshots_sent, 0);
    stays.shutdown().await;
}
