//! [`Snapshot::diff`]: what changed between two snapshots, in time proportional to the change;
//! and equality of snapshots and tries, built on it.

use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use core::ptr;
use std::collections::hash_map::RandomState;

use crate::iter::Iter;
use crate::map::Ctrie;
use crate::raw::diff::{RawDiff, RawDiffItem};
use crate::raw::Invariant;
use crate::snapshot::Snapshot;
use crate::sync::Arc;

/// One difference between an older and a newer snapshot, from [`Snapshot::diff`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffItem<'a, K, V> {
    /// The key is only in the newer snapshot.
    Added(&'a K, &'a V),
    /// The key is in both, but its entry was written in between.
    Updated {
        /// The key (as stored in the newer snapshot).
        key: &'a K,
        /// The value in the older snapshot.
        old: &'a V,
        /// The value in the newer snapshot.
        new: &'a V,
    },
    /// The key is only in the older snapshot.
    Removed(&'a K, &'a V),
}

impl<'a, K, V> DiffItem<'a, K, V> {
    /// The key this difference is about.
    pub fn key(&self) -> &'a K {
        match *self {
            DiffItem::Added(k, _) | DiffItem::Removed(k, _) | DiffItem::Updated { key: k, .. } => k,
        }
    }
}

/// The iterator of [`Snapshot::diff`].
pub struct Diff<'a, K, V, S = RandomState> {
    older: &'a Snapshot<K, V, S>,
    newer: &'a Snapshot<K, V, S>,
    how: How<'a, K, V>,
    _invariant: Invariant<K, V>,
}

// One per diff, kept inline (as the iterators' stacks are): no allocation.
#[allow(clippy::large_enum_variant)]
enum How<'a, K, V> {
    /// Snapshots hashed alike: the lock-step walk.
    Lockstep(RawDiff<K, V>),
    /// Different hashers: every entry of the older snapshot looked up in the newer, then every
    /// entry of the newer in the older.
    Full {
        newer_phase: bool,
        it: Iter<'a, K, V>,
    },
}

// SAFETY: the iterator hands out `&K`/`&V` of the two snapshots it borrows (which needs them
// `Sync`) and reads their frozen nodes from whichever thread it is on; it owns nothing.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Sync> Send for Diff<'_, K, V, S> {}
// SAFETY: `&Diff` gives access to nothing.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Sync> Sync for Diff<'_, K, V, S> {}

impl<K, V, S> Snapshot<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// What changed from this snapshot to `newer`: every key added, removed, or whose entry was
    /// written, each once, in no particular order.
    ///
    /// Snapshots of one trie share every subtree that no write touched in between, and the diff
    /// skips all of those: it walks the two tries in lock-step by hash and descends only where
    /// they differ, so it costs time proportional to the number of changes (times the depth,
    /// about `log32(len)`), not to the size — microseconds for a hundred changes in a trie of
    /// millions. It works between any two snapshots of one trie family (a trie, its writable
    /// and read-only snapshots, and theirs, in either order of age); for snapshots of unrelated
    /// tries it is still correct, by comparing every entry.
    ///
    /// A key written again in between is reported as [`DiffItem::Updated`] even if the new
    /// value equals the old one (compare `old` and `new` to filter those out); a key removed
    /// and re-inserted is `Updated` too.
    ///
    /// ```
    /// use ctrie::{Ctrie, DiffItem};
    ///
    /// let map: Ctrie<u32, &str> = (0..1000).map(|i| (i, "v")).collect();
    /// let before = map.read_only_snapshot();
    /// map.pin().insert(1, "w");
    /// map.pin().remove(&2);
    /// map.pin().insert(5000, "new");
    /// let after = map.read_only_snapshot();
    ///
    /// let mut changes: Vec<_> = before.diff(&after).collect();
    /// changes.sort_by_key(|d| *d.key());
    /// assert_eq!(changes, [
    ///     DiffItem::Updated { key: &1, old: &"v", new: &"w" },
    ///     DiffItem::Removed(&2, &"v"),
    ///     DiffItem::Added(&5000, &"new"),
    /// ]);
    /// ```
    pub fn diff<'a>(&'a self, newer: &'a Snapshot<K, V, S>) -> Diff<'a, K, V, S> {
        let how = if Arc::ptr_eq(&self.hasher, &newer.hasher) {
            How::Lockstep(RawDiff::new(&self.raw, &newer.raw))
        } else {
            How::Full {
                newer_phase: false,
                it: self.iter(),
            }
        };
        Diff {
            older: self,
            newer,
            how,
            _invariant: PhantomData,
        }
    }
}

impl<'a, K, V, S> Iterator for Diff<'a, K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    type Item = DiffItem<'a, K, V>;

    fn next(&mut self) -> Option<DiffItem<'a, K, V>> {
        let (older, newer) = (self.older, self.newer);
        match &mut self.how {
            How::Lockstep(raw) => {
                // SAFETY: `raw` walks these two read-only tries, borrowed for `'a`, which own
                // every S-node it returns (R4); they share their hasher, so they hash alike.
                let item = unsafe { raw.next(&older.raw, &newer.raw, &|a, b| a == b)? };
                // SAFETY: as above.
                Some(unsafe {
                    match item {
                        RawDiffItem::Added(s) => DiffItem::Added(&(*s).key, &(*s).value),
                        RawDiffItem::Removed(s) => DiffItem::Removed(&(*s).key, &(*s).value),
                        RawDiffItem::Updated(o, n) => DiffItem::Updated {
                            key: &(*n).key,
                            old: &(*o).value,
                            new: &(*n).value,
                        },
                    }
                })
            }
            How::Full { newer_phase, it } => loop {
                let Some((k, v)) = it.next() else {
                    if *newer_phase {
                        return None;
                    }
                    *newer_phase = true;
                    *it = newer.iter();
                    continue;
                };
                if *newer_phase {
                    if !older.contains_key(k) {
                        return Some(DiffItem::Added(k, v));
                    }
                    continue;
                }
                match newer.get_key_value(k) {
                    None => return Some(DiffItem::Removed(k, v)),
                    Some((_, nv)) if ptr::eq(v, nv) => {}
                    Some((nk, nv)) => {
                        return Some(DiffItem::Updated {
                            key: nk,
                            old: v,
                            new: nv,
                        })
                    }
                }
            },
        }
    }
}

impl<K, V, S> fmt::Debug for Diff<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Diff").finish_non_exhaustive()
    }
}

impl<K, V, S> PartialEq for Snapshot<K, V, S>
where
    K: Hash + Eq,
    V: PartialEq,
    S: BuildHasher,
{
    /// Whether the two snapshots hold the same entries (keys by `Eq`, values by `PartialEq`).
    /// Built on [`Snapshot::diff`], so comparing snapshots of one trie costs time proportional
    /// to how much they differ: subtrees they share are never visited.
    ///
    /// ```
    /// let map: ctrie::Ctrie<u32, u32> = (0..100).map(|i| (i, i)).collect();
    /// let a = map.read_only_snapshot();
    /// map.pin().insert(7, 70);
    /// assert_ne!(a, map.read_only_snapshot());
    /// map.pin().insert(7, 7); // a new entry, but an equal value
    /// assert_eq!(a, map.read_only_snapshot());
    /// ```
    fn eq(&self, other: &Self) -> bool {
        self.diff(other)
            .all(|d| matches!(d, DiffItem::Updated { old, new, .. } if old == new))
    }
}

impl<K: Hash + Eq, V: Eq, S: BuildHasher> Eq for Snapshot<K, V, S> {}

impl<K, V, S> PartialEq for Ctrie<K, V, S>
where
    K: Hash + Eq,
    V: PartialEq,
    S: BuildHasher,
{
    /// Compares read-only snapshots of the two tries (see [`Snapshot`]'s `PartialEq`), each taken
    /// at one instant.
    fn eq(&self, other: &Self) -> bool {
        self.read_only_snapshot() == other.read_only_snapshot()
    }
}

impl<K: Hash + Eq, V: Eq, S: BuildHasher> Eq for Ctrie<K, V, S> {}
