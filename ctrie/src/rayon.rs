//! `rayon` support (the `rayon` feature): parallel iteration over a [`Snapshot`] (and a
//! [`SetSnapshot`]), split by subtrees of the trie.
//!
//! A snapshot is frozen, so the parallel iteration is consistent by construction: it yields
//! exactly the entries the sequential [`Snapshot::iter`] yields (each once), and in the same
//! order wherever rayon keeps order (`collect` into a `Vec`).
//!
//! ```
//! # #[cfg(feature = "rayon")] {
//! use rayon::prelude::*;
//!
//! let map: ctrie::Ctrie<u64, u64> = (0..1_000).map(|i| (i, i)).collect();
//! let snap = map.read_only_snapshot();
//! let total: u64 = snap.par_iter().map(|(_, v)| *v).sum();
//! assert_eq!(total, (0..1_000).sum());
//! # }
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::ops::ControlFlow;

use rayon::iter::plumbing::{bridge_unindexed, Folder, UnindexedConsumer, UnindexedProducer};
use rayon::iter::{IntoParallelIterator, ParallelIterator};

use crate::raw::split::Pieces;
use crate::raw::Invariant;
use crate::set::SetSnapshot;
use crate::snapshot::Snapshot;

/// A parallel iterator over the entries of a [`Snapshot`], from `par_iter()` (rayon's
/// `IntoParallelRefIterator`).
pub struct ParIter<'a, K, V> {
    pieces: Pieces<'a, K, V>,
    _invariant: Invariant<K, V>,
}

impl<'a, K, V, S> IntoParallelIterator for &'a Snapshot<K, V, S>
where
    K: Send + Sync,
    V: Send + Sync,
{
    type Item = (&'a K, &'a V);
    type Iter = ParIter<'a, K, V>;
    fn into_par_iter(self) -> ParIter<'a, K, V> {
        ParIter {
            pieces: Pieces::whole(&self.raw),
            _invariant: PhantomData,
        }
    }
}

impl<'a, K: Send + Sync, V: Send + Sync> ParallelIterator for ParIter<'a, K, V> {
    type Item = (&'a K, &'a V);
    fn drive_unindexed<C: UnindexedConsumer<Self::Item>>(self, consumer: C) -> C::Result {
        bridge_unindexed(Producer(self.pieces), consumer)
    }
}

struct Producer<'a, K, V>(Pieces<'a, K, V>);

impl<'a, K: Send + Sync, V: Send + Sync> UnindexedProducer for Producer<'a, K, V> {
    type Item = (&'a K, &'a V);

    fn split(self) -> (Self, Option<Self>) {
        let (a, b) = self.0.split();
        (Producer(a), b.map(Producer))
    }

    fn fold_with<F: Folder<Self::Item>>(self, folder: F) -> F {
        self.0.fold(folder, &mut |folder, item| {
            let folder = folder.consume(item);
            if folder.full() {
                ControlFlow::Break(folder)
            } else {
                ControlFlow::Continue(folder)
            }
        })
    }
}

impl<K, V> fmt::Debug for ParIter<'_, K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParIter").finish_non_exhaustive()
    }
}

/// A parallel iterator over the elements of a [`SetSnapshot`], from `par_iter()`.
pub struct SetParIter<'a, T> {
    inner: ParIter<'a, T, ()>,
}

impl<'a, T: Send + Sync, S> IntoParallelIterator for &'a SetSnapshot<T, S> {
    type Item = &'a T;
    type Iter = SetParIter<'a, T>;
    fn into_par_iter(self) -> SetParIter<'a, T> {
        SetParIter {
            inner: (&self.map).into_par_iter(),
        }
    }
}

impl<'a, T: Send + Sync> ParallelIterator for SetParIter<'a, T> {
    type Item = &'a T;
    fn drive_unindexed<C: UnindexedConsumer<Self::Item>>(self, consumer: C) -> C::Result {
        self.inner.map(|(k, _)| k).drive_unindexed(consumer)
    }
}

impl<T> fmt::Debug for SetParIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetParIter").finish_non_exhaustive()
    }
}
