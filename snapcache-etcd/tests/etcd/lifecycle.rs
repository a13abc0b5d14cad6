//! The handle: stopping, a cache shut down under the syncer, configurations that cannot work.

use snapcache::{Cache, Config, SyncStatus};
use snapcache_etcd::{Error, EtcdConfig, EtcdSyncer, Phase};

use crate::common::*;

/// `stop` ends a running syncer and reports `Ok`; a syncer whose cache is shut down stops by
/// itself with `CacheClosed` at its next update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_ends_the_syncer_and_a_shut_down_cache_stops_it_with_cache_closed() {
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    let rig = Rig::start(etcd, Setup::new("/l/")).await;
    rig.wait("watching", |s| s.phase == Phase::Watching).await;
    rig.cache.shutdown();
    put(&mut client, "/l/k", "v").await;
    let state = rig
        .syncer
        .wait_for(WAIT, |s| s.phase == Phase::Stopped)
        .await;
    assert!(
        state.is_ok(),
        "still running after the cache shut down: {state:?}"
    );
    let Rig { syncer, .. } = rig;
    assert!(matches!(syncer.stop().await, Err(Error::CacheClosed)));

    let cache = Cache::new(Config::default());
    let etcd = start_etcd().await;
    let syncer =
        EtcdSyncer::spawn(EtcdConfig::new([etcd.endpoint()], "/l/"), cache.clone()).unwrap();
    syncer
        .wait_for(WAIT, |s| s.phase == Phase::Watching)
        .await
        .unwrap();
    // The cache publishes on its own thread: wait (bounded) for it to say InSync too.
    let deadline = std::time::Instant::now() + WAIT;
    while cache.current_breadcrumb().sync_status != SyncStatus::InSync {
        assert!(
            std::time::Instant::now() < deadline,
            "the cache never said InSync"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    syncer.stop().await.unwrap();
}

/// Bad configurations fail at once with a message, not in the background.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configurations_that_cannot_work_are_refused_with_a_reason() {
    let cache = Cache::new(Config::default());
    let none = EtcdSyncer::spawn(EtcdConfig::new(Vec::<String>::new(), "/p/"), cache.clone());
    assert!(matches!(none, Err(Error::Config(m)) if m.contains("endpoints")));
    let bad_url =
        EtcdSyncer::spawn(EtcdConfig::new(["http://[::1"], "/p/"), cache.clone()).unwrap();
    let state = bad_url.wait_for(WAIT, |s| s.phase == Phase::Stopped).await;
    assert!(state.is_ok(), "{state:?}");
    assert!(matches!(bad_url.stop().await, Err(Error::Client(_))));
    // Outside a runtime.
    let outside = std::thread::spawn(move || {
        EtcdSyncer::spawn(EtcdConfig::new(["http://127.0.0.1:1"], "/p/"), cache).map(|_| ())
    })
    .join()
    .unwrap();
    assert!(matches!(outside, Err(Error::Config(m)) if m.contains("tokio runtime")));
}
