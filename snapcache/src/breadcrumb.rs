//! Breadcrumbs: immutable (snapshot, deltas, status) records linked forward into a list.

use core::ptr;
use std::fmt;
use std::time::SystemTime;

use bytes::Bytes;
use ctrie::{Diff, Snapshot};

use crate::sync::{Arc, AtomicPtr, Ordering};
use crate::types::{SyncStatus, Update};
use crate::wait::{skip_recheck, CancelToken, Cancelled, Hub, NextFuture};

/// One step of the cache's history: the complete state at a revision (`kvs`), the updates
/// that led there from the previous breadcrumb (`deltas`), and the sync status.
///
/// Immutable once published. Each breadcrumb links to its successor (forward only), so a
/// follower holding one keeps it and every later one alive, and nothing earlier.
///
/// A follower streams `kvs` of the breadcrumb it starts from, then walks [`next`](Self::next)
/// applying only `deltas`:
///
/// ```
/// use snapcache::{Cache, CancelToken, Config, SyncStatus, Update, UpdateType};
///
/// let cache = Cache::new(Config::default());
/// cache.on_updates(vec![Update::set("a", "1", UpdateType::New)])?;
/// cache.on_status_updated(SyncStatus::InSync)?;
///
/// let mut crumb = cache.current_breadcrumb();
/// let mut state: std::collections::HashMap<_, _> =
///     crumb.kvs.iter().map(|(k, u)| (k.clone(), u.value.clone())).collect();
/// let token = CancelToken::new();
/// while crumb.sync_status != SyncStatus::InSync {
///     crumb = crumb.next(&token)?;
///     for d in &crumb.deltas {
///         match &d.value {
///             Some(v) => { state.insert(d.key.clone(), Some(v.clone())); }
///             None => { state.remove(&d.key); }
///         }
///     }
/// }
/// assert_eq!(state.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Breadcrumb {
    /// 0 for the initial breadcrumb, then consecutive.
    pub sequence_number: u64,
    /// When it was published.
    pub timestamp: SystemTime,
    /// The whole state at this point: a read-only snapshot, every entry of type `New`.
    pub kvs: Snapshot<Bytes, Update>,
    /// The updates since the previous breadcrumb, as received (deletions always included).
    pub deltas: Vec<Update>,
    /// The syncer's status at this point.
    pub sync_status: SyncStatus,
    /// The successor: an `Arc::into_raw`, null until published, set once.
    next: AtomicPtr<Breadcrumb>,
    pub(crate) hub: Arc<Hub>,
}

impl Breadcrumb {
    pub(crate) fn new(
        sequence_number: u64,
        kvs: Snapshot<Bytes, Update>,
        deltas: Vec<Update>,
        sync_status: SyncStatus,
        hub: Arc<Hub>,
    ) -> Self {
        Breadcrumb {
            sequence_number,
            timestamp: SystemTime::now(),
            kvs,
            deltas,
            sync_status,
            next: AtomicPtr::new(ptr::null_mut()),
            hub,
        }
    }

    /// The successor if it has been published; never blocks.
    pub fn try_next(&self) -> Option<Arc<Breadcrumb>> {
        // Acquire: pairs with the Release store in `link`, making the successor's fields visible.
        let p = self.next.load(Ordering::Acquire);
        if p.is_null() {
            return None;
        }
        // SAFETY: `p` came from `Arc::into_raw` in `link` and `self.next` owns that strong
        // reference for as long as `self` lives (it is released only in `Drop`), so the count is
        // at least one while we add ours.
        unsafe {
            Arc::increment_strong_count(p);
            Some(Arc::from_raw(p))
        }
    }

    /// The successor, waiting for it if needed. Returns at once if it exists (even when
    /// `cancel` is cancelled); otherwise sleeps on the cache's futex word until it is
    /// published, `cancel` is cancelled (`Err(Cancelled)`, promptly), or the cache shuts down
    /// (`Err(Cancelled)` too).
    pub fn next(&self, cancel: &CancelToken) -> Result<Arc<Breadcrumb>, Cancelled> {
        if let Some(next) = self.try_next() {
            self.hub.stats.count_next(false);
            return Ok(next);
        }
        let _registered = cancel.register(&self.hub);
        // About to sleep: do not keep the breadcrumbs we just left alive meanwhile.
        crate::sync::garbage::hand_over_if_dropped();
        loop {
            let seen = self.hub.epoch();
            // The re-check after reading the epoch is what makes the wait below safe.
            if !skip_recheck() {
                if let Some(next) = self.try_next() {
                    self.hub.stats.count_next(true);
                    return Ok(next);
                }
            }
            if cancel.is_cancelled() || self.hub.is_closed() {
                return self.try_next().ok_or(Cancelled);
            }
            self.hub.wait(seen, cancel.mask());
            if skip_recheck() {
                if let Some(next) = self.try_next() {
                    self.hub.stats.count_next(true);
                    return Ok(next);
                }
            }
        }
    }

    /// The successor, as a future: for async followers (tokio or any executor) without a thread
    /// each. Dropping the future cancels the wait. Resolves to `Err(Cancelled)` if the cache
    /// shuts down first.
    pub fn next_async(&self) -> NextFuture<'_> {
        NextFuture {
            current: self,
            blocked: false,
            registered: None,
        }
    }

    /// What changed in the cache's state from `older` to this breadcrumb: every key added,
    /// removed or written in between, each once, as the difference of the two breadcrumbs'
    /// snapshots ([`ctrie::Snapshot::diff`]). It costs time proportional to what changed, not
    /// to the size of the state: snapshots share every subtree no update touched, and the diff
    /// skips those. A follower that fell far behind catches up with it instead of reloading the
    /// whole newest snapshot; `older` may be any breadcrumb of the same cache (earlier or later:
    /// the roles of `Added` and `Removed` swap).
    ///
    /// A key written again with an equal value is not reported (the cache skips no-op updates);
    /// a key removed and re-created is reported as `Updated`.
    ///
    /// ```
    /// use ctrie::DiffItem;
    /// use snapcache::{Cache, CancelToken, Config, SyncStatus, Update, UpdateType};
    ///
    /// let cache = Cache::new(Config::default());
    /// let behind = cache.current_breadcrumb(); // a follower that stopped here
    /// cache.on_updates(vec![Update::set("a", "1", UpdateType::New), Update::set("b", "1", UpdateType::New)])?;
    /// cache.on_updates(vec![Update::set("a", "2", UpdateType::Updated), Update::delete("b")])?;
    /// cache.on_status_updated(SyncStatus::InSync)?;
    /// let mut newest = cache.current_breadcrumb();
    /// while newest.sync_status != SyncStatus::InSync {
    ///     newest = newest.next(&CancelToken::new())?;
    /// }
    /// // Catching up from `behind` to `newest` takes one change, not a reload.
    /// let changes: Vec<_> = newest.changes_since(&behind).collect();
    /// assert!(matches!(
    ///     changes[..],
    ///     [DiffItem::Added(k, u)] if k == "a" && u.value.as_deref() == Some(&b"2"[..])
    /// ));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn changes_since<'a>(&'a self, older: &'a Breadcrumb) -> Diff<'a, Bytes, Update> {
        older.kvs.diff(&self.kvs)
    }

    /// Publishes `next` as the successor. Called once, by the processing thread only.
    pub(crate) fn link(&self, next: Arc<Breadcrumb>) {
        let p = Arc::into_raw(next).cast_mut();
        // Release: publishes the successor's fields to followers that load the link (Acquire).
        let prev = self.next.swap(p, Ordering::Release);
        debug_assert!(prev.is_null(), "breadcrumb linked twice");
    }

    /// Takes the successor link out (for the iterative drop).
    fn take_next(&mut self) -> Option<Arc<Breadcrumb>> {
        // Relaxed: `&mut self`, no concurrent access.
        let p = self.next.swap(ptr::null_mut(), Ordering::Relaxed);
        // SAFETY: a non-null `next` is an `Arc::into_raw` whose strong reference we own.
        (!p.is_null()).then(|| unsafe { Arc::from_raw(p) })
    }
}

impl Drop for Breadcrumb {
    /// Releases the successor, and its successors as long as we held the last reference to
    /// them, in a loop: dropping a chain of millions does not recurse.
    fn drop(&mut self) {
        // Our snapshot's release is about to be queued in this thread's epoch bag.
        crate::sync::garbage::note_dropped();
        let mut next = self.take_next();
        while let Some(arc) = next {
            match Arc::try_unwrap(arc) {
                // We held the last reference: unlink its successor before it drops.
                Ok(mut crumb) => next = crumb.take_next(),
                // Someone else still holds it (and the rest of the chain): stop.
                Err(_) => break,
            }
        }
    }
}

impl fmt::Debug for Breadcrumb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breadcrumb")
            .field("sequence_number", &self.sequence_number)
            .field("timestamp", &self.timestamp)
            .field("deltas", &self.deltas.len())
            .field("sync_status", &self.sync_status)
            .field("has_next", &!self.next.load(Ordering::Acquire).is_null())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Dropping the head of a chain of a million breadcrumbs does not recurse (a recursive drop
    /// would overflow the stack long before).
    #[test]
    fn a_million_breadcrumb_chain_drops_without_recursion() {
        let n = if cfg!(miri) { 1_000 } else { 1_000_000 };
        let hub = Hub::new();
        let kvs = ctrie::Ctrie::<Bytes, Update>::new().read_only_snapshot();
        let head = Arc::new(Breadcrumb::new(
            0,
            kvs.clone(),
            Vec::new(),
            SyncStatus::default(),
            hub.clone(),
        ));
        let mut tail = head.clone();
        for seq in 1..n {
            let next = Arc::new(Breadcrumb::new(
                seq,
                kvs.clone(),
                Vec::new(),
                SyncStatus::default(),
                hub.clone(),
            ));
            tail.link(next.clone());
            tail = next;
        }
        let weak = Arc::downgrade(&tail);
        drop(tail);
        assert!(weak.upgrade().is_some(), "the chain keeps its tail alive");
        drop(head);
        assert!(
            weak.upgrade().is_none(),
            "dropping the head freed the whole chain"
        );
    }

    /// Applying `changes_since` to an older breadcrumb's state gives the newer one's, for
    /// every pair of breadcrumbs of a cache fed random sets and deletions (both directions).
    #[test]
    fn changes_since_turns_one_state_into_the_other() {
        use crate::{Cache, Config, UpdateType};
        use std::collections::HashMap;
        let (keys, batches) = if cfg!(miri) { (20, 6) } else { (500, 40) };
        let cache = Cache::new(Config {
            max_batch_size: 50,
            ..Config::default()
        });
        let first = cache.current_breadcrumb();
        let mut x = 1u64;
        for b in 0..batches {
            let updates = (0..50)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = Bytes::from((x % keys).to_string());
                    if x % 5 == 0 {
                        Update::delete(k)
                    } else {
                        Update::set(k, format!("{b}.{i}"), UpdateType::Updated)
                    }
                })
                .collect();
            cache.on_updates(updates).unwrap();
        }
        cache.on_status_updated(SyncStatus::InSync).unwrap();
        let token = CancelToken::new();
        let mut crumbs = vec![first];
        while crumbs.last().unwrap().sync_status != SyncStatus::InSync {
            let next = crumbs.last().unwrap().next(&token).unwrap();
            crumbs.push(next);
        }
        let state = |c: &Breadcrumb| -> HashMap<Bytes, Bytes> {
            c.kvs
                .iter()
                .map(|(k, u)| (k.clone(), u.value.clone().unwrap()))
                .collect()
        };
        let step = (crumbs.len() / 12).max(1);
        for older in crumbs.iter().step_by(step) {
            for newer in crumbs.iter().step_by(step) {
                let mut s = state(older);
                for d in newer.changes_since(older) {
                    match d {
                        ctrie::DiffItem::Added(k, u)
                        | ctrie::DiffItem::Updated { key: k, new: u, .. } => {
                            s.insert(k.clone(), u.value.clone().unwrap());
                        }
                        ctrie::DiffItem::Removed(k, _) => {
                            assert!(s.remove(k).is_some(), "removed a key that was absent");
                        }
                    }
                }
                assert_eq!(s, state(newer));
            }
        }
    }

    /// A follower holding a middle breadcrumb keeps it and the rest alive, not the earlier ones.
    #[test]
    fn a_held_breadcrumb_keeps_only_its_successors() {
        let hub = Hub::new();
        let kvs = ctrie::Ctrie::<Bytes, Update>::new().read_only_snapshot();
        let crumbs: Vec<Arc<Breadcrumb>> = (0..5)
            .map(|s| {
                Arc::new(Breadcrumb::new(
                    s,
                    kvs.clone(),
                    Vec::new(),
                    SyncStatus::default(),
                    hub.clone(),
                ))
            })
            .collect();
        for w in crumbs.windows(2) {
            w[0].link(w[1].clone());
        }
        let weak: Vec<_> = crumbs.iter().map(Arc::downgrade).collect();
        let held = crumbs[2].clone();
        drop(crumbs);
        let alive: Vec<bool> = weak.iter().map(|w| w.upgrade().is_some()).collect();
        assert_eq!(alive, [false, false, true, true, true]);
        drop(held);
        assert!(weak.iter().all(|w| w.upgrade().is_none()));
    }
}
