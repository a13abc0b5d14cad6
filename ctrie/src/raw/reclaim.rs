//! Memory reclamation without per-edge counts: generation intervals.
//!
//! # The problem
//! Snapshots share nodes with the trie they were taken from, so a node replaced in the live
//! trie may still be reachable from a snapshot ("retire on replace" alone would be unsound),
//! and pinning an epoch for a snapshot's whole life would stall reclamation for every thread.
//! Counting every edge is sound but costs a write after a snapshot one atomic read-modify-write
//! per child it copies (~100 per write at 100k keys), and a snapshot's drop as many again.
//!
//! # Definitions
//! * A *lineage* ([`Lineage`], `era.rs`) is the history of one writable trie: the generations
//!   its root passes through (each snapshot and each `clear` moves the root to a new one;
//!   generations come from one global counter, so they are unique and increase along a
//!   lineage), from its *base* generation on. A new trie starts a lineage; so does a writable
//!   snapshot (a *fork*).
//! * A node is *born* in the lineage and generation of the commit that publishes it, and records
//!   that generation ([`Retired::birth`]): a GCAS commits only while the root's generation is its
//!   I-node's, so a main node's birth is its I-node's generation; an I-node's own generation is its
//!   birth; a root I-node is born in its generation. A node of lineage L *dies* in generation `d`
//!   when a commit of L in generation `d` removes it from L's live tree (`clear` removes the whole
//!   live tree, in the generation of the new root; dropping the trie, at generation infinity).
//! * An *era* is a generation `g` of L that something still reads: a read-only snapshot of L
//!   frozen at `g`, or a fork of L taken at `g`. Each lineage keeps its eras in a list, newest
//!   first ([`Lineage::register`]).
//!
//! # The structural fact
//! **N0.** L's live tree is a tree at every instant: every commit replaces one main node by a
//! copy and moves each kept child from the old parent to the new one in the same step (a
//! renewed I-node takes over its predecessor's main node, a snapshot's new root the old root's),
//! so no node ever has two live parents. A read-only snapshot frozen at generation `g` sees the
//! live tree as it was when the root left `g` (R4: no main node of an I-node of generation
//! `<= g` changes after that). Hence a node `x` of L is reachable from L's frozen root of `g`
//! exactly when `birth(x) <= g < death(x)`: it was published before the root left `g` (in a
//! generation `<= g`) and removed after (in a generation `> g`).
//!
//! # The rules
//! * **N1 (retire what a commit removes).** Each committed write of L retires exactly the
//!   nodes of L that it removed from L's live tree, tagged with its generation as their death:
//!   the replaced main node, and the branches the copy does not keep (a replaced or removed
//!   S-node; an I-node that was renewed, whose main node lives on in its copy; a tombed I-node
//!   merged into its parent, with its T-node, whose S-node lives on). The constructions in
//!   `build.rs` name them ([`Txn::drop_branch`], [`Txn::drop_node`]). A snapshot's RDCSS retires
//!   the old root I-node (its main node lives on under the new root). Nodes born in an ancestor
//!   lineage (`birth < base`, a fork's inheritance) are never retired by L (N4). No node is
//!   retired twice: a node leaves L's live tree once (it is never re-inserted; moved nodes stay in
//!   the tree throughout their move, which is one GCAS).
//! * **N2 (register before freezing).** A read-only snapshot or a fork of L at `g` registers era
//!   `g` before the RDCSS that freezes `g`, and unregisters it if the RDCSS fails. Registration
//!   pushes on the head of the era list, and refuses (the snapshot starts over) if the head is
//!   newer than `g`: then the root has already left `g`, so the RDCSS would fail anyway. The
//!   list therefore stays sorted, newest first.
//! * **N3 (free outside every era).** A retired node `x` is freed once a grace period has passed
//!   since its retirement and no live era of L lies in `[birth(x), death(x))`. At retirement it is
//!   *attached* to the youngest live era in that interval, if any (by N0 the younger eras cannot
//!   see it; the older ones in the interval are covered too, as long as it stays attached);
//!   otherwise it goes to the epoch. When an era dies (its last handle dropped), after a grace
//!   period, its nodes are placed again, among the older eras only; with eras dying oldest first
//!   (the snapshot cache's pattern) every node is then freed, so nothing is examined twice. Frees
//!   are shallow: a node's children are none of its business.
//! * **N4 (forks reserve their origin).** A fork W of L at `g` keeps era `g` of L for as long as
//!   W's lineage lives: as long as W, any snapshot or fork of W, or any reclamation work on W's
//!   nodes. W's trees only ever contain nodes of L that L's frozen root of `g` reaches (W
//!   publishes nodes of its own only), so by N0 the reservation covers every node of L that W can
//!   reach. W retires and frees only nodes born in W. A trie that never forks pays nothing for
//!   this; a long-lived, heavily rewritten fork keeps the version of its origin alive.
//! * **N5 (deep retirement).** `clear` and dropping a trie remove its whole live tree at once. The
//!   root is retired *deep*: when it is freed, its children of the same lineage are retired deep in
//!   turn, with the same death (children born in an ancestor lineage are left to it). A deep node
//!   attached to an era is placed again with its subtree still below it: a live node born at or
//!   before an era's generation has, by N0 and R4, a live subtree born at or before it too, so the
//!   era covers the whole subtree and only its root needs attaching.
//! * **N6 (bounded work).** One deferred function frees or places at most [`FREE_BUDGET`] nodes
//!   and hands the rest on to another, so that dropping a 10M-key trie or a snapshot that held
//!   millions of nodes never pauses whichever thread collects for long.
//! * **N7 (writers settle).** When a dead era's grace period has passed, its settlement (the
//!   placing and freeing of its nodes, N3) is not run by whichever thread collects the epoch but
//!   listed on the lineage's ready list (`ready.rs`); every commit of the lineage runs at most
//!   [`HELP_PER_COMMIT`] placements from it, and a fallback deferred function a grace period after
//!   a listing runs what the writers left, so nothing waits for a writer that stopped. The nodes
//!   are the writer's own: it allocated them, retired them and still has them in its cache, so
//!   freeing them there saves the snapshot's thread a cache miss per node and, with a
//!   per-thread-arena allocator (glibc), a lock against the writer. This changes only who runs a
//!   settlement and when (later, never earlier): a job is listed only by a deferred function
//!   queued at the era's death, its runner is pinned, and the list hands each job to one thread
//!   at a time.
//!
//! # Why it is sound
//! Who can still reach a retired node `x` of L, and why `x` outlives them:
//! * a thread pinned while it walked L's live tree before `x` was removed: every free happens in
//!   a deferred function queued after the retirement (directly, or after the death of an era,
//!   which happens after the retirement);
//! * a read-only snapshot of L frozen at `g`: it reaches `x` only if `g` lies in `x`'s interval
//!   (N0), and its era was registered before the freeze (N2) and lives as long as any handle on
//!   the snapshot does. Registration happens before the root leaves `g`, which happens before
//!   any commit of a later generation, which happens before that commit's retirement reads the era
//!   list (through the root pointer's release and acquire), so the retirement sees the era. An era
//!   is placed again only a grace period after its last handle went, so references a reader took
//!   from it (an iterator's entries live as long as its guard) have ended too;
//! * a fork of L and everything derived from it (N4);
//! * nothing else holds pointers into a trie.
//!
//! Attaching to an era races with its death: the death swaps a *closed* marker into the era's
//! garbage list, and an attachment is a CAS on that list that fails on the marker (the node then
//! goes to the next older era, or is freed). So each node is either in the list the death
//! takes, or placed elsewhere. An era registered too late (its RDCSS failed) only delays frees.
//!
//! RDCSS descriptors are not nodes: only threads pinned while one was installed in the root
//! pointer can hold it, and the RDCSS swings the root away from it before it returns. A
//! committed snapshot descriptor is freed with the frozen root, a grace period after its era's
//! death. The first attempt of a snapshot's freeze uses a descriptor embedded in its era
//! (`Era::slot`), filled in before the era is published and written afterwards only through its
//! atomic state, and never installed twice (a retry allocates its own), so no helper can act on
//! a reused descriptor. It lives exactly as long as the era, which is freed either through the
//! epoch, in a deferred function queued after the era's death (a never-frozen era dies after its
//! aborted RDCSS returned), so after every thread that was pinned while it was installed; or
//! when the lineage drops, which waits for the live trie to drop, and every thread that can hold
//! the descriptor is inside an operation on that trie.
//!
//! ABA: every CAS compares against a pointer loaded while pinned, and nothing loaded while
//! pinned is freed (hence reused) before that pin ends. A rolled-back GCAS restores exactly the
//! node it saved. Generations are never reused.
//!
//! In debug builds (the test suite, Miri and loom) a shadow oracle (`shadow.rs`) keeps the
//! previous scheme's exact reference counts beside this one and asserts at every free that the
//! node is unreachable, and per-kind counters let tests check that every node was freed once.

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::era::Lineage;
use super::node::{Branch, BranchRef, Gen, INode, Main, MainRef, SNode};
#[cfg(doc)]
use super::ready::HELP_PER_COMMIT;
use super::shadow;
use crate::sync::Ordering;

crate::sync::thread_local! {
    /// Deferred functions this thread queued since it last flushed (see [`retire`]). (No
    /// `const` initializer: loom's `thread_local!` does not accept one.)
    #[allow(clippy::missing_const_for_thread_local)]
    static QUEUED: core::cell::Cell<u32> = core::cell::Cell::new(0);
}

/// How many deferred functions a thread queues before it helps collect.
const FLUSH_EVERY: u32 = 128;

/// Queues `f` to run after a grace period, and keeps the backlog bounded.
///
/// crossbeam-epoch collects garbage only on every 128th outermost pin, at most 8 bags of 64
/// functions each time. A writer that pins once for a batch of operations (a [`CtrieRef`]
/// held across many writes, a snapshot-cache thread) queues garbage faster than that, and the
/// backlog, with the memory it holds, would grow without bound. So every `FLUSH_EVERY` deferred
/// functions the thread flushes its guard: it hands its bag over and collects what has expired,
/// which is always more than it just queued.
///
/// Deferred functions need no pin for what they free (it is unreachable). They may pin and
/// defer again, which crossbeam-epoch allows from inside a deferred function: the work of N6
/// hands its remainder on that way, and the snapshot cache's deferred breadcrumb drop releases
/// snapshots, whose eras then die.
///
/// # Safety
/// As [`Guard::defer_unchecked`]: `f` may only touch what stays valid until it runs.
///
/// [`CtrieRef`]: crate::CtrieRef
pub(crate) unsafe fn retire<F: FnOnce()>(guard: &Guard, f: F) {
    // The debug oracle counts deferred functions until they have run, so that tests can flush
    // the epoch until nothing of ctrie's is left queued (a no-op in release builds).
    shadow::count_deferred(true);
    let f = move || {
        f();
        shadow::count_deferred(false);
    };
    // SAFETY: forwarded.
    unsafe { guard.defer_unchecked(f) };
    let flush = QUEUED
        .try_with(|q| {
            let n = q.get() + 1;
            q.set(if n >= FLUSH_EVERY { 0 } else { n });
            n >= FLUSH_EVERY
        })
        .unwrap_or(false);
    if flush {
        // Running expired deferred functions here is fine: they only free nodes that have been
        // unreachable for a grace period. Functions they queue count towards the next flush.
        guard.flush();
    }
}

/// At most this many nodes are freed or placed by one deferred function (N6); the rest is handed
/// on to another. 1,024 frees take tens of microseconds.
pub(crate) const FREE_BUDGET: usize = if cfg!(miri) { 16 } else { 1024 };

const TAG_INODE: usize = 0;
const TAG_MAIN: usize = 1;
const TAG_SNODE: usize = 2;
const TAG_KIND: usize = 3;
/// Retired with its subtree (N5).
const TAG_DEEP: usize = 4;

/// A retired node of any kind: a pointer tagged with its kind and whether it is retired deep
/// (every node is at least 8-aligned, so the low three bits are free). The tag is set and cleared
/// with the strict-provenance address APIs.
pub(crate) struct Retired<K, V> {
    raw: *mut u8,
    _marker: core::marker::PhantomData<*const (K, V)>,
}

impl<K, V> Clone for Retired<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Retired<K, V> {}

impl<K, V> Retired<K, V> {
    fn tagged<T>(p: *mut T, tag: usize) -> Self {
        debug_assert_eq!(p.addr() & 7, 0, "nodes are 8-aligned");
        Retired {
            raw: p.cast::<u8>().map_addr(|a| a | tag),
            _marker: core::marker::PhantomData,
        }
    }
    pub(crate) fn inode(i: *mut INode<K, V>) -> Self {
        Self::tagged(i, TAG_INODE)
    }
    pub(crate) fn main(m: *mut Main<K, V>) -> Self {
        Self::tagged(m, TAG_MAIN)
    }
    pub(crate) fn snode(s: *mut SNode<K, V>) -> Self {
        Self::tagged(s, TAG_SNODE)
    }
    pub(crate) fn branch(b: Branch<K, V>) -> Self {
        match b.get() {
            BranchRef::I(i) => Self::inode(i),
            BranchRef::S(s) => Self::snode(s),
        }
    }
    /// The same node, retired with its subtree (N5).
    pub(crate) fn deep(self) -> Self {
        Retired {
            raw: self.raw.map_addr(|a| a | TAG_DEEP),
            _marker: core::marker::PhantomData,
        }
    }
    pub(crate) fn is_deep(self) -> bool {
        self.raw.addr() & TAG_DEEP != 0
    }
    fn ptr<T>(self) -> *mut T {
        self.raw.map_addr(|a| a & !7).cast()
    }

    /// The generation the node was born in.
    ///
    /// # Safety
    /// The node is allocated.
    #[inline]
    pub(crate) unsafe fn birth(self) -> Gen {
        // SAFETY: allocated (contract); the kind tag says which type it is.
        unsafe {
            match self.raw.addr() & TAG_KIND {
                TAG_INODE => (*self.ptr::<INode<K, V>>()).gen,
                TAG_MAIN => (*self.ptr::<Main<K, V>>()).birth,
                _ => (*self.ptr::<SNode<K, V>>()).birth,
            }
        }
    }

    /// Frees the node; if it is retired deep, first pushes its children onto `children`, deep.
    ///
    /// # Safety
    /// Nobody can reach the node any more (N3), and it was retired once, as this.
    pub(crate) unsafe fn free(self, children: &mut impl Extend<Retired<K, V>>) {
        // SAFETY: per the contract we are the last user of the node.
        unsafe {
            match self.raw.addr() & TAG_KIND {
                TAG_INODE => {
                    let i = self.ptr::<INode<K, V>>();
                    if self.is_deep() {
                        // Every GCAS ever started on `i` ran in a thread pinned while `i` was
                        // reachable, which has unpinned: `main` holds the committed main node.
                        // Acquire: see that final value.
                        let m = (*i).main.load(Ordering::Acquire);
                        debug_assert!(
                            (*m).load_prev().is_null(),
                            "freed an I-node with a pending GCAS"
                        );
                        children.extend([Retired::main(m).deep()]);
                    }
                    shadow::on_free(shadow::Node::I(i));
                    INode::free_shell(i);
                }
                TAG_MAIN => {
                    let m = self.ptr::<Main<K, V>>();
                    if self.is_deep() {
                        match Main::view(m) {
                            MainRef::C(cn) => children
                                .extend(cn.branches().iter().map(|&b| Retired::branch(b).deep())),
                            MainRef::T(tn) => children.extend([Retired::snode(tn.sn).deep()]),
                            MainRef::L(ln) => children
                                .extend(ln.entries().iter().map(|&s| Retired::snode(s).deep())),
                        }
                    }
                    shadow::on_free(shadow::Node::M(m));
                    Main::free_shell(m);
                }
                _ => {
                    let s = self.ptr::<SNode<K, V>>();
                    shadow::on_free(shadow::Node::S(s));
                    SNode::destroy(s);
                }
            }
        }
    }
}

/// Frees `nodes` (shallow) after a grace period: the common case of a retirement that no era
/// needs. One or two nodes (an upsert: the old C-node and the replaced S-node) travel inline in
/// the deferred function, with no allocation.
///
/// # Safety
/// The nodes were just retired (N1) and no era needs them (N3).
pub(crate) unsafe fn free_later<K, V>(nodes: &[Retired<K, V>], guard: &Guard) {
    // SAFETY (all arms): after the grace period nobody reaches them (N3).
    unsafe {
        match *nodes {
            [] => {}
            [a] => retire(guard, move || a.free(&mut NoChildren)),
            [a, b] => retire(guard, move || {
                a.free(&mut NoChildren);
                b.free(&mut NoChildren);
            }),
            _ => {
                let all: SmallVec<[Retired<K, V>; 8]> = nodes.iter().copied().collect();
                retire(guard, move || {
                    for x in all {
                        x.free(&mut NoChildren);
                    }
                })
            }
        }
    }
}

/// The children of shallow frees: there are none.
pub(crate) struct NoChildren;
impl<K, V> Extend<Retired<K, V>> for NoChildren {
    fn extend<T: IntoIterator<Item = Retired<K, V>>>(&mut self, iter: T) {
        debug_assert!(
            iter.into_iter().next().is_none(),
            "a shallow free has no children"
        );
    }
}

/// A node allocated by an attempt, other than the GCAS target itself.
#[derive(Clone, Copy)]
pub(crate) enum Fresh<K, V> {
    I(*mut INode<K, V>),
    M(*mut Main<K, V>),
}

/// The bookkeeping of one attempt to replace a main node: what the new node removes from the
/// live tree besides the replaced main node (retired if the GCAS commits, N1), and what was
/// allocated for it (freed if it fails). Settled by [`Txn::commit`] or [`Txn::abort`].
pub(crate) struct Txn<K, V> {
    /// Branches (and tombs) of the old node that the new node removes.
    dropped: SmallVec<[Retired<K, V>; 4]>,
    /// Nodes allocated for the new node besides the GCAS target (freed if the attempt fails).
    fresh: SmallVec<[Fresh<K, V>; 4]>,
}

impl<K, V> Txn<K, V> {
    pub(crate) fn new() -> Self {
        Txn {
            dropped: SmallVec::new(),
            fresh: SmallVec::new(),
        }
    }

    /// Starts an attempt.
    pub(crate) fn begin(&mut self) {
        debug_assert!(self.dropped.is_empty() && self.fresh.is_empty());
    }

    /// Records that the new node removes this branch of the old node from the live tree.
    pub(crate) fn drop_branch(&mut self, b: Branch<K, V>) {
        self.dropped.push(Retired::branch(b));
    }

    /// Records another node the new node removes from the live tree (a tombed I-node's T-node).
    pub(crate) fn drop_node(&mut self, x: Retired<K, V>) {
        self.dropped.push(x);
    }

    /// Records a node allocated for this attempt.
    pub(crate) fn fresh_inode(&mut self, i: *mut INode<K, V>) -> *mut INode<K, V> {
        self.fresh.push(Fresh::I(i));
        i
    }

    /// Records a main node allocated for this attempt (not the GCAS target).
    pub(crate) fn fresh_main(&mut self, m: *mut Main<K, V>) -> *mut Main<K, V> {
        self.fresh.push(Fresh::M(m));
        m
    }

    /// The GCAS replacing `old` by `new` on `i` committed in generation `death`: retire what it
    /// removed (N1).
    ///
    /// # Safety
    /// `old` was the committed main node this attempt began with and has just been replaced by a
    /// committed GCAS on `i` of generation `death`, in `lineage`'s live tree.
    pub(crate) unsafe fn commit(
        &mut self,
        lineage: &Lineage<K, V>,
        i: *mut INode<K, V>,
        old: *mut Main<K, V>,
        new: *mut Main<K, V>,
        guard: &Guard,
    ) {
        self.fresh.clear();
        // SAFETY: per the contract: everything named was reachable while pinned.
        unsafe {
            let _ = new; // recorded by the oracle at the decision (`gcas.rs`)
            let death = (*i).gen;
            let mut removed: SmallVec<[Retired<K, V>; 8]> = SmallVec::new();
            removed.push(Retired::main(old));
            let mut dropped = self.dropped.drain(..);
            // Seeded bug (ci/mutants.sh): forget the first dropped node (a leak).
            if cfg!(ctrie_mutant = "leak_dropped") {
                dropped.next();
            }
            // Seeded bug (ci/mutants.sh, for Miri and AddressSanitizer): free the first dropped
            // node at once, while pinned readers (and the caller, who is handed the replaced
            // value) may still hold it.
            if cfg!(ctrie_mutant = "free_early") {
                if let Some(x) = dropped.next() {
                    x.free(&mut NoChildren);
                }
            }
            removed.extend(dropped);
            // Nodes of an ancestor lineage are its business (N4).
            removed.retain(|x| x.birth() >= lineage.base);
            lineage.retire(death, &removed, guard);
        }
    }

    /// The attempt failed (or was abandoned): free fresh allocations.
    ///
    /// # Safety
    /// The fresh nodes recorded were never reachable by other threads except through the GCAS
    /// target (whose children no other thread reads while it is uncommitted).
    pub(crate) unsafe fn abort(&mut self) {
        self.dropped.clear();
        // SAFETY: per the contract. Fresh nodes own nothing but their shells: their children
        // belong to the live tree or to other fresh nodes.
        unsafe {
            for f in self.fresh.drain(..) {
                match f {
                    Fresh::I(i) => INode::free_shell(i),
                    Fresh::M(m) => Main::free_shell(m),
                }
            }
        }
    }
}

/// Frees a GCAS target that failed. If it was installed (and rolled back), other threads may
/// still be reading its `prev`, so its shell is retired through the epoch; otherwise it was never
/// seen and is freed at once.
///
/// # Safety
/// `n` failed its GCAS, is no longer any I-node's `main`, and its attempt was aborted.
pub(crate) unsafe fn discard_target<K, V>(n: *mut Main<K, V>, installed: bool, guard: &Guard) {
    // SAFETY: per the contract.
    unsafe {
        if installed {
            retire(guard, move || Main::free_shell(n));
        } else {
            Main::free_shell(n);
        }
    }
}
