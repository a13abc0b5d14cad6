//! [`Iter`]: a pull iterator over a read-only snapshot.

use core::fmt;
use core::marker::PhantomData;

use crate::raw::iter::RawIter;
use crate::raw::{Invariant, RawCtrie};

/// An iterator over the entries of a read-only snapshot, from [`Snapshot::iter`] or
/// [`Ctrie::iter`] (which takes the snapshot itself).
///
/// Pull-based and lock-free: it never blocks writers, yields every entry of the snapshot exactly
/// once (tombed and collision-list entries included) and nothing written after the snapshot.
///
/// [`Snapshot::iter`]: crate::Snapshot::iter
/// [`Ctrie::iter`]: crate::Ctrie::iter
pub struct Iter<'a, K, V> {
    trie: Trie<'a, K, V>,
    raw: RawIter<K, V>,
    _items: PhantomData<(&'a K, &'a V)>,
    /// Invariant in `K` and `V`, like the snapshot it may own (see `raw::Invariant`), so that
    /// no type built from it can be used to put shorter-lived keys or values into a trie.
    _invariant: Invariant<K, V>,
}

enum Trie<'a, K, V> {
    Borrowed(&'a RawCtrie<K, V>),
    /// Taken by `Ctrie::iter`; its entries live for `'a` because `'a` is a guard's lifetime.
    Owned(RawCtrie<K, V>),
}

// SAFETY: the iterator hands out `&K`/`&V` (needs `Sync`) and may own a snapshot, whose drop can
// release keys and values on this thread (needs `Send`).
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Iter<'_, K, V> {}
// SAFETY: `&Iter` gives access to nothing.
unsafe impl<K: Sync, V: Sync> Sync for Iter<'_, K, V> {}

impl<'a, K, V> Iter<'a, K, V> {
    pub(crate) fn borrowed(trie: &'a RawCtrie<K, V>) -> Self {
        Iter {
            raw: RawIter::new(trie),
            trie: Trie::Borrowed(trie),
            _items: PhantomData,
            _invariant: PhantomData,
        }
    }

    pub(crate) fn owned(trie: RawCtrie<K, V>) -> Self {
        Iter {
            raw: RawIter::new(&trie),
            trie: Trie::Owned(trie),
            _items: PhantomData,
            _invariant: PhantomData,
        }
    }

    fn trie(&self) -> &RawCtrie<K, V> {
        match &self.trie {
            Trie::Borrowed(t) => t,
            Trie::Owned(t) => t,
        }
    }
}

impl<'a, K, V> Iterator for Iter<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn next(&mut self) -> Option<(&'a K, &'a V)> {
        let trie: *const RawCtrie<K, V> = self.trie();
        // SAFETY: `raw` walks `trie`, which is alive for `'a`: borrowed for `'a`, or owned by
        // this iterator, in which case `'a` is the lifetime of a guard that keeps the S-nodes
        // allocated after the iterator drops the snapshot (R1).
        unsafe { self.raw.next(&*trie).map(|s| (&(*s).key, &(*s).value)) }
    }
}

impl<K, V> fmt::Debug for Iter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iter").finish_non_exhaustive()
    }
}

impl<'a, K, V> Iter<'a, K, V> {
    /// The keys only.
    pub fn keys(self) -> Keys<'a, K, V> {
        Keys { inner: self }
    }

    /// The values only.
    pub fn values(self) -> Values<'a, K, V> {
        Values { inner: self }
    }
}

/// An iterator over the keys of a read-only snapshot, from `keys()` on [`Snapshot`],
/// [`CtrieRef`], [`Ctrie`] or [`Iter`]; see [`Iter`] for what it yields.
///
/// [`Snapshot`]: crate::Snapshot
/// [`CtrieRef`]: crate::CtrieRef
/// [`Ctrie`]: crate::Ctrie
pub struct Keys<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Iterator for Keys<'a, K, V> {
    type Item = &'a K;
    fn next(&mut self) -> Option<&'a K> {
        self.inner.next().map(|(k, _)| k)
    }
}

impl<K, V> fmt::Debug for Keys<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keys").finish_non_exhaustive()
    }
}

/// An iterator over the values of a read-only snapshot, from `values()` on [`Snapshot`],
/// [`CtrieRef`], [`Ctrie`] or [`Iter`]; see [`Iter`] for what it yields.
///
/// [`Snapshot`]: crate::Snapshot
/// [`CtrieRef`]: crate::CtrieRef
/// [`Ctrie`]: crate::Ctrie
pub struct Values<'a, K, V> {
    inner: Iter<'a, K, V>,
}

impl<'a, K, V> Iterator for Values<'a, K, V> {
    type Item = &'a V;
    fn next(&mut self) -> Option<&'a V> {
        self.inner.next().map(|(_, v)| v)
    }
}

impl<K, V> fmt::Debug for Values<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Values").finish_non_exhaustive()
    }
}

/// An iterator that owns a read-only snapshot and yields clones of its entries, from
/// `Snapshot::into_iter` (by value).
///
/// Entries are shared with the trie and with every other snapshot that holds them, so none can
/// be moved out of a snapshot: hence clones (`Bytes`, `Arc` and the like clone cheaply). Borrow
/// instead (`&snapshot` iterates `(&K, &V)`) to avoid them.
pub struct IntoIter<K, V> {
    trie: RawCtrie<K, V>,
    raw: RawIter<K, V>,
    _invariant: Invariant<K, V>,
}

// SAFETY: as `Iter` with an owned snapshot: it clones `K`/`V` out of shared entries (needs
// `Sync`) and drops the snapshot, possibly releasing keys and values, on its thread (`Send`).
unsafe impl<K: Send + Sync, V: Send + Sync> Send for IntoIter<K, V> {}
// SAFETY: `&IntoIter` gives access to nothing.
unsafe impl<K: Sync, V: Sync> Sync for IntoIter<K, V> {}

impl<K, V> IntoIter<K, V> {
    pub(crate) fn new(trie: RawCtrie<K, V>) -> Self {
        IntoIter {
            raw: RawIter::new(&trie),
            trie,
            _invariant: PhantomData,
        }
    }
}

impl<K: Clone, V: Clone> Iterator for IntoIter<K, V> {
    type Item = (K, V);

    fn next(&mut self) -> Option<(K, V)> {
        // SAFETY: `raw` walks `trie`, which this iterator owns; the entries are cloned while the
        // trie holds them.
        unsafe {
            self.raw
                .next(&self.trie)
                .map(|s| ((*s).key.clone(), (*s).value.clone()))
        }
    }
}

impl<K, V> fmt::Debug for IntoIter<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntoIter").finish_non_exhaustive()
    }
}
