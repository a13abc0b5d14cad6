//! Recorders of what reaches the cache, and the states tests compare.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use snapcache::{Breadcrumb, Cache, CancelToken, Closed, SyncStatus, Update};

use crate::Sink;

/// Keys and values, ordered by key (what etcd lists and what a snapshot holds).
pub type State = BTreeMap<Bytes, Bytes>;

/// One call into a [`RecordingSink`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// `on_updates`.
    Updates(Vec<Update>),
    /// `on_status_updated`.
    Status(SyncStatus),
}

/// A [`Sink`] that passes everything on to a cache and records each call, in order.
#[derive(Debug)]
pub struct RecordingSink {
    cache: Cache,
    log: Mutex<Vec<Sent>>,
}

impl RecordingSink {
    /// Records into `cache`.
    pub fn new(cache: Cache) -> Arc<Self> {
        Arc::new(RecordingSink {
            cache,
            log: Mutex::new(Vec::new()),
        })
    }

    /// Every call so far.
    pub fn log(&self) -> Vec<Sent> {
        self.log.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The statuses sent so far, in order.
    pub fn statuses(&self) -> Vec<SyncStatus> {
        self.log()
            .into_iter()
            .filter_map(|s| match s {
                Sent::Status(s) => Some(s),
                Sent::Updates(_) => None,
            })
            .collect()
    }

    fn record(&self, sent: Sent) {
        self.log
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sent);
    }
}

impl Sink for RecordingSink {
    fn on_updates(&self, updates: Vec<Update>) -> Result<(), Closed<Vec<Update>>> {
        self.record(Sent::Updates(updates.clone()));
        self.cache.on_updates(updates)
    }

    fn on_status_updated(&self, status: SyncStatus) -> Result<(), Closed<SyncStatus>> {
        self.record(Sent::Status(status));
        self.cache.on_status_updated(status)
    }
}

/// A follower on its own thread that keeps every breadcrumb from the one current when it
/// starts (so each one's snapshot, deltas and status can be checked afterwards).
#[derive(Debug)]
pub struct Recorder {
    crumbs: Arc<Mutex<Vec<Arc<Breadcrumb>>>>,
    cancel: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Recorder {
    /// Starts following `cache`.
    pub fn start(cache: &Cache) -> Recorder {
        let crumbs = Arc::new(Mutex::new(vec![cache.current_breadcrumb()]));
        let cancel = CancelToken::new();
        let thread = std::thread::spawn({
            let crumbs = crumbs.clone();
            let cancel = cancel.clone();
            move || {
                let mut crumb = crumbs.lock().unwrap()[0].clone();
                while let Ok(next) = crumb.next(&cancel) {
                    crumbs.lock().unwrap().push(next.clone());
                    crumb = next;
                }
            }
        });
        Recorder {
            crumbs,
            cancel,
            thread: Some(thread),
        }
    }

    /// The breadcrumbs so far.
    pub fn crumbs(&self) -> Vec<Arc<Breadcrumb>> {
        self.crumbs
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The breadcrumbs whose status is `InSync` and whose predecessor's is not: the moments
    /// the cache claimed to be in sync.
    pub fn in_sync_transitions(&self) -> Vec<Arc<Breadcrumb>> {
        self.crumbs()
            .windows(2)
            .filter(|w| {
                w[1].sync_status == SyncStatus::InSync && w[0].sync_status != SyncStatus::InSync
            })
            .map(|w| w[1].clone())
            .collect()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.cancel.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A breadcrumb's snapshot as keys and values.
pub fn snapshot_state(crumb: &Breadcrumb) -> State {
    crumb
        .kvs
        .iter()
        .map(|(k, u)| (k.clone(), u.value.clone().unwrap_or_default()))
        .collect()
}

/// etcd's keys and values under `prefix` (all keys if empty), at `revision` (the newest if
/// `None`), read with etcd-client; and the revision they are at.
pub async fn etcd_state(
    client: &mut etcd_client::Client,
    prefix: &[u8],
    revision: Option<i64>,
) -> (State, i64) {
    let mut options = if prefix.is_empty() {
        etcd_client::GetOptions::new().with_all_keys()
    } else {
        etcd_client::GetOptions::new().with_prefix()
    };
    if let Some(r) = revision {
        options = options.with_revision(r);
    }
    let mut response = client
        .kv_client()
        .max_decoding_message_size(crate::DEFAULT_MAX_MESSAGE_SIZE)
        .get(prefix.to_vec(), Some(options))
        .await
        .expect("read etcd's state");
    let at = response.header().map_or(0, |h| h.revision());
    let state = response
        .take_kvs()
        .into_iter()
        .map(|kv| {
            let (k, v) = kv.into_key_value();
            (Bytes::from(k), Bytes::from(v))
        })
        .collect();
    (state, at)
}

/// etcd's keys and values under `prefix` as `etcdctl get --prefix` prints them (in its JSON
/// form, so that binary keys and values survive), read by a separate, Go, client.
pub fn etcdctl_state(etcd: &crate::testing::EtcdServer, prefix: &str) -> State {
    let out = etcd.etcdctl(&["get", "--prefix", prefix, "-w", "json"]);
    let json: serde_json::Value = serde_json::from_slice(&out).expect("etcdctl's JSON");
    let b64 = |v: &serde_json::Value| {
        use base64::Engine as _;
        Bytes::from(
            base64::engine::general_purpose::STANDARD
                .decode(v.as_str().unwrap_or_default())
                .expect("etcdctl's base64"),
        )
    };
    json["kvs"]
        .as_array()
        .map(|kvs| {
            kvs.iter()
                .map(|kv| (b64(&kv["key"]), b64(&kv["value"])))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits (at most `timeout`) until the cache's newest snapshot equals `expected`; on time out,
/// returns a description of the difference.
pub fn wait_for_state(cache: &Cache, expected: &State, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = snapshot_state(&cache.current_breadcrumb());
        if &got == expected {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(describe_difference(&got, expected));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What differs between two states, briefly.
pub fn describe_difference(got: &State, expected: &State) -> String {
    let missing: Vec<_> = expected
        .keys()
        .filter(|k| !got.contains_key(*k))
        .take(5)
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .take(5)
        .collect();
    let wrong: Vec<_> = expected
        .iter()
        .filter(|(k, v)| got.get(*k).is_some_and(|g| g != *v))
        .map(|(k, _)| k)
        .take(5)
        .collect();
    format!(
        "cache has {} keys, etcd {}; missing (first 5) {missing:?}; extra {extra:?}; wrong value {wrong:?}",
        got.len(),
        expected.len()
    )
}
