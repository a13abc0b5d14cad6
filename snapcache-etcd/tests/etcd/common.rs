//! What the tests share: a rig of etcd, an optional proxy, a cache, a recording sink and a
//! recorder; writers that remember what they wrote; bounded waits.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use etcd_client::{Client, DeleteOptions, Txn, TxnOp};
use snapcache::{Cache, Config, SyncStatus, Update};
use snapcache_etcd::testing::{
    etcd_state, wait_for_state, EtcdServer, Proxy, Recorder, RecordingSink, Sent, State,
};
use snapcache_etcd::{Backoff, EtcdConfig, EtcdSyncer, Phase, SyncerState};

/// The longest any test waits for the syncer or the cache to get somewhere.
pub const WAIT: Duration = Duration::from_secs(30);

/// A running syncer and everything around it.
pub struct Rig {
    pub etcd: EtcdServer,
    /// Between the syncer and etcd, if asked for.
    pub proxy: Option<Proxy>,
    pub cache: Cache,
    pub sink: Arc<RecordingSink>,
    pub recorder: Recorder,
    pub syncer: EtcdSyncer,
    pub prefix: Bytes,
}

/// How to start a rig.
pub struct Setup {
    pub prefix: Bytes,
    pub via_proxy: bool,
    /// Start with the proxy cut (etcd unreachable).
    pub start_cut: bool,
    pub page_size: usize,
}

impl Setup {
    pub fn new(prefix: impl Into<Bytes>) -> Self {
        Setup {
            prefix: prefix.into(),
            via_proxy: false,
            start_cut: false,
            page_size: snapcache_etcd::DEFAULT_PAGE_SIZE,
        }
    }

    pub fn via_proxy(mut self) -> Self {
        self.via_proxy = true;
        self
    }
}

pub async fn start_etcd() -> EtcdServer {
    EtcdServer::start().await
}

impl Rig {
    /// Starts the syncer against `etcd` (already holding whatever the test put there).
    pub async fn start(etcd: EtcdServer, setup: Setup) -> Rig {
        let proxy = if setup.via_proxy {
            let proxy = Proxy::start(etcd.addr()).await;
            if setup.start_cut {
                proxy.cut();
            }
            Some(proxy)
        } else {
            None
        };
        let endpoint = proxy
            .as_ref()
            .map_or_else(|| etcd.endpoint(), |p| p.endpoint());
        let cache = Cache::new(Config::default());
        let recorder = Recorder::start(&cache);
        let sink = RecordingSink::new(cache.clone());
        let mut config =
            EtcdConfig::new([endpoint], setup.prefix.clone()).with_page_size(setup.page_size);
        config.backoff = Backoff {
            min: Duration::from_millis(20),
            max: Duration::from_millis(300),
        };
        config.connect_timeout = Duration::from_secs(2);
        let syncer = EtcdSyncer::spawn(config, sink.clone()).expect("spawn the syncer");
        Rig {
            etcd,
            proxy,
            cache,
            sink,
            recorder,
            syncer,
            prefix: setup.prefix,
        }
    }

    pub fn proxy(&self) -> &Proxy {
        self.proxy.as_ref().expect("a rig with a proxy")
    }

    /// Waits until the syncer's state satisfies `until`.
    pub async fn wait(&self, what: &str, until: impl FnMut(&SyncerState) -> bool) -> SyncerState {
        match self.syncer.wait_for(WAIT, until).await {
            Ok(s) => s,
            Err(s) => panic!("the syncer did not get to {what} within {WAIT:?}: {s:?}"),
        }
    }

    /// Waits until the syncer is watching at etcd's current revision (or later), then until the
    /// cache holds exactly etcd's state of the prefix; returns that state.
    pub async fn converge(&self) -> State {
        let mut client = self.etcd.client().await;
        let (expected, at) = etcd_state(&mut client, &self.prefix, None).await;
        // Progress notifications (every 100 ms) move the revision even without events.
        self.wait(&format!("revision {at}"), |s| {
            s.phase == Phase::Watching && s.revision >= at
        })
        .await;
        let cache = self.cache.clone();
        let want = expected.clone();
        tokio::task::spawn_blocking(move || wait_for_state(&cache, &want, WAIT))
            .await
            .unwrap()
            .unwrap_or_else(|diff| panic!("the cache did not converge on etcd's state: {diff}"));
        expected
    }

    /// The recorder's breadcrumbs once it has caught up with the cache's current one (its
    /// follower thread runs behind the cache; `converge` waits for the cache only).
    pub fn recorded_crumbs(&self) -> Vec<Arc<snapcache::Breadcrumb>> {
        let now = self.cache.current_breadcrumb().sequence_number;
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let crumbs = self.recorder.crumbs();
            if crumbs.last().is_some_and(|c| c.sequence_number >= now) {
                return crumbs;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the recorder did not reach breadcrumb {now} within {WAIT:?}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// The updates sent after the `n`-th (1-based) `InSync`, up to the next status.
    pub fn updates_after_in_sync(&self, n: usize) -> Vec<Update> {
        let mut seen = 0;
        let mut out = Vec::new();
        for sent in self.sink.log() {
            match sent {
                Sent::Status(SyncStatus::InSync) => seen += 1,
                Sent::Status(_) if seen == n => break,
                Sent::Updates(u) if seen == n => out.extend(u),
                _ => {}
            }
        }
        out
    }
}

/// One write the test made and etcd acknowledged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub revision: i64,
    pub key: Bytes,
    /// `None` for a deletion.
    pub value: Option<Bytes>,
}

/// Puts `key` = `value`; returns the write.
pub async fn put(client: &mut Client, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Write {
    let (key, value) = (key.into(), value.into());
    let r = client
        .put(key.clone(), value.clone(), None)
        .await
        .expect("put");
    Write {
        revision: r.header().unwrap().revision(),
        key: key.into(),
        value: Some(value.into()),
    }
}

/// Deletes `key`; returns the write if there was something to delete.
pub async fn delete(client: &mut Client, key: impl Into<Vec<u8>>) -> Option<Write> {
    let key = key.into();
    let r = client.delete(key.clone(), None).await.expect("delete");
    (r.deleted() > 0).then(|| Write {
        revision: r.header().unwrap().revision(),
        key: key.into(),
        value: None,
    })
}

/// Deletes every key under `prefix` in one revision; returns the writes (key order).
pub async fn delete_prefix(client: &mut Client, prefix: &[u8]) -> Vec<Write> {
    let r = client
        .delete(
            prefix.to_vec(),
            Some(DeleteOptions::new().with_prefix().with_prev_key()),
        )
        .await
        .expect("delete a prefix");
    let revision = r.header().unwrap().revision();
    r.prev_kvs()
        .iter()
        .map(|kv| Write {
            revision,
            key: Bytes::copy_from_slice(kv.key()),
            value: None,
        })
        .collect()
}

/// Puts all `kvs` in one transaction (one revision); returns the writes.
pub async fn put_all(client: &mut Client, kvs: &[(Vec<u8>, Vec<u8>)]) -> Vec<Write> {
    let ops: Vec<TxnOp> = kvs
        .iter()
        .map(|(k, v)| TxnOp::put(k.clone(), v.clone(), None))
        .collect();
    let r = client.txn(Txn::new().and_then(ops)).await.expect("txn");
    let revision = r.header().unwrap().revision();
    kvs.iter()
        .map(|(k, v)| Write {
            revision,
            key: Bytes::from(k.clone()),
            value: Some(Bytes::from(v.clone())),
        })
        .collect()
}

/// Loads `n` keys `{prefix}{i:05}` = `v{i}` in transactions of 100.
pub async fn load(client: &mut Client, prefix: &str, n: usize) {
    let kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..n)
        .map(|i| {
            (
                format!("{prefix}{i:05}").into_bytes(),
                format!("v{i}").into_bytes(),
            )
        })
        .collect();
    for chunk in kvs.chunks(100) {
        put_all(client, chunk).await;
    }
}

/// Checks that the updates the syncer sent while watching are exactly `writes` (those to keys
/// under `prefix`), in order: nothing lost, nothing twice, nothing reordered.
pub fn assert_updates_are_the_writes(updates: &[Update], writes: &[Write], prefix: &[u8]) {
    let got: Vec<(i64, Bytes, Option<Bytes>)> = updates
        .iter()
        .map(|u| {
            let rev = std::str::from_utf8(&u.revision).unwrap().parse().unwrap();
            (rev, u.key.clone(), u.value.clone())
        })
        .collect();
    let want: Vec<(i64, Bytes, Option<Bytes>)> = writes
        .iter()
        .filter(|w| w.key.starts_with(prefix))
        .map(|w| (w.revision, w.key.clone(), w.value.clone()))
        .collect();
    if got != want {
        let first = got.iter().zip(&want).position(|(g, w)| g != w);
        panic!(
            "the watch delivered {} updates for {} writes; first difference at {first:?}: got {:?}, want {:?}",
            got.len(),
            want.len(),
            first.map(|i| &got[i]),
            first.map(|i| &want[i]),
        );
    }
}

/// A small deterministic random number generator (SplitMix64), so that a failing seed can be
/// replayed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Checks that breadcrumb `crumb` (of the recorder's) shows etcd's state at one revision: the
/// newest the cache had applied by then, the list's (`list_revision`) or a later update's (a
/// batch can carry watch updates after the status).
pub async fn assert_snapshot_is_a_revision(
    rig: &Rig,
    crumb: &snapcache::Breadcrumb,
    list_revision: i64,
    client: &mut Client,
) {
    let applied = rig
        .recorder
        .crumbs()
        .iter()
        .take_while(|c| c.sequence_number <= crumb.sequence_number)
        .flat_map(|c| c.deltas.iter())
        .map(|u| {
            std::str::from_utf8(&u.revision)
                .unwrap()
                .parse::<i64>()
                .unwrap()
        })
        .fold(list_revision, i64::max);
    let (expected, _) = etcd_state(client, &rig.prefix, Some(applied)).await;
    let got = snapcache_etcd::testing::snapshot_state(crumb);
    assert!(
        got == expected,
        "breadcrumb {} ({:?}) is not etcd at revision {applied}: {}",
        crumb.sequence_number,
        crumb.sync_status,
        snapcache_etcd::testing::describe_difference(&got, &expected)
    );
}
