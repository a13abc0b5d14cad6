//! Faults: a client that stops reading, a server killed and replaced by one with a new cache.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use snapcache::{Cache, Config, Update, UpdateType};
use snapcache_grpc::client::{BatchInfo, SyncHandler};
use snapcache_grpc::server::ServerConfig;

/// A client that stops reading is cut off by the fall-behind rule (set to 20 breadcrumbs, no
/// grace) while every other client keeps converging and the producer never blocks; once cut
/// off, the breadcrumbs it pinned are freed.
///
/// Caught bug: `wait_for_slow` (the server waits for the client: it is never cut off, and the
/// breadcrumbs stay pinned).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_cut_off_and_released() {
    let cache = cache();
    let config = ServerConfig {
        max_fall_behind_breadcrumbs: Some(20),
        fall_behind_grace: Duration::ZERO,
        resume_window_breadcrumbs: 1,
        snapshot_reuse: Duration::ZERO,
        ..config()
    };
    let server = serve(config, &cache).await;
    let others: Vec<_> = (0..10).map(|_| client(&server).spawn(())).collect();
    let stalled = stalled_client(server.local_addr()).await;
    in_sync(&cache).await;
    // Big values, so that the transport's buffers fill: rounds until the cut-off (bounded).
    let value = "x".repeat(4096);
    let mut round = 0;
    let mut pinned = None;
    while server.stats().connections_fell_behind == 0 {
        assert!(
            round < 200,
            "not cut off after {round} rounds: {:?}",
            server.stats()
        );
        let updates: Vec<Update> = (0..100)
            .map(|i| {
                Update::set(
                    format!("k{i}"),
                    format!("{round}{value}"),
                    UpdateType::Updated,
                )
            })
            .collect();
        for block in updates.chunks(10) {
            // The producer never blocks on clients: each call returns once queued.
            cache.on_updates(block.to_vec()).unwrap();
        }
        settled(&cache).await;
        // Paced by the others (a round is 12 breadcrumbs, within their bound of 20).
        for c in &others {
            converged(c, &cache).await;
        }
        if round == 5 {
            // The stalled client is stuck at or before this breadcrumb, so it keeps it alive.
            pinned = Some(Arc::downgrade(&cache.current_breadcrumb()));
        }
        round += 1;
    }
    let stats = server.stats();
    assert_eq!(stats.connections_fell_behind, 1, "{stats:?}");
    for c in &others {
        converged(c, &cache).await;
        assert_eq!(c.map().unwrap(), state(&cache));
        assert_eq!(c.state().connections, 1, "nobody else was cut off");
    }
    // Its memory is released: the breadcrumbs it pinned are freed once others have moved on.
    churn(&cache, "after", 100, 10);
    settled(&cache).await;
    let pinned = pinned.expect("more than 5 rounds");
    bounded(|| async { (pinned.upgrade().is_none()).then_some(()) }).await;
    assert_eq!(server.stats().connections_active, 10);
    drop(stalled);
    server.shutdown().await;
}

/// Counts the deletions a handler receives, as a consumer without the client's map would.
#[derive(Clone, Default)]
struct Deletions(Arc<AtomicU64>);

impl SyncHandler for Deletions {
    fn on_updates(&mut self, updates: &[Update], _: &BatchInfo) {
        let n = updates.iter().filter(|u| u.value.is_none()).count();
        self.0.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The server is killed mid-stream and another starts on the same port with a new cache
/// (another instance, another state): every client reconnects, is refused its resume, and
/// converges to the new state, with deletions for the keys that disappeared.
///
/// Caught bugs: `forget_deletions` (the clients keep the 150 vanished keys) and
/// `resume_any_instance` (the new server takes the old instance's resume point: the clients
/// never converge).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_brings_every_client_to_the_new_state() {
    let old = cache();
    let server = serve(config(), &old).await;
    let addr = server.local_addr();
    let deletions = Deletions::default();
    let mut clients: Vec<_> = (0..19).map(|_| client(&server).spawn(())).collect();
    clients.push(client(&server).spawn(deletions.clone()));
    churn(&old, "k", 3_000, 300);
    in_sync(&old).await;
    for c in &clients {
        converged(c, &old).await;
    }
    // Mid-stream: the old cache keeps changing as the server dies.
    churn(&old, "k", 500, 300);
    server.kill().await;
    old.shutdown();

    let new = Cache::new(Config {
        max_batch_size: 10,
        ..Default::default()
    });
    churn(&new, "k", 150, 150);
    churn(&new, "n", 50, 50);
    in_sync(&new).await;
    let server = serve_on(config(), &new, addr).await;
    let expected = state(&new);
    assert_eq!(expected.len(), 200);
    for c in &clients {
        converged_to(c, &new, &server).await;
        assert_eq!(c.map().unwrap(), expected);
        let s = c.state();
        assert_eq!(s.snapshots, 2, "{s:?}");
        let why = s
            .last_resume_refused
            .expect("a resume was asked for and refused");
        assert!(why.contains("not this one"), "{why}");
    }
    // The handler was told of the 150 deletions (k150..k299), nothing else was deleted.
    assert_eq!(deletions.0.load(Ordering::Relaxed), 150);
    server.shutdown().await;
}
