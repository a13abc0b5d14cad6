//! A fan-out snapshot cache: Calico Typha's breadcrumbs, on a lock-free Ctrie.
//!
//! One *syncer* feeds a stream of key/value [`Update`]s and [`SyncStatus`] changes into a
//! [`Cache`]. Any number of *followers* (threads or async tasks) each take the
//! [current breadcrumb](Cache::current_breadcrumb), stream its snapshot of the whole state
//! ([`Breadcrumb::kvs`]), then walk forward ([`Breadcrumb::next`] /
//! [`Breadcrumb::next_async`]) applying only each breadcrumb's [`deltas`](Breadcrumb::deltas).
//! The producer never blocks on followers and does no per-follower work: publishing is one
//! link, one swap and one futex wake.
//!
//! Each breadcrumb's snapshot is an O(1) read-only snapshot of the cache's
//! [`ctrie::Ctrie`], so keeping one per batch costs only what the batch changed.
//!
//! # Semantics (Typha's)
//! * Input goes through one bounded queue (2 x `max_batch_size` items) shared by updates and
//!   statuses, so their order is kept; producers block while it is full; empty update lists
//!   are ignored.
//! * The processing thread takes a batch (everything queued, up to `max_batch_size` updates, a
//!   status counting 1) and splits its updates into breadcrumbs of at most `max_batch_size`
//!   deltas. The batch's (last) status goes on the last of them only, so no follower hears "in
//!   sync" before it has every update of the batch.
//! * A deletion removes the key and is always recorded. An update equal to the stored entry in
//!   key, value bytes and TTL whose type is `Updated` is skipped (revisions are ignored; stored
//!   entries count as `Updated`; the same value sent as `New` is recorded again). Everything
//!   else is stored with type `New` and recorded as received.
//! * A breadcrumb is published only if something changed. Sequence numbers are consecutive and
//!   each snapshot equals the previous one with the deltas applied.
//! * After [`Cache::shutdown`] (or once the last handle is dropped) input is refused with
//!   [`Closed`], handing it back, and blocked followers get [`Cancelled`] once they reach the
//!   last breadcrumb. The same happens if the processing thread ever dies of a panic (a bug in
//!   the cache): health reports it not live, and `shutdown` re-raises the panic, rather than
//!   producers and followers blocking forever.
//!
//! # Example: a follower
//! ```
//! use snapcache::{Cache, CancelToken, Config, SyncStatus, Update, UpdateType};
//! use std::collections::HashMap;
//!
//! let cache = Cache::new(Config::default());
//! let follower = {
//!     let cache = cache.clone();
//!     std::thread::spawn(move || {
//!         let token = CancelToken::new();
//!         let mut crumb = cache.current_breadcrumb();
//!         let mut state: HashMap<_, _> =
//!             crumb.kvs.iter().map(|(k, u)| (k.clone(), u.value.clone().unwrap())).collect();
//!         while crumb.sync_status != SyncStatus::InSync {
//!             crumb = crumb.next(&token).expect("not cancelled");
//!             for d in &crumb.deltas {
//!                 match &d.value {
//!                     Some(v) => state.insert(d.key.clone(), v.clone()),
//!                     None => state.remove(&d.key),
//!                 };
//!             }
//!         }
//!         state
//!     })
//! };
//! for i in 0..1000 {
//!     cache.on_updates(vec![Update::set(format!("k{}", i % 10), format!("{i}"), UpdateType::Updated)])?;
//! }
//! cache.on_status_updated(SyncStatus::InSync)?;
//! let state = follower.join().unwrap();
//! assert_eq!(state.len(), 10);
//! assert_eq!(state[&bytes::Bytes::from("k9")], "999");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

// The README's examples (of both crates) are compiled and run as doc tests here.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

mod breadcrumb;
mod cache;
mod config;
mod queue;
mod stats;
mod sync;
mod types;
mod wait;

pub use crate::breadcrumb::Breadcrumb;
pub use crate::cache::Cache;
pub use crate::config::{
    Config, Health, HealthReporter, DEFAULT_HEALTH_NAME, DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_WAKE_UP_INTERVAL, HEALTH_INTERVAL,
};
pub use crate::queue::Closed;
pub use crate::stats::StatsSnapshot;
pub use crate::types::{SyncStatus, Update, UpdateType};
pub use crate::wait::{set_skip_recheck, CancelToken, Cancelled, NextFuture};
pub use bytes::Bytes;

/// Hooks for the loom models in `loom-tests` (built only under `--cfg snapcache_loom`): a
/// breadcrumb chain without the processing thread, so a model can race one publication
/// against followers.
#[cfg(snapcache_loom)]
#[doc(hidden)]
pub mod loom_support {
    use crate::sync::Arc;
    use crate::wait::Hub;
    use crate::{Breadcrumb, SyncStatus};

    /// An initial breadcrumb and the hub it wakes followers through.
    #[allow(missing_debug_implementations)]
    pub struct Chain {
        hub: Arc<Hub>,
        /// The initial breadcrumb (sequence 0).
        pub first: Arc<Breadcrumb>,
    }

    impl Chain {
        /// A chain holding only the initial breadcrumb.
        pub fn new() -> Self {
            let hub = Hub::new();
            let kvs = ctrie::Ctrie::new().read_only_snapshot();
            let first = Arc::new(Breadcrumb::new(
                0,
                kvs,
                Vec::new(),
                SyncStatus::default(),
                hub.clone(),
            ));
            Chain { hub, first }
        }

        /// Publishes breadcrumb 1 after the initial one, as the processing thread does.
        pub fn publish(&self) {
            let kvs = self.first.kvs.clone();
            let next = Arc::new(Breadcrumb::new(
                1,
                kvs,
                Vec::new(),
                SyncStatus::InSync,
                self.hub.clone(),
            ));
            self.first.link(next);
            self.hub.notify();
        }
    }

    impl Default for Chain {
        fn default() -> Self {
            Self::new()
        }
    }

    /// The cache's input queue, with status items standing in for updates.
    #[allow(missing_debug_implementations)]
    pub struct InputQueue(crate::queue::Queue);

    impl InputQueue {
        /// An empty queue holding at most `capacity` items.
        pub fn new(capacity: usize) -> Self {
            InputQueue(crate::queue::Queue::new(capacity))
        }

        /// Enqueues an item, blocking while the queue is full.
        pub fn send(&self) {
            assert!(self
                .0
                .send(crate::queue::Item::Status(SyncStatus::InSync))
                .is_ok());
        }

        /// Takes an item, blocking while the queue is empty (loom has no time, so the
        /// processing thread's timed wait is an untimed one here).
        pub fn recv(&self) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3600);
            loop {
                if let crate::queue::Recv::Item(_) = self.0.recv_until(deadline) {
                    return;
                }
            }
        }

        /// Takes an item if there is one, as the processing thread drains a batch.
        pub fn try_recv(&self) -> bool {
            self.0.try_recv().is_some()
        }
    }

    /// Seeded bug: producers wait without registering, so nobody wakes them.
    pub fn set_unregistered_sender(on: bool) {
        crate::queue::set_unregistered_sender(on);
    }
}
