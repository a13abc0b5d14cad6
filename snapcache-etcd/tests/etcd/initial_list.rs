//! The initial list: 10,000 keys in 20 pages while a writer keeps changing them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use snapcache::SyncStatus;
use snapcache_etcd::testing::etcd_state;
use snapcache_etcd::Phase;

use crate::common::*;

/// The cache's first `InSync` snapshot is etcd's state at the list's one revision `R` (every
/// page read at `R`), and the watch then delivers exactly the writes after `R`.
///
/// Seeded bug caught: `pages_at_latest` (pages after the first read at the newest revision:
/// the snapshot mixes revisions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_list_of_10000_keys_in_pages_under_a_writer_is_one_revision_then_every_later_write()
{
    const KEYS: usize = 10_000;
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    load(&mut client, "/reg/", KEYS).await;

    // The writer changes random keys (and deletes some) until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = tokio::spawn({
        let mut client = etcd.client().await;
        let stop = stop.clone();
        let written = written.clone();
        async move {
            let mut rng = Rng::new(15);
            let mut writes = Vec::new();
            let mut n = 0u64;
            // Relaxed: a stop flag and a progress counter, nothing published through them.
            while !stop.load(Ordering::Relaxed) || n < 50 {
                let key = format!("/reg/{:05}", rng.below(KEYS as u64));
                if rng.below(10) == 0 {
                    writes.extend(delete(&mut client, key).await);
                } else {
                    writes.push(put(&mut client, key, format!("w{n}")).await);
                }
                n += 1;
                written.store(n, Ordering::Relaxed);
            }
            writes
        }
    });
    // Let the writer get going (20 writes) before the list starts.
    let deadline = std::time::Instant::now() + WAIT;
    while written.load(Ordering::Relaxed) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the writer did not get going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let rig = Rig::start(etcd, Setup::new("/reg/")).await;
    let state = rig.wait("watching", |s| s.phase == Phase::Watching).await;
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    let list_revision = state.list_revision;
    assert!(
        writes.iter().any(|w| w.revision > list_revision)
            && writes.iter().any(|w| w.revision <= list_revision),
        "the writer ran before and after the list revision {list_revision}"
    );

    rig.converge().await;
    let state = rig.syncer.state();
    assert_eq!((state.lists, state.rewatches), (1, 0), "{state:?}");

    // The first InSync snapshot is etcd at R (or, if the cache took later updates in the same
    // batch, at the newest of them).
    let in_sync = rig.recorder.in_sync_transitions();
    assert_snapshot_is_a_revision(&rig, &in_sync[0], list_revision, &mut client).await;
    let (at_r, _) = etcd_state(&mut client, b"/reg/", Some(list_revision)).await;
    // Listed keys were sent as New (the cache held none).
    let listed: Vec<_> = rig
        .sink
        .log()
        .into_iter()
        .take_while(|s| *s != snapcache_etcd::testing::Sent::Status(SyncStatus::InSync))
        .filter_map(|s| match s {
            snapcache_etcd::testing::Sent::Updates(u) => Some(u),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(listed.len(), at_r.len());
    assert!(listed
        .iter()
        .all(|u| u.update_type == snapcache::UpdateType::New));

    // Then every write after R, once, in order.
    let after: Vec<Write> = writes
        .into_iter()
        .filter(|w| w.revision > list_revision)
        .collect();
    assert_updates_are_the_writes(&rig.updates_after_in_sync(1), &after, b"/reg/");
}
