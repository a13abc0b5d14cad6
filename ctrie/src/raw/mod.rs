//! The unsafe core: a Ctrie over raw nodes, parameterised by precomputed hashes and key
//! comparison closures. The safe facade (`map.rs`, `snapshot.rs`) owns the hasher.
//!
//! Layout of the core, one concern per file:
//! * `node.rs`: node types and their allocation;
//! * `reclaim.rs`: reference counts, deferred frees, and the ownership bookkeeping of a write
//!   (the reclamation scheme and why it is sound are documented there);
//! * `gcas.rs`, `rdcss.rs`: the two synchronisation primitives of the paper;
//! * `build.rs`: pure constructions of new nodes from old ones (insertedAt, updatedAt,
//!   removedAt, renewed, toCompressed, toContracted, dual, L-node updates);
//! * `ops.rs`: lookup, insert, remove, clean and cleanParent;
//! * `iter.rs`: iteration and (cached) size over read-only snapshots.
//!
//! A [`RawCtrie`] is either *writable* (the live trie or a writable snapshot) or *read-only*
//! (a read-only snapshot, whose root never changes).

pub(crate) mod build;
pub(crate) mod gcas;
#[cfg(test)]
mod inspect;
pub(crate) mod iter;
pub(crate) mod node;
pub(crate) mod ops;
pub(crate) mod rdcss;
pub(crate) mod reclaim;

use core::marker::PhantomData;

use crossbeam_epoch::Guard;

use self::node::{CNode, INode, Main};
use self::reclaim::{acquire, release_later, release_now, Edge};
use crate::sync::{next_generation, AtomicPtr, Ordering};

/// The variance marker of every type that stores `K`/`V` into shared state or hands them out of
/// it: *invariant* in both. Writes take `K`/`V` through `&self` (`insert(&self, ..)`) and their
/// destructors run later, deferred through the epoch, so a trie of `&'static str` must never be
/// usable as a trie of `&'a str` (which would let a short-lived key in, to be read as `'static`
/// later), nor a trie of `D<'static>` as one of `D<'a>` (whose deferred `Drop` would write
/// through a dead borrow). `fn(K, V) -> (K, V)` is invariant and, unlike `*mut`, says nothing
/// about `Send`/`Sync` (those are implemented by hand on the public types). `tests/ui/` pins
/// this with compile-fail tests.
pub(crate) type Invariant<K, V> = PhantomData<fn(K, V) -> (K, V)>;

/// A Ctrie root: the root pointer (an I-node, or an RDCSS descriptor tagged with bit 0) and
/// whether the trie is read-only. Owns one reference to its root I-node.
pub(crate) struct RawCtrie<K, V> {
    pub(crate) root: AtomicPtr<u8>,
    pub(crate) read_only: bool,
    /// Invariant in `K` and `V` (see [`Invariant`]); `*const` keeps it neither `Send` nor
    /// `Sync`, which the facade types decide.
    _marker: PhantomData<*const (K, V)>,
    _invariant: Invariant<K, V>,
}

impl<K, V> RawCtrie<K, V> {
    /// An empty writable trie in a fresh generation.
    pub(crate) fn new() -> Self {
        RawCtrie {
            root: AtomicPtr::new(Self::empty_root().cast()),
            read_only: false,
            _marker: PhantomData,
            _invariant: PhantomData,
        }
    }

    fn empty_root() -> *mut INode<K, V> {
        let gen = next_generation();
        INode::alloc(gen, CNode::alloc(0, |_| unreachable!("empty C-node")))
    }

    fn with_root(root: *mut INode<K, V>, read_only: bool) -> Self {
        RawCtrie {
            root: AtomicPtr::new(root.cast()),
            read_only,
            _marker: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// The root I-node of a read-only trie (which never changes).
    pub(crate) fn fixed_root(&self) -> *mut INode<K, V> {
        debug_assert!(self.read_only);
        // Relaxed: a read-only trie's root is set at construction and never changes.
        self.root.load(Ordering::Relaxed).cast()
    }

    /// Moves the root to a new generation and returns the previous root I-node, whose reference
    /// the caller now owns. Its committed main node is frozen from then on (see `reclaim.rs`,
    /// R4): this is the linearisation point of a snapshot.
    ///
    /// # Safety
    /// Pinned by `guard`.
    unsafe fn freeze_root(&self, guard: &Guard) -> *mut INode<K, V> {
        loop {
            // SAFETY: pinned; the root and its main are live while pinned.
            unsafe {
                let r = self.read_root(false, guard);
                let m = self.gcas_read(r, guard);
                // Speculative (R3): undone below unless the RDCSS publishes the new edge.
                acquire(&(*m).rc);
                let renewed = INode::alloc(next_generation(), m);
                if self.rdcss(r, m, renewed, guard) {
                    if cfg!(ctrie_mutant = "ro_snapshot_live_root") {
                        // Seeded bug (ci/mutants.sh): hand out the new live root, as the Go
                        // port once did, so the "snapshot" keeps changing.
                        acquire(&(*renewed).rc);
                        release_later(Edge::I(r), guard);
                        return renewed;
                    }
                    return r;
                }
                // Speculative and never published: released at once (R1).
                release_now(Edge::M(m));
                // Never published: the descriptor was aborted, so no one swung the root to it.
                INode::free_shell(renewed);
            }
        }
    }

    /// An O(1) read-only snapshot: the current root, frozen.
    pub(crate) fn read_only_snapshot(&self) -> RawCtrie<K, V> {
        if self.read_only {
            return self.clone_read_only();
        }
        let guard = &crossbeam_epoch::pin();
        // SAFETY: pinned.
        RawCtrie::with_root(unsafe { self.freeze_root(guard) }, true)
    }

    /// An O(1) writable snapshot: a new trie whose root shares the frozen root's main node.
    pub(crate) fn snapshot(&self) -> RawCtrie<K, V> {
        let guard = &crossbeam_epoch::pin();
        // SAFETY: pinned. We own `r` (from `freeze_root`, or our own edge for read-only tries),
        // so its main node is live and frozen while we add an edge to it.
        unsafe {
            let r = if self.read_only {
                let r = self.fixed_root();
                acquire(&(*r).rc);
                r
            } else {
                self.freeze_root(guard)
            };
            let m = self.gcas_read(r, guard);
            acquire(&(*m).rc);
            let root = INode::alloc(next_generation(), m);
            release_later(Edge::I(r), guard);
            RawCtrie::with_root(root, false)
        }
    }

    /// Another handle on the same read-only root.
    pub(crate) fn clone_read_only(&self) -> RawCtrie<K, V> {
        let r = self.fixed_root();
        // SAFETY: we own an edge to `r`, so it is live.
        acquire(unsafe { &(*r).rc });
        RawCtrie::with_root(r, true)
    }

    /// Atomically replaces the whole trie by an empty one in a new generation.
    pub(crate) fn clear(&self) {
        debug_assert!(!self.read_only);
        let guard = &crossbeam_epoch::pin();
        let fresh = Self::empty_root();
        loop {
            // SAFETY: pinned; on success the old root's reference passes to us and we drop it.
            unsafe {
                let r = self.read_root(false, guard);
                let m = self.gcas_read(r, guard);
                if self.rdcss(r, m, fresh, guard) {
                    // Readers may still be walking the old trie: release it after them (R1).
                    release_later(Edge::I(r), guard);
                    return;
                }
            }
        }
    }

    /// The committed main node of the root (always a C-node).
    ///
    /// # Safety
    /// Pinned by `guard`.
    pub(crate) unsafe fn root_main(&self, guard: &Guard) -> *mut Main<K, V> {
        // SAFETY: forwarded.
        unsafe {
            let r = self.read_root(false, guard);
            self.gcas_read(r, guard)
        }
    }
}

impl<K, V> Drop for RawCtrie<K, V> {
    fn drop(&mut self) {
        let guard = &crossbeam_epoch::pin();
        // Relaxed: `&mut self` means no operation is in flight on this root, so it holds an
        // I-node, not a descriptor.
        let r: *mut INode<K, V> = self.root.load(Ordering::Relaxed).cast();
        debug_assert_eq!(r.addr() & 1, 0);
        // SAFETY: we own one edge to the root. Threads may still be reading through it (an
        // iterator's entries live as long as its guard), so the release waits for them (R1).
        unsafe { release_later(Edge::I(r), guard) };
    }
}
