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
