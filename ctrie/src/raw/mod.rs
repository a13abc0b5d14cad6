//! The unsafe core: a Ctrie over raw nodes, parameterised by precomputed hashes and key
//! comparison closures. The safe facade (`map.rs`, `snapshot.rs`) owns the hasher.
//!
//! Layout of the core, one concern per file:
//! * `node.rs`: node types and their allocation;
//! * `reclaim.rs`: the reclamation scheme (generation intervals) and why it is sound, retired
//!   nodes and the bookkeeping of a write; `era.rs`: lineages and their eras (what snapshots
//!   still read); `settle.rs`: the deferred placement and freeing work; `ready.rs`: the list
//!   through which writers do that work for dead eras; `shadow.rs`: the debug
//!   oracle that checks the scheme against exact reference counts;
//! * `gcas.rs`, `rdcss.rs`: the two synchronisation primitives of the paper;
//! * `build.rs`: pure constructions of new nodes from old ones (insertedAt, updatedAt,
//!   removedAt, renewed, toCompressed, toContracted, dual, L-node updates);
//! * `ops.rs`: lookup, insert, remove, clean and cleanParent;
//! * `iter.rs`: iteration and (cached) size over read-only snapshots;
//! * `diff.rs`: the lock-step walk of two read-only tries behind `Snapshot::diff`;
//! * `split.rs` (feature `rayon`): splitting a read-only trie into subtrees for parallel
//!   iteration.
//!
//! A [`RawCtrie`] is either *writable* (the live trie or a writable snapshot) or *read-only*
//! (a read-only snapshot, whose root never changes).

pub(crate) mod build;
pub(crate) mod diff;
pub(crate) mod era;
pub(crate) mod gcas;
#[cfg(test)]
mod inspect;
pub(crate) mod iter;
pub(crate) mod node;
pub(crate) mod ops;
pub(crate) mod rdcss;
pub(crate) mod ready;
pub(crate) mod reclaim;
pub(crate) mod settle;
pub(crate) mod shadow;
#[cfg(feature = "rayon")]
pub(crate) mod split;

use core::marker::PhantomData;

use crossbeam_epoch::Guard;

use self::era::{EraRef, Lineage};
use self::node::{CNode, INode, Main};
use self::rdcss::Descriptor;
use self::settle::Job;
use crate::sync::{next_generation, Arc, AtomicPtr, Ordering};

/// The variance marker of every type that stores `K`/`V` into shared state or hands them out of
/// it: *invariant* in both. Writes take `K`/`V` through `&self` (`insert(&self, ..)`) and their
/// destructors run later, deferred through the epoch, so a trie of `&'static str` must never be
/// usable as a trie of `&'a str` (which would let a short-lived key in, to be read as `'static`
/// later), nor a trie of `D<'static>` as one of `D<'a>` (whose deferred `Drop` would write
/// through a dead borrow). `fn(K, V) -> (K, V)` is invariant and, unlike `*mut`, says nothing
/// about `Send`/`Sync` (those are implemented by hand on the public types). `tests/ui/` pins
/// this with compile-fail tests.
pub(crate) type Invariant<K, V> = PhantomData<fn(K, V) -> (K, V)>;

/// A Ctrie root: the root pointer (an I-node, or an RDCSS descriptor tagged with bit 0), whether
/// the trie is read-only, and what keeps its nodes alive: a writable trie is its lineage's live
/// tree; a read-only trie holds an era of its lineage (`reclaim.rs`).
pub(crate) struct RawCtrie<K, V> {
    pub(crate) root: AtomicPtr<u8>,
    pub(crate) read_only: bool,
    owner: Owner<K, V>,
    /// Invariant in `K` and `V` (see [`Invariant`]); `*const` keeps it neither `Send` nor
    /// `Sync`, which the facade types decide.
    _marker: PhantomData<*const (K, V)>,
    _invariant: Invariant<K, V>,
}

enum Owner<K, V> {
    /// A writable trie: the live tree of this lineage.
    Live(Arc<Lineage<K, V>>),
    /// A read-only trie: frozen at this era.
    Frozen(EraRef<K, V>),
}

impl<K, V> RawCtrie<K, V> {
    /// An empty writable trie, starting a lineage in a fresh generation.
    pub(crate) fn new() -> Self {
        let gen = next_generation();
        let root = Self::empty_root(gen);
        shadow::on_new_root(root);
        RawCtrie::with_root(root, Owner::Live(Lineage::new(gen, None)))
    }

    fn empty_root(gen: u64) -> *mut INode<K, V> {
        INode::alloc(gen, CNode::alloc(gen, 0, |_| unreachable!("empty C-node")))
    }

    fn with_root(root: *mut INode<K, V>, owner: Owner<K, V>) -> Self {
        RawCtrie {
            root: AtomicPtr::new(root.cast()),
            read_only: matches!(owner, Owner::Frozen(_)),
            owner,
            _marker: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// The lineage whose live tree (or era) this trie is.
    pub(crate) fn lineage(&self) -> &Lineage<K, V> {
        match &self.owner {
            Owner::Live(l) => l,
            Owner::Frozen(e) => e.lineage(),
        }
    }

    /// The root I-node of a read-only trie (which never changes).
    pub(crate) fn fixed_root(&self) -> *mut INode<K, V> {
        debug_assert!(self.read_only);
        // Relaxed: a read-only trie's root is set at construction and never changes.
        self.root.load(Ordering::Relaxed).cast()
    }

    /// Moves the root to a new generation and returns the previous root I-node, frozen from
    /// then on (R4), with the era that keeps what it reaches alive: the linearisation point of
    /// a snapshot.
    ///
    /// # Safety
    /// Pinned by `guard`; the trie is writable.
    unsafe fn freeze_root(&self, guard: &Guard) -> (*mut INode<K, V>, EraRef<K, V>) {
        let Owner::Live(lineage) = &self.owner else {
            unreachable!("freezing a read-only trie")
        };
        // Kept across attempts while the root's generation stays the same (a writer that
        // committed on the root made the RDCSS fail, not another snapshot): the era is still the
        // right one, and the new root still newer than the old.
        let mut era: Option<EraRef<K, V>> = None;
        let mut renewed: *mut INode<K, V> = core::ptr::null_mut();
        // The era's embedded descriptor is for its first attempt only: a descriptor is never
        // installed twice (a helper that read it once may still act on it).
        let mut slot: *mut Descriptor<K, V> = core::ptr::null_mut();
        loop {
            // SAFETY: pinned; the root and its main are live while pinned. `renewed` is ours
            // until an RDCSS publishes it.
            unsafe {
                let r = self.read_root(false, guard);
                let m = self.gcas_read(r, guard);
                let gen = (*r).gen;
                // N2: the era exists before the RDCSS that freezes its generation. (Seeded bug,
                // ci/mutants.sh: register it after.)
                let late = cfg!(ctrie_mutant = "register_after_rdcss");
                if !late && era.as_ref().is_none_or(|e| e.gen() != gen) {
                    // The era was never frozen: dropping it unregisters it.
                    drop(era.take());
                    if !renewed.is_null() {
                        // Drawn before this root existed: too old to follow it.
                        INode::free_shell(renewed);
                    }
                    // Drawn after reading the root: newer than it.
                    renewed = INode::alloc(next_generation(), m);
                    match Lineage::register(lineage, gen, Descriptor::for_era(r, m, renewed)) {
                        Some(e) => {
                            slot = e.slot();
                            era = Some(e);
                        }
                        None => continue, // the root has moved on: start over
                    }
                } else if renewed.is_null() {
                    renewed = INode::alloc(next_generation(), m);
                } else {
                    INode::set_unpublished_main(renewed, m);
                }
                let committed = if slot.is_null() {
                    self.rdcss_keeping_descriptor(r, m, renewed, guard)
                } else if cfg!(ctrie_mutant = "slot_reused") {
                    // Seeded bug (loom-tests/run.sh): install the era's descriptor again on a
                    // retry, already decided.
                    self.rdcss_with(slot, guard)
                } else {
                    // Filled in with this attempt's `r`, `m` and `renewed` at registration.
                    self.rdcss_with(core::mem::replace(&mut slot, core::ptr::null_mut()), guard)
                };
                if let Some(desc) = committed {
                    let era = match era {
                        Some(e) => e,
                        None => loop {
                            let unused = Descriptor::for_era(r, m, renewed);
                            if let Some(e) = Lineage::register(lineage, gen, unused) {
                                break e;
                            }
                        },
                    };
                    // `r` left the live tree at `renewed`'s generation, born in its own: its
                    // interval holds this era only (N1, N3).
                    // The descriptor is freed with it.
                    era.keep_root(r, desc);
                    if cfg!(ctrie_mutant = "ro_snapshot_live_root") {
                        // Seeded bug (ci/mutants.sh): hand out the new live root, as the Go
                        // port once did, so the "snapshot" keeps changing.
                        return (renewed, era);
                    }
                    return (r, era);
                }
                // The descriptor was aborted, so no one swung the root to `renewed`: it is
                // still unpublished, and the next attempt reuses it.
                if late {
                    INode::free_shell(renewed);
                    renewed = core::ptr::null_mut();
                }
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
        // (The root pointer's edge to `r` passes to the snapshot.)
        let (r, era) = unsafe { self.freeze_root(guard) };
        RawCtrie::with_root(r, Owner::Frozen(era))
    }

    /// An O(1) writable snapshot (a fork, N4): a new trie, in a lineage of its own, whose root
    /// shares the frozen root's main node, and which reserves the era it was taken at.
    pub(crate) fn snapshot(&self) -> RawCtrie<K, V> {
        let guard = &crossbeam_epoch::pin();
        // SAFETY: pinned. The era keeps `r`'s main node and everything below it alive.
        unsafe {
            let (r, era, frozen_here) = match &self.owner {
                Owner::Frozen(e) => (self.fixed_root(), e.clone(), false),
                Owner::Live(_) => {
                    let (r, era) = self.freeze_root(guard);
                    (r, era, true)
                }
            };
            let m = self.gcas_read(r, guard);
            let base = next_generation();
            let root = INode::alloc(base, m);
            shadow::on_new_root(root);
            if frozen_here {
                // Nothing holds the frozen root itself (the era keeps it allocated).
                shadow::on_dropped_root(r);
            }
            RawCtrie::with_root(root, Owner::Live(Lineage::new(base, Some(era))))
        }
    }

    /// Another handle on the same read-only root.
    pub(crate) fn clone_read_only(&self) -> RawCtrie<K, V> {
        let Owner::Frozen(era) = &self.owner else {
            unreachable!("not read-only")
        };
        let r = self.fixed_root();
        shadow::on_new_root(r);
        RawCtrie::with_root(r, Owner::Frozen(era.clone()))
    }

    /// Atomically replaces the whole trie by an empty one in a new generation.
    pub(crate) fn clear(&self) {
        let Owner::Live(lineage) = &self.owner else {
            unreachable!("clearing a read-only trie")
        };
        let guard = &crossbeam_epoch::pin();
        loop {
            // SAFETY: pinned; on success the old tree has left the live tree.
            unsafe {
                let r = self.read_root(false, guard);
                let m = self.gcas_read(r, guard);
                // A generation drawn after reading the root, so that the lineage's generations
                // keep increasing (N2) and the old tree's death comes after every era of it: one
                // drawn before a snapshot that moved the root meanwhile would be older than
                // that snapshot's era, which would then not protect its part of the old tree.
                let gen = next_generation();
                let fresh = Self::empty_root(gen);
                if self.rdcss(r, m, fresh, guard) {
                    shadow::on_dropped_root(r);
                    // The whole old tree died in the new root's generation (N5); readers may
                    // still be walking it, so the work starts after a grace period.
                    let job = Job::tree(lineage.clone(), r, gen);
                    settle::run_later(job, guard);
                    return;
                }
                // Never published (the descriptor was aborted): freed at once.
                Main::free_shell((*fresh).main.load(Ordering::Relaxed));
                INode::free_shell(fresh);
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
        // Relaxed: `&mut self` means no operation is in flight on this root, so it holds an
        // I-node, not a descriptor.
        let r: *mut INode<K, V> = self.root.load(Ordering::Relaxed).cast();
        debug_assert_eq!(r.addr() & 1, 0);
        shadow::on_dropped_root(r);
        if let Owner::Live(lineage) = &self.owner {
            let guard = &crossbeam_epoch::pin();
            // The whole live tree dies now, after every era of the lineage (N5). Threads may
            // still be reading it (an iterator's entries live as long as its guard), so the work
            // starts after a grace period.
            let job = Job::tree(lineage.clone(), r, u64::MAX);
            // SAFETY: the tree is this lineage's live tree, just removed.
            unsafe { settle::run_later(job, guard) };
        }
        // A read-only trie's era is released when `owner` drops.
    }
}
