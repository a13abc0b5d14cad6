//! A lock-free concurrent hash trie with O(1) snapshots: a faithful implementation of the
//! Ctrie of Prokopec, Bronson, Bagwell and Odersky, "Concurrent Tries with Efficient
//! Non-Blocking Snapshots" (PPoPP 2012), with memory reclamation on crossbeam-epoch.
//!
//! * [`Ctrie`]: any number of threads read and write through `&Ctrie`; every operation is
//!   lock-free and linearizable.
//! * [`Ctrie::read_only_snapshot`] returns a [`Snapshot`] in O(1): an immutable view of the whole
//!   map at one instant, readable without a guard, for as long as you keep it.
//! * [`Ctrie::snapshot`] (also `clone`) returns an independent writable copy in O(1).
//! * [`Ctrie::len`] is exact and linearizable (counted on a snapshot, with sizes cached in the
//!   nodes snapshots share), and [`Ctrie::iter`] walks a consistent snapshot.
//!
//! * [`Snapshot::diff`] lists what changed between two snapshots in time proportional to the
//!   change, not the size (snapshots share every subtree no write touched, and the diff skips
//!   them); `==` on snapshots and tries is built on it.
//! * Atomic read-modify-write of one key: [`Ctrie::compute`] (papaya's shape: the closure sees
//!   the current entry and returns an [`Operation`]; the result says what happened, a
//!   [`Compute`]), [`Ctrie::update`], [`Ctrie::update_or_insert_with`]; and [`Ctrie::retain`].
//! * [`CtrieSet`], the set over the same trie, with its own snapshots.
//! * Features: `serde` (maps and sets serialize from one snapshot, deserialize into a new trie)
//!   and `rayon` (`par_iter()` on a [`Snapshot`] or a [`SetSnapshot`], split by subtrees).
//!
//! The package is published as `lockfree-ctrie`; the library is `ctrie`:
//! `ctrie = { package = "lockfree-ctrie", version = "0.1" }`.
//!
//! # Consistency
//! * `snapshot()` / `read_only_snapshot()`: linearizable; the snapshot holds exactly the writes
//!   that completed before it and none of those that start after it, and writes concurrent with
//!   it are either wholly in or wholly out.
//! * `iter()`: every entry of a read-only snapshot taken when `iter` is called, exactly once.
//! * `len()` / `is_empty()`: the exact count (emptiness) at one instant.
//!
//! # Example
//! ```
//! use ctrie::Ctrie;
//! use std::thread;
//!
//! let map = Ctrie::new();
//! thread::scope(|s| {
//!     for t in 0..4u64 {
//!         let map = &map;
//!         s.spawn(move || {
//!             let m = map.pin();
//!             for i in 0..100 {
//!                 m.insert(t * 100 + i, i);
//!             }
//!         });
//!     }
//! });
//! assert_eq!(map.len(), 400);
//! let snap = map.read_only_snapshot();
//! map.clear();
//! assert_eq!((snap.len(), map.len()), (400, 0));
//! ```
//!
//! # What changed, and atomic updates
//! ```
//! use ctrie::{Ctrie, DiffItem};
//!
//! let stock: Ctrie<&str, u32> = [("apple", 3), ("pear", 5), ("plum", 0)].into_iter().collect();
//! let monday = stock.read_only_snapshot();
//! let s = stock.pin();
//! s.update_or_insert_with("apple", |n| n + 1, || 1);   // atomic per key
//! s.update_or_insert_with("fig", |n| n + 1, || 1);
//! s.retain(|_, n| *n > 0);                               // removes plum
//! let tuesday = stock.read_only_snapshot();
//!
//! let mut changes: Vec<_> = monday.diff(&tuesday).collect();
//! changes.sort_by_key(|d| *d.key());
//! assert_eq!(changes, [
//!     DiffItem::Updated { key: &"apple", old: &3, new: &4 },
//!     DiffItem::Added(&"fig", &1),
//!     DiffItem::Removed(&"plum", &0),
//! ]);
//! assert!(monday != tuesday);
//! ```
//!
//! # Performance
//! Snapshots are O(1) whatever the size (a few hundred nanoseconds at 1M keys with a writer
//! running flat out, with mimalloc; 0.8 µs with glibc's allocator and a writer at 30,000 writes
//! per second; what grows with size and write rate is reclaiming the paths that writes copy
//! after each snapshot), and writers scale across threads. Single-key operations pay for
//! that: every level of the trie is an I-node pointing to a C-node, so a lookup at 1M keys
//! follows about four dependent pointers, and a write copies the C-node it changes. At 1M keys
//! a lookup is several times slower than in a flat concurrent table such as papaya or
//! dashmap. Nodes are small separate allocations, freed on whichever thread reclaims them, so an
//! allocator with cheap cross-thread frees (mimalloc) helps ctrie more than it helps flat
//! tables. Lookups in a large trie also pay TLB misses: backing the heap with transparent huge
//! pages (with glibc, `GLIBC_TUNABLES=glibc.malloc.hugetlb=1`) made them ~30% faster at 1M keys.
//! Numbers and method: `BENCHMARKS.md` at the repository root.
//!
//! # Panics in user code
//! If a key's `Hash` or `Eq`, a value's `PartialEq`, a predicate (`insert_unless`) or an entry
//! builder (`get_or_insert_with`, `insert_unless`) panics, the operation unwinds having changed
//! nothing, the key and value it was given are dropped, and the trie stays fully usable (see
//! `tests/panics.rs`). Keys and values are dropped on whichever thread reclaims them, so a
//! panicking `Drop` would unwind there: do not panic in their destructors.
//!
//! # Thread safety
//! `Ctrie`, `Snapshot`, `CtrieSet` and the iterators are `Send + Sync` exactly when the keys, values (and hasher)
//! are: entries are shared between threads and dropped on whichever thread reclaims them.
//! ```
//! fn send_sync<T: Send + Sync>() {}
//! send_sync::<ctrie::Ctrie<String, Vec<u8>>>();
//! send_sync::<ctrie::Snapshot<String, Vec<u8>>>();
//! send_sync::<ctrie::Iter<'static, String, Vec<u8>>>();
//! ```
//! ```compile_fail
//! fn send<T: Send>() {}
//! send::<ctrie::Ctrie<std::rc::Rc<u8>, u8>>();
//! ```
//! ```compile_fail
//! fn send<T: Send>() {}
//! send::<ctrie::Snapshot<u8, std::cell::Cell<u8>>>(); // values are shared: they must be Sync
//! ```
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod compute;
mod diff;
mod iter;
mod map;
mod raw;
#[cfg(feature = "rayon")]
mod rayon;
#[cfg(feature = "serde")]
mod serde;
mod set;
mod snapshot;
mod sync;

pub use crate::compute::{Compute, Operation};
pub use crate::diff::{Diff, DiffItem};
pub use crate::iter::{IntoIter, Iter, Keys, Values};
pub use crate::map::{Ctrie, CtrieRef};
#[cfg(feature = "rayon")]
pub use crate::rayon::{ParIter, SetParIter};
pub use crate::set::{CtrieSet, CtrieSetRef, SetIter, SetSnapshot};
pub use crate::snapshot::Snapshot;
pub use crossbeam_epoch::{pin, Guard};

/// Test support, debug builds only (not part of the API): the debug oracle's census of nodes
/// allocated per kind (I-, C-, T-, L-, S-nodes), nodes reachable from some trie, snapshot or
/// fork, and eras allocated. See `tests/garbage.rs`.
#[cfg(debug_assertions)]
#[doc(hidden)]
pub fn __census() -> ([usize; 5], usize, usize) {
    raw::shadow::census()
}

/// Test support, debug builds only (not part of the API): how many of ctrie's deferred functions
/// are queued and have not run yet (tests flush the epoch until there are none).
#[cfg(debug_assertions)]
#[doc(hidden)]
pub fn __deferred() -> usize {
    raw::shadow::deferred()
}
