//! The cache: the input side (`on_updates`, `on_status_updated`), the processing thread that
//! turns batches into breadcrumbs, and the lock-free `current_breadcrumb`.

use core::ptr;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ctrie::Ctrie;

use crate::breadcrumb::Breadcrumb;
use crate::config::{Config, Health, HEALTH_INTERVAL};
use crate::queue::{Closed, Item, Queue, Recv};
use crate::stats::StatsSnapshot;
use crate::sync::{thread, Arc, AtomicPtr, Mutex, Ordering};
use crate::types::{SyncStatus, Update, UpdateType};
use crate::wait::Hub;

/// The snapshot cache: one syncer feeds updates and statuses in; any number of followers read
/// breadcrumbs out (see [`Breadcrumb`]).
///
/// Cheap to clone (all clones share one cache). Dropping the last clone, or calling
/// [`shutdown`](Cache::shutdown), processes everything already accepted, stops the processing
/// thread and joins it; later input is refused with [`Closed`].
///
/// ```
/// use snapcache::{Cache, Config, SyncStatus, Update, UpdateType};
///
/// let cache = Cache::new(Config { max_batch_size: 2, ..Default::default() });
/// cache.on_updates(vec![
///     Update::set("a", "1", UpdateType::New),
///     Update::set("b", "2", UpdateType::New),
///     Update::set("c", "3", UpdateType::New),
/// ])?;
/// cache.on_status_updated(SyncStatus::InSync)?;
/// cache.shutdown(); // waits until everything accepted is published
/// let crumb = cache.current_breadcrumb();
/// assert_eq!(crumb.kvs.len(), 3);
/// assert_eq!(crumb.sync_status, SyncStatus::InSync);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Cache {
    handle: Arc<Handle>,
}

/// Owned by the `Cache` clones only: its drop shuts the cache down.
struct Handle {
    shared: Arc<Shared>,
    /// The processing thread.
    thread: Mutex<Option<thread::JoinHandle<()>>>,
    /// The thread that wakes async followers; it exits once the hub is closed.
    bridge: Mutex<Option<thread::JoinHandle<()>>>,
}

/// Shared between the handles and the processing thread.
struct Shared {
    queue: Queue,
    /// The newest breadcrumb: an `Arc::into_raw`. Replaced by the processing thread; the
    /// replaced reference is released through the epoch so that readers that loaded it while
    /// pinned can still take their own reference.
    current: AtomicPtr<Breadcrumb>,
    hub: Arc<Hub>,
    config: Config,
}

impl Cache {
    /// Starts a cache (and its processing thread) with `config`; zero fields take defaults.
    /// Health is reported once right away (not ready: the status starts as
    /// `WaitForDatastore`).
    pub fn new(config: Config) -> Self {
        let config = config.normalized();
        let hub = Hub::new();
        let bridge = Hub::spawn_bridge(&hub);
        let state: Ctrie<Bytes, Update> = Ctrie::new();
        let first = Arc::new(Breadcrumb::new(
            0,
            state.read_only_snapshot(),
            Vec::new(),
            SyncStatus::WaitForDatastore,
            hub.clone(),
        ));
        let shared = Arc::new(Shared {
            queue: Queue::new(config.max_batch_size.saturating_mul(2)),
            current: AtomicPtr::new(Arc::into_raw(first.clone()).cast_mut()),
            hub,
            config,
        });
        report_health(&shared.config, false);
        let worker = shared.clone();
        // Named, so that profiles, debuggers and panic messages say whose thread it is.
        let thread = thread::Builder::new()
            .name("snapcache-processor".into())
            .spawn(move || Processor::new(worker, state, first).run())
            .expect("spawn the cache's processing thread");
        Cache {
            handle: Arc::new(Handle {
                shared,
                thread: Mutex::new(Some(thread)),
                bridge: Mutex::new(Some(bridge)),
            }),
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Enqueues a batch of updates (an empty one is ignored), waiting while the queue is full.
    /// After [`shutdown`](Cache::shutdown) the updates are handed back in `Err(Closed(..))`.
    pub fn on_updates(&self, updates: Vec<Update>) -> Result<(), Closed<Vec<Update>>> {
        if updates.is_empty() {
            return Ok(());
        }
        self.shared()
            .queue
            .send(Item::Updates(updates))
            .map_err(|item| match item {
                Item::Updates(u) => Closed(u),
                Item::Status(_) => unreachable!(),
            })
    }

    /// Enqueues a status change (in order with the updates), waiting while the queue is full.
    pub fn on_status_updated(&self, status: SyncStatus) -> Result<(), Closed<SyncStatus>> {
        self.shared()
            .queue
            .send(Item::Status(status))
            .map_err(|_| Closed(status))
    }

    /// The newest breadcrumb. Lock-free: it never waits for the processing thread.
    pub fn current_breadcrumb(&self) -> Arc<Breadcrumb> {
        let _guard = crossbeam_epoch::pin();
        // Acquire: pairs with the Release swap in `publish`, making the breadcrumb visible.
        let p = self.shared().current.load(Ordering::Acquire);
        // SAFETY: `p` is an `Arc::into_raw` that `current` held when we loaded it while pinned;
        // the processing thread releases a replaced one only through the epoch, so its count is
        // still at least one while we add ours.
        unsafe {
            Arc::increment_strong_count(p);
            Arc::from_raw(p)
        }
    }

    /// The counters the reference cache exports.
    pub fn stats(&self) -> StatsSnapshot {
        self.shared().hub.stats.snapshot()
    }

    /// Stops accepting input, publishes everything already accepted, stops the processing
    /// thread and waits for it. Blocked followers return `Err(Cancelled)` once they have
    /// reached the last breadcrumb. Idempotent.
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}

impl Handle {
    fn shutdown(&self) {
        self.shared.queue.close();
        let thread = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        let bridge = self.bridge.lock().unwrap_or_else(|e| e.into_inner()).take();
        let processed = thread.map(|t| t.join());
        // The processing thread closed the hub on its way out, however it ended, which stops
        // the bridge: joined too, so that no thread of the cache outlives `shutdown`.
        if let Some(b) = bridge {
            let _ = b.join();
        }
        // The processing thread catches reporter panics; a panic here would be a bug in the
        // cache itself, surfaced to whoever shuts it down.
        if let Some(Err(p)) = processed {
            std::panic::resume_unwind(p);
        }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        if !thread::panicking() {
            self.shutdown();
        } else {
            self.shared.queue.close();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        // Relaxed: we are the last owner.
        let p = self.current.swap(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: `current` owns one strong reference to a non-null `Arc::into_raw`.
        drop(unsafe { Arc::from_raw(p) });
    }
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("config", &self.shared().config)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Closes the cache when the processing thread ends, however it ends. Normally that is after
/// the input queue was closed and drained, and followers then see the end of the chain. If the
/// thread panicked (a bug in the cache), closing both ends turns what would be a silent hang
/// into errors: producers get `Closed` instead of blocking on a queue nobody drains, blocked
/// followers get `Cancelled` at the last breadcrumb, and health reports not live. The panic
/// itself resurfaces in `shutdown()`.
struct OnExit(Arc<Shared>);

impl Drop for OnExit {
    fn drop(&mut self) {
        // First, so that whoever sees the cache closed also sees the health that says why.
        // `std`'s `panicking`, not the shim's: whether this OS thread unwinds, under loom too.
        if std::thread::panicking() {
            report(
                &self.0.config,
                Health {
                    live: false,
                    ready: false,
                },
            );
        }
        self.0.queue.close();
        self.0.hub.close();
    }
}

/// Reports health, surviving a panicking reporter.
fn report_health(config: &Config, ready: bool) {
    report(config, Health { live: true, ready });
}

/// Reports `health`, surviving a panicking reporter.
fn report(config: &Config, health: Health) {
    if let Some(r) = &config.health {
        let _ = catch_unwind(AssertUnwindSafe(|| r.report(&config.health_name, health)));
    }
}

/// The processing thread's state.
struct Processor {
    shared: Arc<Shared>,
    /// The cache's state: the key-value store the breadcrumbs snapshot.
    state: Ctrie<Bytes, Update>,
    /// The newest published breadcrumb.
    tail: Arc<Breadcrumb>,
    keys: u64,
    last_status: SyncStatus,
}

impl Processor {
    fn new(shared: Arc<Shared>, state: Ctrie<Bytes, Update>, tail: Arc<Breadcrumb>) -> Self {
        Processor {
            shared,
            state,
            tail,
            keys: 0,
            last_status: SyncStatus::WaitForDatastore,
        }
    }

    fn run(mut self) {
        let _exit = OnExit(self.shared.clone());
        // Anything longer than a year means "never" in practice, and would overflow `Instant`.
        let wake_up = self.shared.config.wake_up_interval.min(YEAR);
        let max = self.shared.config.max_batch_size;
        let mut next_wake = Instant::now() + wake_up;
        let mut next_health = Instant::now() + HEALTH_INTERVAL;
        loop {
            let deadline = next_wake.min(next_health);
            let first = match self.shared.queue.try_recv() {
                Some(item) => Recv::Item(item),
                None => {
                    // About to sleep: hand over the deferred frees of what the last batch
                    // replaced (see `sync::garbage`).
                    crate::sync::garbage::hand_over();
                    self.shared.queue.recv_until(deadline)
                }
            };
            match first {
                Recv::Item(first) => {
                    let mut batch = vec![first];
                    let mut size = item_size(&batch[0]);
                    while size < max {
                        match self.shared.queue.try_recv() {
                            Some(item) => {
                                size += item_size(&item);
                                batch.push(item);
                            }
                            None => break,
                        }
                    }
                    self.process(batch);
                }
                Recv::Timeout => {}
                Recv::Closed => break,
            }
            let now = Instant::now();
            if now >= next_wake {
                // Periodic wake-up, so blocked followers can notice cancellation even if
                // nothing is published (Typha's semantics; cancelling a token also wakes).
                self.shared.hub.notify();
                next_wake = now + wake_up;
            }
            if now >= next_health {
                report_health(&self.shared.config, self.last_status == SyncStatus::InSync);
                next_health = now + HEALTH_INTERVAL;
            }
        }
    }

    /// Turns one batch into breadcrumbs: updates split into chunks of at most `max_batch_size`
    /// deltas; the last status of the batch goes on the last chunk only.
    fn process(&mut self, batch: Vec<Item>) {
        let max = self.shared.config.max_batch_size;
        let mut updates = Vec::new();
        let mut status = None;
        for item in batch {
            match item {
                Item::Updates(u) => updates.extend(u),
                Item::Status(s) => {
                    status = Some(s);
                    self.last_status = s;
                    report_health(&self.shared.config, s == SyncStatus::InSync);
                }
            }
        }
        if updates.is_empty() {
            self.publish_chunk(Vec::new(), status);
            return;
        }
        let chunks = updates.len().div_ceil(max);
        let mut rest = updates.into_iter();
        for i in 0..chunks {
            let chunk: Vec<Update> = rest.by_ref().take(max).collect();
            self.publish_chunk(chunk, if i + 1 == chunks { status } else { None });
        }
    }

    /// Applies one chunk to the state and publishes a breadcrumb if anything changed.
    fn publish_chunk(&mut self, chunk: Vec<Update>, status: Option<SyncStatus>) {
        let total = chunk.len() as u64;
        let mut deltas = Vec::with_capacity(chunk.len());
        {
            let state = self.state.pin();
            for upd in chunk {
                #[cfg(test)]
                if upd.key.as_ref() == tests::CRASH_KEY {
                    panic!("seeded crash of the processing thread (test-only hook)");
                }
                if upd.is_deletion() {
                    // Always recorded, even for a key never present (followers may hold it).
                    if state.remove(&upd.key).is_some() {
                        self.keys -= 1;
                    }
                    deltas.push(upd);
                    continue;
                }
                // One walk of the trie: the stored entry is compared where it is found, and the
                // new one built only if it is to be stored.
                let applied = state.insert_unless(
                    &upd.key,
                    |stored| upd.is_noop_for(stored),
                    || {
                        let stored = Update {
                            update_type: UpdateType::New,
                            ..upd.clone()
                        };
                        (upd.key.clone(), stored)
                    },
                );
                match applied {
                    Err(_) => continue, // a no-op
                    Ok(None) => self.keys += 1,
                    Ok(Some(_)) => {}
                }
                deltas.push(upd);
            }
        }
        self.shared
            .hub
            .stats
            .count_updates(total, total - deltas.len() as u64);
        let new_status = status.unwrap_or(self.tail.sync_status);
        if deltas.is_empty() && new_status == self.tail.sync_status {
            return;
        }
        let seq = self.tail.sequence_number + 1;
        let n = deltas.len() as u64;
        let crumb = Arc::new(Breadcrumb::new(
            seq,
            self.state.read_only_snapshot(),
            deltas,
            new_status,
            self.shared.hub.clone(),
        ));
        self.publish(crumb);
        self.shared.hub.stats.count_publish(seq, n, self.keys);
    }

    /// Links `crumb` after the tail, makes it current, and wakes every follower: one store, one
    /// swap, one increment and one wake, whatever the number of followers.
    fn publish(&mut self, crumb: Arc<Breadcrumb>) {
        self.tail.link(crumb.clone());
        let guard = crossbeam_epoch::pin();
        // AcqRel: Release publishes the breadcrumb to `current_breadcrumb` readers; Acquire pairs
        // with our own earlier swap (we release what we replaced).
        let old = self
            .shared
            .current
            .swap(Arc::into_raw(crumb.clone()).cast_mut(), Ordering::AcqRel);
        let old = SendPtr(old);
        // SAFETY: `old` is the `Arc::into_raw` that `current` owned; no new reader can load it
        // now, and readers that loaded it while pinned take their reference before unpinning, so
        // releasing it after a grace period never drops a count they rely on.
        unsafe {
            guard.defer_unchecked(move || {
                let old = old;
                drop(Arc::from_raw(old.0));
            })
        };
        self.tail = crumb;
        self.shared.hub.notify();
    }
}

/// The longest wake-up interval the processing loop schedules.
const YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

/// A raw breadcrumb pointer moved into a deferred function.
struct SendPtr(*mut Breadcrumb);

/// How much an item counts towards `max_batch_size`: its updates, or 1 for a status.
fn item_size(item: &Item) -> usize {
    match item {
        Item::Updates(u) => u.len(),
        Item::Status(_) => 1,
    }
}

#[cfg(test)]
mod tests {
    //! The batching rules, checked on the processor directly so that batch boundaries are
    //! deterministic (through the public API they depend on thread timing).

    use super::*;
    use crate::wait::CancelToken;

    /// An update with this key makes the processing thread panic (test builds only).
    pub(super) const CRASH_KEY: &[u8] = b"\xffcrash the processing thread";

    fn processor(max: usize) -> (Processor, Arc<Breadcrumb>) {
        let config = Config {
            max_batch_size: max,
            ..Default::default()
        }
        .normalized();
        let hub = Hub::new();
        let state: Ctrie<Bytes, Update> = Ctrie::new();
        let first = Arc::new(Breadcrumb::new(
            0,
            state.read_only_snapshot(),
            Vec::new(),
            SyncStatus::WaitForDatastore,
            hub.clone(),
        ));
        let shared = Arc::new(Shared {
            queue: Queue::new(config.max_batch_size.saturating_mul(2)),
            current: AtomicPtr::new(Arc::into_raw(first.clone()).cast_mut()),
            hub,
            config,
        });
        (Processor::new(shared, state, first.clone()), first)
    }

    fn chain(head: &Arc<Breadcrumb>) -> Vec<Arc<Breadcrumb>> {
        let mut out = vec![head.clone()];
        while let Some(n) = out.last().unwrap().try_next() {
            out.push(n);
        }
        out
    }

    fn set(k: &str, v: &str, t: UpdateType) -> Update {
        Update::set(k.to_string(), v.to_string(), t)
    }

    #[test]
    fn one_input_of_n_updates_gives_ceil_n_over_max_breadcrumbs_status_on_the_last() {
        let (mut p, head) = processor(10);
        let updates: Vec<Update> = (0..25)
            .map(|i| set(&format!("k{i}"), "v", UpdateType::New))
            .collect();
        p.process(vec![
            Item::Updates(updates),
            Item::Status(SyncStatus::InSync),
        ]);
        let c = chain(&head);
        let sizes: Vec<usize> = c.iter().map(|b| b.deltas.len()).collect();
        assert_eq!(sizes, [0, 10, 10, 5]);
        let statuses: Vec<SyncStatus> = c.iter().map(|b| b.sync_status).collect();
        use SyncStatus::*;
        assert_eq!(
            statuses,
            [WaitForDatastore, WaitForDatastore, WaitForDatastore, InSync]
        );
        let seqs: Vec<u64> = c.iter().map(|b| b.sequence_number).collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(c[3].kvs.len(), 25);
        assert_eq!(c[1].kvs.len(), 10);
    }

    #[test]
    fn several_statuses_coalesce_to_the_last_and_a_status_only_change_has_no_deltas() {
        let (mut p, head) = processor(10);
        p.process(vec![
            Item::Status(SyncStatus::ResyncInProgress),
            Item::Status(SyncStatus::WaitForDatastore),
            Item::Status(SyncStatus::InSync),
        ]);
        let c = chain(&head);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].sync_status, SyncStatus::InSync);
        assert!(c[1].deltas.is_empty());
        // The same status again changes nothing: no breadcrumb.
        p.process(vec![Item::Status(SyncStatus::InSync)]);
        assert_eq!(chain(&head).len(), 2);
    }

    #[test]
    fn dedupe_updated_with_only_a_new_revision() {
        let (mut p, head) = processor(10);
        p.process(vec![Item::Updates(vec![
            set("k", "v", UpdateType::New).with_revision("1")
        ])]);
        // Same value, new revision, sent as Updated: a no-op, no breadcrumb.
        p.process(vec![Item::Updates(vec![set(
            "k",
            "v",
            UpdateType::Updated,
        )
        .with_revision("2")])]);
        assert_eq!(chain(&head).len(), 2);
        assert_eq!(p.shared.hub.stats.snapshot().updates_skipped, 1);
        // Sent as New it is recorded again.
        p.process(vec![Item::Updates(vec![
            set("k", "v", UpdateType::New).with_revision("3")
        ])]);
        assert_eq!(chain(&head).len(), 3);
        // A different TTL is a change.
        let ttl = set("k", "v", UpdateType::Updated).with_ttl(std::time::Duration::from_secs(5));
        p.process(vec![Item::Updates(vec![ttl])]);
        assert_eq!(chain(&head).len(), 4);
    }

    #[test]
    fn update_types_coalesce_to_new_in_the_snapshot_but_not_in_the_deltas() {
        let (mut p, head) = processor(10);
        p.process(vec![Item::Updates(vec![
            set("k", "1", UpdateType::New),
            set("k", "2", UpdateType::Updated),
        ])]);
        let c = chain(&head);
        let last = c.last().unwrap();
        assert_eq!(
            last.deltas
                .iter()
                .map(|d| d.update_type)
                .collect::<Vec<_>>(),
            [UpdateType::New, UpdateType::Updated]
        );
        let stored = last.kvs.get(&Bytes::from("k")).unwrap();
        assert_eq!(stored.update_type, UpdateType::New);
        assert_eq!(stored.value.as_deref(), Some(&b"2"[..]));
    }

    #[test]
    fn deletions_are_always_recorded() {
        let (mut p, head) = processor(10);
        p.process(vec![Item::Updates(vec![set("k", "1", UpdateType::New)])]);
        p.process(vec![Item::Updates(vec![Update::delete("k")])]);
        p.process(vec![Item::Updates(vec![Update::delete("never-there")])]);
        let c = chain(&head);
        assert_eq!(c.len(), 4);
        assert!(c[2].kvs.is_empty());
        assert_eq!(c[3].deltas.len(), 1);
        assert_eq!(c[3].deltas[0].key, Bytes::from("never-there"));
    }

    #[test]
    fn a_chunk_of_only_no_ops_publishes_nothing_but_the_status_still_lands() {
        let (mut p, head) = processor(2);
        p.process(vec![Item::Updates(vec![
            set("a", "1", UpdateType::New),
            set("b", "1", UpdateType::New),
        ])]);
        // Two no-ops, then a change, then the status: chunks [noop, noop], [change].
        p.process(vec![
            Item::Updates(vec![
                set("a", "1", UpdateType::Updated),
                set("b", "1", UpdateType::Updated),
                set("c", "1", UpdateType::New),
            ]),
            Item::Status(SyncStatus::InSync),
        ]);
        let c = chain(&head);
        assert_eq!(c.len(), 3);
        assert_eq!(c[2].deltas.len(), 1);
        assert_eq!(c[2].sync_status, SyncStatus::InSync);
    }

    /// A processing thread that dies (a bug in the cache, seeded here through a test-only hook)
    /// must not leave the cache hanging: producers are refused, blocked followers are released,
    /// health says not live, and `shutdown` re-raises the panic.
    #[test]
    fn a_dead_processing_thread_closes_the_cache_instead_of_hanging_it() {
        struct Last(Mutex<Option<Health>>);
        impl crate::config::HealthReporter for Last {
            fn report(&self, _: &str, h: Health) {
                *self.0.lock().unwrap() = Some(h);
            }
        }
        let last = Arc::new(Last(Mutex::new(None)));
        let cache = Cache::new(Config {
            max_batch_size: 2,
            health: Some(last.clone()),
            ..Config::default()
        });
        let first = cache.current_breadcrumb();
        let (done, finished) = std::sync::mpsc::channel();
        let follower_done = done.clone();
        std::thread::spawn(move || {
            let cancel = CancelToken::new();
            let mut crumb = first;
            while let Ok(next) = crumb.next(&cancel) {
                crumb = next;
            }
            let _ = follower_done.send(("follower", crumb.sequence_number));
        });
        cache
            .on_updates(vec![Update::set("a", "1", UpdateType::New)])
            .unwrap();
        let crash = Update::set(Bytes::from_static(CRASH_KEY), "x", UpdateType::New);
        cache.on_updates(vec![crash]).unwrap();
        // Producers are refused once the thread is gone. (A hung cache would block this
        // producer forever once the 4-item queue is full, hence its own thread.)
        let producer = cache.clone();
        std::thread::spawn(move || {
            let mut sent = 0;
            while producer
                .on_updates(vec![Update::set("b", "1", UpdateType::New)])
                .is_ok()
            {
                sent += 1;
            }
            let _ = done.send(("producer", sent));
        });
        let mut seen = Vec::new();
        for _ in 0..2 {
            let (who, n) = finished
                .recv_timeout(Duration::from_secs(30))
                .expect("the producer or a follower still blocked after 30 s: the cache hung");
            seen.push(who);
            if who == "follower" {
                // Released at the last breadcrumb the thread published.
                assert_eq!(n, cache.current_breadcrumb().sequence_number);
            }
        }
        seen.sort_unstable();
        assert_eq!(seen, ["follower", "producer"]);
        assert_eq!(
            *last.0.lock().unwrap(),
            Some(Health {
                live: false,
                ready: false
            })
        );
        let shutdown = catch_unwind(AssertUnwindSafe(|| cache.shutdown()));
        assert!(shutdown.is_err(), "shutdown re-raises the thread's panic");
    }
}
