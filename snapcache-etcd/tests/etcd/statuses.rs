//! Statuses: in the right order, and never `InSync` before the cache has the whole list.

use snapcache::SyncStatus;
use snapcache_etcd::testing::{snapshot_state, Sent};
use snapcache_etcd::Phase;

use crate::common::*;

/// With etcd unreachable the syncer says `WaitForDatastore` and retries; once etcd answers it
/// says `ResyncInProgress`, feeds the whole list (2,000 keys, 8 pages), and only then `InSync`.
/// The first breadcrumb that says `InSync` holds every key.
///
/// Seeded bug caught: `insync_before_list` (InSync sent before the list is fed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_go_wait_resync_in_sync_and_in_sync_comes_after_the_whole_list() {
    const KEYS: usize = 2_000;
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    load(&mut client, "/s/", KEYS).await;
    let mut setup = Setup::new("/s/").via_proxy();
    setup.page_size = 250;
    setup.start_cut = true;
    let rig = Rig::start(etcd, setup).await;
    rig.wait("retrying", |s| s.phase == Phase::Retrying).await;
    // etcd unreachable: the syncer has said WaitForDatastore and no more.
    assert_eq!(rig.sink.statuses(), [SyncStatus::WaitForDatastore]);
    assert_eq!(
        rig.cache.current_breadcrumb().sync_status,
        SyncStatus::WaitForDatastore
    );
    rig.proxy().restore();

    rig.wait("watching", |s| s.phase == Phase::Watching).await;
    rig.converge().await;
    use SyncStatus::*;
    let log = rig.sink.log();
    let statuses: Vec<(usize, SyncStatus)> = log
        .iter()
        .enumerate()
        .filter_map(|(i, s)| match s {
            Sent::Status(s) => Some((i, *s)),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses.iter().map(|s| s.1).collect::<Vec<_>>(),
        [WaitForDatastore, ResyncInProgress, InSync]
    );
    let between: usize = log[statuses[1].0..statuses[2].0]
        .iter()
        .map(|s| match s {
            Sent::Updates(u) => u.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(
        between, KEYS,
        "every listed key between ResyncInProgress and InSync"
    );
    let first = &rig.recorder.in_sync_transitions()[0];
    assert_eq!(
        snapshot_state(first).len(),
        KEYS,
        "the first InSync breadcrumb holds the whole list"
    );
    // Health follows: ready once InSync.
    assert_eq!(rig.cache.current_breadcrumb().sync_status, InSync);
}
