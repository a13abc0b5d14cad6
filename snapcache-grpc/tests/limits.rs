//! Limits and liveness: max connections, graceful shutdown, HTTP/2 keep-alive.

mod common;

use std::time::{Duration, Instant};

use common::*;
use snapcache_grpc::proto::{sync_response::Message as M, EndReason};
use snapcache_grpc::server::ServerConfig;
use tonic::Code;

/// Caught bug: `no_connection_limit` (the fourth client is served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_over_the_limit_is_refused() {
    let cache = cache();
    let config = ServerConfig {
        max_connections: Some(3),
        ..config()
    };
    let server = serve(config, &cache).await;
    in_sync(&cache).await;
    let first: Vec<_> = (0..3).map(|_| client(&server).spawn(())).collect();
    for c in &first {
        converged(c, &cache).await;
    }
    let status = raw_sync(
        server.local_addr(),
        tokio_stream::once(encoded(&request("default"))),
    )
    .await
    .expect_err("over the limit");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(
        status
            .message()
            .contains("too many connections: this server accepts 3"),
        "{status:?}"
    );
    assert_eq!(end_reason(&status), "END_REASON_TOO_MANY_CONNECTIONS");

    // A client over the limit keeps trying, and gets in once a slot frees up.
    let fourth = client(&server).spawn(());
    let s = bounded(|| async {
        let s = fourth.state();
        s.last_error.is_some().then_some(s)
    })
    .await;
    assert!(!s.connected);
    assert!(
        s.last_error
            .as_deref()
            .unwrap()
            .contains("TOO_MANY_CONNECTIONS"),
        "{s:?}"
    );
    first[0].stop().await;
    converged(&fourth, &cache).await;
    assert_eq!(server.stats().connections_active, 3);
    server.shutdown().await;
}

/// Graceful shutdown ends the streams one at a time over 95% of the shutdown timeout (2 s
/// here: one every 95 ms for 20 clients), each with `SHUTTING_DOWN`, and refuses newcomers.
///
/// Caught bug: `drain_at_once` (every stream ends at the same moment).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_drains_gradually() {
    let cache = cache();
    let server = serve(config(), &cache).await;
    let addr = server.local_addr();
    in_sync(&cache).await;
    let mut readers = Vec::new();
    for _ in 0..20 {
        let mut stream = stalled_client(addr).await;
        readers.push(tokio::spawn(async move {
            let mut end = None;
            loop {
                match stream.message().await {
                    Ok(Some(m)) => {
                        if let Some(M::End(e)) = m.message {
                            end = Some(e.reason);
                        }
                    }
                    Ok(None) => return (Instant::now(), end, None),
                    Err(status) => return (Instant::now(), end, Some(status.code())),
                }
            }
        }));
    }
    bounded(|| async { (server.stats().connections_streaming == 20).then_some(()) }).await;
    let shutdown = tokio::spawn(server.shutdown());
    // A newcomer during the drain is refused (and told to go elsewhere).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let status = raw_sync(addr, tokio_stream::once(encoded(&request("default"))))
        .await
        .expect_err("refused while shutting down");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(end_reason(&status), "END_REASON_SHUTTING_DOWN");

    let mut ends = Vec::new();
    for r in readers {
        let (at, end, code) = tokio::time::timeout(DEADLINE, r).await.unwrap().unwrap();
        assert_eq!(end, Some(EndReason::ShuttingDown as i32));
        assert_eq!(code, Some(Code::Unavailable));
        ends.push(at);
    }
    tokio::time::timeout(DEADLINE, shutdown)
        .await
        .unwrap()
        .unwrap();
    ends.sort();
    let spread = ends[19] - ends[0];
    // 19 gaps of 95 ms: 1.8 s. At once, it would be milliseconds.
    assert!(
        spread >= Duration::from_millis(900),
        "drained within {spread:?}"
    );
}

/// A client whose network goes silent (a black hole: its bytes vanish, the connection stays
/// open) is noticed by the server's HTTP/2 pings and dropped, releasing its stream. When the
/// network comes back, the client resumes.
///
/// Caught bug: `no_keepalive` (the stream stays open forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_client_is_detected_by_keepalive() {
    let cache = cache();
    let config = ServerConfig {
        keepalive_interval: Duration::from_millis(200),
        keepalive_timeout: Duration::from_millis(500),
        ..config()
    };
    let server = serve(config, &cache).await;
    let proxy = Proxy::start(server.local_addr()).await;
    let c = client_at(proxy.addr)
        // The client's own pings are slow: the server must notice first.
        .keepalive(Duration::from_secs(60), Duration::from_secs(60))
        .spawn(());
    churn(&cache, "k", 100, 10);
    in_sync(&cache).await;
    converged(&c, &cache).await;
    proxy.black_hole(true);
    bounded(|| async {
        let s = server.stats();
        (s.connections_active == 0 && s.tcp_connections == 0).then_some(())
    })
    .await;
    proxy.black_hole(false);
    churn(&cache, "r", 100, 100);
    settled(&cache).await;
    converged(&c, &cache).await;
    assert_eq!(c.map().unwrap(), state(&cache));
    assert_eq!(c.state().resumes, 1);
    server.shutdown().await;
}
