//! Benchmark: what a client receives when it reconnects 100 breadcrumbs behind, resuming vs a
//! full resync (Typha's only option), on a 100,000-key cache. Prints bytes on the wire (gRPC
//! message bytes) and messages for both, as interleaved pairs.
//!
//! ```sh
//! cargo run --release -p snapcache-grpc --example resume_bytes
//! ```

use std::time::Duration;

use snapcache::{Cache, Config, SyncStatus};
use snapcache_grpc::client::SyncClient;
use snapcache_grpc::server::{Server, ServerConfig};
use snapcache_grpc::synthetic::{Synthetic, SyntheticConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let cache = Cache::new(Config::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = Server::new(ServerConfig::default())
        .cache("default", cache.clone())
        .start(listener)
        .unwrap();
    let mut syncer = Synthetic::new(SyntheticConfig {
        keys: 100_000,
        updates: 200_000,
        ..Default::default()
    });
    syncer.run(&cache, |_| {}).unwrap();
    println!("| round | mode | breadcrumbs missed | bytes received | of which snapshot | server messages |");
    println!("|---|---|---:|---:|---:|---:|");
    for round in 0..3 {
        for resume in [true, false] {
            let client = SyncClient::builder()
                .server(server.local_addr().to_string())
                .resume(resume)
                // Long enough for the 100 breadcrumbs to be published before it is back.
                .backoff(Duration::from_millis(600), Duration::from_millis(600))
                .spawn(());
            wait_in_sync(&client, &cache).await;
            // Disconnect, miss 100 breadcrumbs (100 updates each), reconnect.
            let before = client.state();
            let crumb = cache.current_breadcrumb();
            let seq = crumb.sequence_number;
            let stats = server.stats();
            client.reconnect();
            cache
                .on_status_updated(SyncStatus::ResyncInProgress)
                .unwrap();
            syncer.send(&cache, 10_000, |_| {}).unwrap();
            cache.on_status_updated(SyncStatus::InSync).unwrap();
            published(crumb).await;
            // (The client is still waiting out its backoff, at least 300 ms.)
            wait_in_sync(&client, &cache).await;
            let after = client.state();
            let missed = cache.current_breadcrumb().sequence_number - seq;
            let messages = server.stats().delta_messages_sent - stats.delta_messages_sent;
            println!(
                "| {round} | {} | {missed} | {} | {} | {} deltas messages |",
                if resume { "resume" } else { "full resync" },
                after.bytes_received - before.bytes_received,
                after.snapshot_bytes_received - before.snapshot_bytes_received,
                messages
            );
            client.stop().await;
        }
    }
    server.shutdown().await;
}

/// Waits until everything sent after `crumb` (a resync then `InSync`) is published.
async fn published(mut crumb: std::sync::Arc<snapcache::Breadcrumb>) {
    let mut resyncing = false;
    loop {
        crumb = crumb.next_async().await.expect("open");
        resyncing |= crumb.sync_status == SyncStatus::ResyncInProgress;
        if resyncing && crumb.sync_status == SyncStatus::InSync {
            return;
        }
    }
}

async fn wait_in_sync(client: &SyncClient, cache: &Cache) {
    let target = cache.current_breadcrumb().sequence_number;
    client
        .wait_until(
            |s| s.in_sync && s.last_sequence_number >= Some(target),
            Duration::from_secs(120),
        )
        .await
        .expect("in sync");
}
