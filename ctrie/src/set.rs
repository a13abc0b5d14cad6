//! [`CtrieSet`]: a concurrent set with O(1) snapshots, over the same trie as [`Ctrie`] (each
//! element is a key with a `()` value, as papaya's `HashSet` reuses its raw map).

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use std::collections::hash_map::RandomState;

use crossbeam_epoch::Guard;

use crate::diff::DiffItem;
use crate::iter::Keys;
use crate::map::{Ctrie, CtrieRef};
use crate::snapshot::Snapshot;

/// A lock-free concurrent hash set with O(1) snapshots: a [`Ctrie`] of elements to `()`, with
/// the same guarantees (every operation linearizable, `len` exact, iteration over a consistent
/// snapshot).
///
/// ```
/// use ctrie::CtrieSet;
///
/// let set = CtrieSet::new();
/// let s = set.pin();
/// assert!(s.insert("apple"));
/// assert!(!s.insert("apple"));
/// let frozen = set.read_only_snapshot();
/// s.remove("apple");
/// assert!(frozen.contains("apple") && !s.contains("apple"));
/// ```
pub struct CtrieSet<T, S = RandomState> {
    map: Ctrie<T, (), S>,
}

impl<T: 'static> CtrieSet<T, RandomState> {
    /// An empty set with the default hasher.
    pub fn new() -> Self {
        CtrieSet { map: Ctrie::new() }
    }
}

impl<T: 'static, S> CtrieSet<T, S> {
    /// An empty set hashing elements with `hash_builder`.
    pub fn with_hasher(hash_builder: S) -> Self {
        CtrieSet {
            map: Ctrie::with_hasher(hash_builder),
        }
    }
}

impl<T, S> CtrieSet<T, S> {
    /// The hasher.
    pub fn hasher(&self) -> &S {
        self.map.hasher()
    }

    /// Pins the current thread, for the guard-explicit methods.
    pub fn guard(&self) -> Guard {
        self.map.guard()
    }

    /// A handle whose methods need no guard argument (it holds one).
    pub fn pin(&self) -> CtrieSetRef<'_, T, S> {
        CtrieSetRef {
            map: self.map.pin(),
        }
    }

    /// An O(1) writable snapshot (also `clone()`); see [`Ctrie::snapshot`].
    pub fn snapshot(&self) -> CtrieSet<T, S> {
        CtrieSet {
            map: self.map.snapshot(),
        }
    }

    /// An O(1) read-only snapshot; see [`Ctrie::read_only_snapshot`].
    pub fn read_only_snapshot(&self) -> SetSnapshot<T, S> {
        SetSnapshot {
            map: self.map.read_only_snapshot(),
        }
    }

    /// Removes every element, atomically.
    pub fn clear(&self) {
        self.map.clear()
    }

    /// The number of elements, exactly, at one instant (see [`Ctrie::len`]).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the set is empty, at one instant.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterates over a read-only snapshot taken now.
    pub fn iter<'g>(&'g self, guard: &'g Guard) -> SetIter<'g, T> {
        SetIter {
            keys: self.map.keys(guard),
        }
    }
}

impl<T: Hash + Eq, S: BuildHasher> CtrieSet<T, S> {
    /// Adds `value` if absent; returns whether it did (an equal element already present is
    /// kept, as `std`'s `HashSet::insert` does).
    pub fn insert(&self, value: T, guard: &Guard) -> bool {
        self.map.insert_if_absent(value, (), guard).is_none()
    }

    /// Whether `value` is in the set.
    pub fn contains<Q>(&self, value: &Q, guard: &Guard) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(value, guard)
    }

    /// The stored element equal to `value`.
    pub fn get<'g, Q>(&'g self, value: &Q, guard: &'g Guard) -> Option<&'g T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(value, guard).map(|(k, _)| k)
    }

    /// Removes `value`; returns whether it was present.
    pub fn remove<Q>(&self, value: &Q, guard: &Guard) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(value, guard).is_some()
    }

    /// Removes every element for which `keep` is false; see [`Ctrie::retain`] for what is and
    /// is not atomic.
    pub fn retain<F: FnMut(&T) -> bool>(&self, mut keep: F, guard: &Guard) {
        self.map.retain(|k, _| keep(k), guard)
    }
}

/// A [`CtrieSet`] with a guard bundled in, from [`CtrieSet::pin`].
pub struct CtrieSetRef<'c, T, S = RandomState> {
    map: CtrieRef<'c, T, (), S>,
}

impl<T, S> CtrieSetRef<'_, T, S> {
    /// See [`CtrieSet::iter`].
    pub fn iter(&self) -> SetIter<'_, T> {
        SetIter {
            keys: self.map.keys(),
        }
    }

    /// See [`CtrieSet::len`].
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// See [`CtrieSet::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// See [`CtrieSet::clear`].
    pub fn clear(&self) {
        self.map.clear()
    }
}

impl<T: Hash + Eq, S: BuildHasher> CtrieSetRef<'_, T, S> {
    /// See [`CtrieSet::insert`].
    pub fn insert(&self, value: T) -> bool {
        self.map.insert_if_absent(value, ()).is_none()
    }

    /// See [`CtrieSet::contains`].
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(value)
    }

    /// See [`CtrieSet::get`].
    pub fn get<Q>(&self, value: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(value).map(|(k, _)| k)
    }

    /// See [`CtrieSet::remove`].
    pub fn remove<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(value).is_some()
    }

    /// See [`CtrieSet::retain`].
    pub fn retain<F: FnMut(&T) -> bool>(&self, mut keep: F) {
        self.map.retain(|k, _| keep(k))
    }
}

/// A read-only snapshot of a [`CtrieSet`], from [`CtrieSet::read_only_snapshot`]: immutable,
/// readable without a guard, O(1) to take and to clone.
pub struct SetSnapshot<T, S = RandomState> {
    pub(crate) map: Snapshot<T, (), S>,
}

impl<T, S> SetSnapshot<T, S> {
    /// The number of elements (counted once, then cached).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the snapshot is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Iterates over the elements, in hash order.
    pub fn iter(&self) -> SetIter<'_, T> {
        SetIter {
            keys: self.map.keys(),
        }
    }

    /// A new writable set with this snapshot's contents, in O(1).
    pub fn snapshot(&self) -> CtrieSet<T, S> {
        CtrieSet {
            map: self.map.snapshot(),
        }
    }
}

impl<T: Hash + Eq, S: BuildHasher> SetSnapshot<T, S> {
    /// Whether `value` is in the snapshot.
    pub fn contains<Q>(&self, value: &Q) -> bool
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(value)
    }

    /// The stored element equal to `value`.
    pub fn get<Q>(&self, value: &Q) -> Option<&T>
    where
        T: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(value).map(|(k, _)| k)
    }

    /// The elements added (`Ok`) and removed (`Err`) from this snapshot to `newer`, in time
    /// proportional to the change (see [`Snapshot::diff`]).
    ///
    /// ```
    /// let set: ctrie::CtrieSet<u32> = (0..100).collect();
    /// let before = set.read_only_snapshot();
    /// set.pin().insert(500);
    /// set.pin().remove(&7);
    /// let after = set.read_only_snapshot();
    /// let mut d: Vec<_> = before.diff(&after).collect();
    /// d.sort();
    /// assert_eq!(d, [Ok(&500), Err(&7)]);
    /// ```
    pub fn diff<'a>(
        &'a self,
        newer: &'a SetSnapshot<T, S>,
    ) -> impl Iterator<Item = Result<&'a T, &'a T>> + 'a {
        self.map.diff(&newer.map).filter_map(|d| match d {
            DiffItem::Added(k, _) => Some(Ok(k)),
            DiffItem::Removed(k, _) => Some(Err(k)),
            // Removed and inserted again in between: still an element.
            DiffItem::Updated { .. } => None,
        })
    }
}

/// An iterator over the elements of a read-only snapshot of a [`CtrieSet`].
pub struct SetIter<'a, T> {
    keys: Keys<'a, T, ()>,
}

impl<'a, T> Iterator for SetIter<'a, T> {
    type Item = &'a T;
    fn next(&mut self) -> Option<&'a T> {
        self.keys.next()
    }
}

impl<T> fmt::Debug for SetIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetIter").finish_non_exhaustive()
    }
}

impl<'a, T, S> IntoIterator for &'a SetSnapshot<T, S> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;
    fn into_iter(self) -> SetIter<'a, T> {
        self.iter()
    }
}

impl<'a, T, S> IntoIterator for &'a CtrieSetRef<'_, T, S> {
    type Item = &'a T;
    type IntoIter = SetIter<'a, T>;
    fn into_iter(self) -> SetIter<'a, T> {
        self.iter()
    }
}

impl<T: 'static, S: Default> Default for CtrieSet<T, S> {
    fn default() -> Self {
        CtrieSet {
            map: Ctrie::default(),
        }
    }
}

impl<T, S> Clone for CtrieSet<T, S> {
    /// An O(1) writable snapshot.
    fn clone(&self) -> Self {
        self.snapshot()
    }
}

impl<T, S> Clone for SetSnapshot<T, S> {
    fn clone(&self) -> Self {
        SetSnapshot {
            map: self.map.clone(),
        }
    }
}

impl<T: Hash + Eq, S: BuildHasher> Extend<T> for &CtrieSet<T, S> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        let s = self.pin();
        for v in iter {
            s.insert(v);
        }
    }
}

impl<T: Hash + Eq, S: BuildHasher> Extend<T> for CtrieSet<T, S> {
    fn extend<I: IntoIterator<Item = T>>(&mut self, iter: I) {
        (&*self).extend(iter)
    }
}

impl<T: Hash + Eq + 'static, S: BuildHasher + Default> FromIterator<T> for CtrieSet<T, S> {
    fn from_iter<I: IntoIterator<Item = T>>(iter: I) -> Self {
        let mut set = Self::default();
        set.extend(iter);
        set
    }
}

impl<T: Hash + Eq, S: BuildHasher> PartialEq for SetSnapshot<T, S> {
    /// Same elements; fast for snapshots of one set (see [`Snapshot`]'s `PartialEq`).
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<T: Hash + Eq, S: BuildHasher> Eq for SetSnapshot<T, S> {}

impl<T: Hash + Eq, S: BuildHasher> PartialEq for CtrieSet<T, S> {
    /// Compares read-only snapshots of the two sets.
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}

impl<T: Hash + Eq, S: BuildHasher> Eq for CtrieSet<T, S> {}

impl<T: fmt::Debug, S> fmt::Debug for CtrieSet<T, S> {
    /// Formats a read-only snapshot of the elements.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.read_only_snapshot(), f)
    }
}

impl<T: fmt::Debug, S> fmt::Debug for SetSnapshot<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl<T: fmt::Debug, S> fmt::Debug for CtrieSetRef<'_, T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}
