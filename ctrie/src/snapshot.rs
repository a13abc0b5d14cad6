//! [`Snapshot`]: an immutable, O(1) view of a [`Ctrie`] at one instant.

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use std::collections::hash_map::RandomState;

use crate::iter::{IntoIter, Iter, Keys, Values};
use crate::map::Ctrie;
use crate::raw::node::SNode;
use crate::raw::{Invariant, RawCtrie};
use crate::sync::Arc;

/// A read-only snapshot of a [`Ctrie`], from [`Ctrie::read_only_snapshot`].
///
/// Immutable by type: it has no mutators. Taking one, cloning one and turning one into a
/// writable trie ([`Snapshot::snapshot`]) are O(1). It shares its nodes with the trie; the trie
/// copies what it writes afterwards, so the snapshot never changes.
///
/// Lookups and iteration need no guard: what they return lives as long as the borrow of the
/// snapshot, and they pin the epoch only briefly while reading, so a long-lived snapshot holds
/// back the reclamation of nothing but the nodes it shares.
///
/// # Examples
/// ```
/// use ctrie::Ctrie;
///
/// let map: Ctrie<u32, &str> = (0..3).map(|i| (i, "x")).collect();
/// let snap = map.read_only_snapshot();
/// map.pin().insert(7, "y");
/// assert_eq!(snap.len(), 3);
/// let mut keys: Vec<_> = snap.iter().map(|(k, _)| *k).collect();
/// keys.sort();
/// assert_eq!(keys, [0, 1, 2]);
/// ```
pub struct Snapshot<K, V, S = RandomState> {
    pub(crate) raw: RawCtrie<K, V>,
    pub(crate) hasher: Arc<S>,
    /// Owns keys and values (for drop check) and is invariant in them: [`Snapshot::snapshot`]
    /// turns it into a writable trie (see `raw::Invariant`).
    _owns: PhantomData<(K, V)>,
    _invariant: Invariant<K, V>,
}

// SAFETY: as for `Ctrie`: keys and values are shared across threads and may be dropped on any.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Send + Sync> Send for Snapshot<K, V, S> {}
// SAFETY: see `Send`.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Send + Sync> Sync for Snapshot<K, V, S> {}

impl<K, V, S> Snapshot<K, V, S> {
    pub(crate) fn from_raw(raw: RawCtrie<K, V>, hasher: Arc<S>) -> Self {
        debug_assert!(raw.read_only);
        Snapshot {
            raw,
            hasher,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// The number of entries. Counted once, then cached (sizes are cached in the shared nodes,
    /// so counting a snapshot of a trie that changed little since the last count is cheap).
    pub fn len(&self) -> usize {
        self.raw.size()
    }

    /// Whether the snapshot is empty (stops at the first entry found).
    pub fn is_empty(&self) -> bool {
        self.raw.is_empty_frozen()
    }

    /// Iterates over the entries, in hash order.
    pub fn iter(&self) -> Iter<'_, K, V> {
        Iter::borrowed(&self.raw)
    }

    /// The keys, in hash order.
    pub fn keys(&self) -> Keys<'_, K, V> {
        self.iter().keys()
    }

    /// The values, in the keys' hash order.
    pub fn values(&self) -> Values<'_, K, V> {
        self.iter().values()
    }

    /// A new writable trie with this snapshot's contents, in O(1).
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// map.pin().insert(1, 1);
    /// let copy = map.read_only_snapshot().snapshot();
    /// copy.pin().insert(2, 2);
    /// assert_eq!((map.len(), copy.len()), (1, 2));
    /// ```
    pub fn snapshot(&self) -> Ctrie<K, V, S> {
        Ctrie::from_raw(self.raw.snapshot(), self.hasher.clone())
    }

    /// The hasher.
    pub fn hasher(&self) -> &S {
        &self.hasher
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> Snapshot<K, V, S> {
    fn lookup<Q>(&self, key: &Q) -> Option<&SNode<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let hash = self.hasher.hash_one(key);
        let guard = &crossbeam_epoch::pin();
        // SAFETY: pinned for the walk; the S-node found is owned by this snapshot's frozen
        // structure (R4), so it lives as long as `self` is borrowed.
        unsafe {
            self.raw
                .lookup(hash, &|k: &K| k.borrow() == key, guard)
                .map(|s| &*s)
        }
    }

    /// The value for `key`.
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key).map(|s| &s.value)
    }

    /// The stored key and value for `key`.
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key).map(|s| (&s.key, &s.value))
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key).is_some()
    }
}

impl<K, V, S> Clone for Snapshot<K, V, S> {
    /// O(1): another handle on the same frozen root.
    fn clone(&self) -> Self {
        Snapshot::from_raw(self.raw.clone_read_only(), self.hasher.clone())
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for Snapshot<K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl<'a, K, V, S> IntoIterator for &'a Snapshot<K, V, S> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<K: Clone, V: Clone, S> IntoIterator for Snapshot<K, V, S> {
    type Item = (K, V);
    type IntoIter = IntoIter<K, V>;
    /// Iterates over clones of the entries (see [`IntoIter`] for why they must be clones).
    ///
    /// ```
    /// let map: ctrie::Ctrie<u8, String> = [(1, "one".to_string())].into_iter().collect();
    /// let owned: Vec<(u8, String)> = map.read_only_snapshot().into_iter().collect();
    /// assert_eq!(owned, [(1, "one".to_string())]);
    /// ```
    fn into_iter(self) -> IntoIter<K, V> {
        IntoIter::new(self.raw)
    }
}
