//! Authentication against a real etcd: a user allowed to read only the prefix, and TLS with
//! client certificates.

use std::time::Duration;

use snapcache::{Cache, Config};
use snapcache_etcd::testing::{snapshot_state, wait_for_state, State};
use snapcache_etcd::{EtcdConfig, EtcdSyncer, Phase};

use crate::common::*;

/// etcd with authentication on and a user `typha` that may only read `/auth/`: the syncer
/// logging in as `typha` lists and watches the prefix; with a wrong password it keeps
/// retrying, says why, and the cache stays `WaitForDatastore`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_with_read_access_to_the_prefix_syncs_it_and_a_wrong_password_is_reported() {
    let etcd = start_etcd().await;
    for args in [
        &["user", "add", "root", "--new-user-password=rootpw"][..],
        &["user", "grant-role", "root", "root"],
        &["role", "add", "reader"],
        &[
            "role",
            "grant-permission",
            "reader",
            "--prefix=true",
            "read",
            "/auth/",
        ],
        &["user", "add", "typha", "--new-user-password=typhapw"],
        &["user", "grant-role", "typha", "reader"],
        &["auth", "enable"],
        &["--user=root:rootpw", "put", "/auth/a", "1"],
        &["--user=root:rootpw", "put", "/secret", "s"],
    ] {
        etcd.etcdctl(args);
    }
    let state = |etcd: &snapcache_etcd::testing::EtcdServer| -> State {
        let out = etcd.etcdctl(&[
            "--user=root:rootpw",
            "get",
            "--prefix",
            "/auth/",
            "--print-value-only=false",
        ]);
        let lines: Vec<&[u8]> = out
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        lines
            .chunks(2)
            .map(|kv| {
                (
                    bytes::Bytes::copy_from_slice(kv[0]),
                    bytes::Bytes::copy_from_slice(kv[1]),
                )
            })
            .collect()
    };

    let cache = Cache::new(Config::default());
    let config = EtcdConfig::new([etcd.endpoint()], "/auth/").with_user("typha", "typhapw");
    let syncer = EtcdSyncer::spawn(config, cache.clone()).unwrap();
    syncer
        .wait_for(WAIT, |s| s.phase == Phase::Watching)
        .await
        .unwrap();
    etcd.etcdctl(&["--user=root:rootpw", "put", "/auth/b", "2"]);
    etcd.etcdctl(&["--user=root:rootpw", "del", "/auth/a"]);
    let expected = state(&etcd);
    assert_eq!(expected.len(), 1);
    let c = cache.clone();
    tokio::task::spawn_blocking(move || wait_for_state(&c, &expected, WAIT))
        .await
        .unwrap()
        .unwrap();
    syncer.stop().await.unwrap();

    let cache = Cache::new(Config::default());
    let mut config = EtcdConfig::new([etcd.endpoint()], "/auth/").with_user("typha", "wrong");
    config.backoff.max = Duration::from_millis(200);
    let syncer = EtcdSyncer::spawn(config, cache.clone()).unwrap();
    let s = syncer
        .wait_for(WAIT, |s| {
            s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("authentication failed"))
        })
        .await
        .unwrap_or_else(|s| panic!("no authentication error reported: {s:?}"));
    assert_eq!(s.phase, Phase::Retrying);
    assert!(snapshot_state(&cache.current_breadcrumb()).is_empty());
    assert_eq!(
        cache.current_breadcrumb().sync_status,
        snapcache::SyncStatus::WaitForDatastore
    );
    syncer.stop().await.unwrap();
}

/// etcd serving clients over TLS only, with client certificates required: the syncer with the
/// CA and a client certificate syncs; without a client certificate it is refused and says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_client_certificate_syncs_and_without_one_is_refused() {
    let etcd = snapcache_etcd::testing::EtcdServer::start_tls().await;
    assert!(etcd.endpoint().starts_with("https://"));
    etcd.etcdctl(&["put", "/tls/a", "1"]);
    let tls = etcd.tls_config().unwrap();

    let cache = Cache::new(Config::default());
    let config = EtcdConfig::new([etcd.endpoint()], "/tls/").with_tls(tls.clone());
    let syncer = EtcdSyncer::spawn(config, cache.clone()).unwrap();
    syncer
        .wait_for(WAIT, |s| s.phase == Phase::Watching)
        .await
        .unwrap();
    etcd.etcdctl(&["put", "/tls/b", "2"]);
    let expected = snapcache_etcd::testing::etcdctl_state(&etcd, "/tls/");
    assert_eq!(expected.len(), 2);
    let c = cache.clone();
    tokio::task::spawn_blocking(move || wait_for_state(&c, &expected, WAIT))
        .await
        .unwrap()
        .unwrap();
    syncer.stop().await.unwrap();

    let cache = Cache::new(Config::default());
    let no_identity = snapcache_etcd::TlsConfig {
        identity_pem: None,
        ..tls
    };
    let mut config = EtcdConfig::new([etcd.endpoint()], "/tls/").with_tls(no_identity);
    config.backoff.max = Duration::from_millis(200);
    let syncer = EtcdSyncer::spawn(config, cache.clone()).unwrap();
    let s = syncer
        .wait_for(WAIT, |s| s.last_error.is_some())
        .await
        .unwrap_or_else(|s| panic!("no error reported: {s:?}"));
    assert_eq!(s.phase, Phase::Retrying, "{s:?}");
    assert!(snapshot_state(&cache.current_breadcrumb()).is_empty());
    syncer.stop().await.unwrap();
}
