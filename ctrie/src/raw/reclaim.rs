//! Memory reclamation: reference counts on shared nodes, frees deferred through the epoch.
//!
//! # The problem
//! Snapshots share nodes with the trie they were taken from, so a main node replaced in the live
//! trie may still be reachable from a snapshot ("retire on replace" would be unsound), and pinning
//! an epoch for a snapshot's whole life would stall reclamation for every thread.
//!
//! # The scheme
//! Every node (I-node, main node, S-node) has a count `rc` of *references*. A reference is an
//! edge of the structure: an I-node's committed `main`, a C-node branch, a T-node's S-node, an
//! L-node entry, the trie's root pointer, a snapshot's root. So:
//!
//! * **R1 (nothing freed while reachable).** When an edge that other threads may have followed is
//!   removed (a GCAS or RDCSS replaced the node holding it, or a trie or snapshot handle was
//!   dropped), the matching decrement is *deferred* through the epoch ([`release_later`]): it is
//!   applied only after every thread pinned at the removal has unpinned. Hence when a count
//!   reaches zero, every thread that could ever have reached the node through any edge is gone,
//!   and the node is freed at once ([`release_now`]), releasing its own edges at once too (the
//!   node was unreachable, so nobody can be following them). Decrements of edges nobody else
//!   could follow (speculative acquisitions never published, see R3) are applied at once as
//!   well. A thread still holding a pointer it read while pinned is protected, because it read
//!   it from an edge whose decrement waits for it to unpin. Deferred functions therefore need
//!   no pin for what they free: all of it is unreachable. They may still pin and defer again,
//!   which crossbeam-epoch allows from inside a deferred function: the frees of a large
//!   structure hand their remainder on that way ([`FREE_BUDGET`]), and the snapshot cache's
//!   deferred breadcrumb drop releases snapshots, which defers their frees.
//!
//! Counting every edge naively would make each insert bump the count of every sibling it copies.
//! Two rules keep the common path count-free:
//!
//! * **R2 (transfer on unique replacement).** A write replaces the committed main node `old` of
//!   I-node `i` by a copy `new`. If `old.rc == 1` when the copy is built, `new` *borrows* the edges
//!   of `old` instead of adding its own; if the GCAS commits, `old`'s edges now belong to `new`,
//!   the edges `new` dropped (a replaced or removed S-node, a dropped I-node) are released
//!   (deferred, R1), and `old`'s *shell* is freed after a grace period. If the GCAS fails, `new` owned nothing it
//!   borrowed, so only what was freshly allocated is freed.
//! * **R3 (acquire when shared).** If `old.rc > 1`, `new` acquires (+1) every edge it keeps, and
//!   on commit `old` is released (-1, deferred). Acquisitions are *speculative*: they are plain
//!   increments ([`acquire`]) undone if the GCAS fails. The same goes for
//!   edges created across generations: a renewed I-node acquires its predecessor's main node, a
//!   snapshot's new root acquires the old root's main node.
//!
//! Why R2 is sound: the uniqueness check is made *before* the GCAS, so it must still hold when
//! the GCAS commits. New edges to a main node `m` of I-node `i` are only ever created by copying
//! `i` into another generation (renewal, or a snapshot copying the root). Such a copy is made by
//! an operation whose start generation differs from `i.gen`, which exists only once a snapshot
//! (or clear) moved the root of `i`'s trie away from `i.gen`. Every such copy reads `i.main` with
//! a GCAS-read, which decides any pending GCAS on `i` first; a decision taken after the root left
//! `i.gen` is always *failure*. Hence either the commit on `i` happens first (and the copier sees
//! `new`, not `old`), or the copier sees `old` and the GCAS fails: a GCAS on `i` that commits
//! never races a new edge to `old`. Transient speculative increments by copiers that will fail
//! are balanced by their own decrements and never bring the count to zero, because R2 never
//! decrements `old` (its last edge is gone with the shell).
//!
//! Why speculative acquisitions are sound: an acquisition is a plain increment of a node the
//! thread reached while pinned, which by R1 cannot have reached zero before that pin ends, so it
//! never resurrects a node queued for destruction (debug builds assert this on every
//! acquisition; the test suite, Miri and loom run them). An increment-unless-zero would add
//! nothing: a node whose count had reached zero may already be freed, so merely reading its
//! count would be the bug. A successful acquisition is published only by a CAS (GCAS on the
//! parent, RDCSS on the root) whose expected value is the node the edge was copied from, so the
//! new edge is published only if its source was still in place, and the acquisition is undone
//! otherwise.
//!
//! * **R4 (frozen snapshots).** A read-only snapshot owns a counted edge to its root. Every
//!   I-node reachable from it has a generation the live trie has left, so its committed main node
//!   never changes again once any reader has GCAS-read it (a pending write found there is rolled
//!   back, see `gcas.rs`). Therefore everything a snapshot reader reaches stays counted by the
//!   snapshot's structure for as long as the snapshot lives: snapshot lookups and iterators can
//!   return references tied to the snapshot's borrow, pinning only while they read an I-node.
//!
//! * **ABA.** Every CAS compares against a pointer loaded while pinned, and nothing loaded while
//!   pinned is freed (hence reused) before that pin ends (R1). A rolled-back GCAS restores exactly
//!   the node it saved, which is the same committed node, not an ABA. Generations are unique
//!   64-bit numbers and are never reused.
//!
//! The counts are checked by drop-count tests (every key and value dropped exactly once, none
//! early), by Miri, and by loom with crossbeam-epoch's own atomics modelled.

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::node::{Branch, BranchRef, INode, Main, MainRef, SNode};
use crate::sync::{fence, AtomicUsize, Ordering};

/// Refuses to let a count overflow (as `Arc` does).
#[cold]
fn count_overflow() -> ! {
    std::process::abort()
}

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
/// # Safety
/// As [`Guard::defer_unchecked`]: `f` may only touch what stays valid until it runs.
///
/// [`CtrieRef`]: crate::CtrieRef
pub(crate) unsafe fn retire<F: FnOnce()>(guard: &Guard, f: F) {
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

/// +1 on a node that cannot have reached zero: the caller holds a counted reference to it, or
/// reached it while pinned (by R1 its count stays above zero until that pin ends).
#[inline]
pub(crate) fn acquire(rc: &AtomicUsize) {
    // Relaxed: as in `Arc::clone`, the increment only has to be ordered with other modifications
    // of the same count (it is, as a read-modify-write on one location), and the count cannot be
    // zero, so no destructor can be racing with it; the node's contents were made visible by the
    // Acquire load of the pointer that led here.
    let before = rc.fetch_add(1, Ordering::Relaxed);
    // A zero here would mean R1 was broken: the node is being freed while it is still reachable.
    // Debug builds (the test suite, Miri, loom) check it.
    debug_assert_ne!(before, 0, "acquired a node whose count had reached zero");
    if before > isize::MAX as usize {
        count_overflow();
    }
}

/// -1; returns true if this was the last reference.
#[inline]
fn release_count(rc: &AtomicUsize) -> bool {
    // Release: our accesses to the node happen before whoever destroys it.
    if rc.fetch_sub(1, Ordering::Release) != 1 {
        return false;
    }
    // Acquire: pairs with the Release decrements of every other owner, so the destructor runs
    // after all their accesses (the `Arc` protocol). ThreadSanitizer does not model fences, so
    // under it (ci/sanitize.sh sets `ctrie_tsan`) an Acquire load stands in, as in `std`'s `Arc`.
    if cfg!(ctrie_tsan) {
        rc.load(Ordering::Acquire);
    } else {
        fence(Ordering::Acquire);
    }
    true
}

/// A counted edge to a node of any kind.
#[derive(Clone, Copy)]
pub(crate) enum Edge<K, V> {
    I(*mut INode<K, V>),
    M(*mut Main<K, V>),
    S(*mut SNode<K, V>),
}

impl<K, V> From<Branch<K, V>> for Edge<K, V> {
    fn from(b: Branch<K, V>) -> Self {
        match b.get() {
            BranchRef::I(i) => Edge::I(i),
            BranchRef::S(s) => Edge::S(s),
        }
    }
}

/// Drops an edge that no other thread can follow any more (R1): the edges of a node being
/// freed, an edge whose removal happened a grace period ago, or a speculative edge that was
/// never published. A node whose count reaches zero is freed at once, and so, transitively, is
/// everything that only it referenced, up to [`FREE_BUDGET`] nodes per call (see [`free_dead`]).
///
/// Only nodes whose count reached zero go on the work stack (each child of a freed C-node is
/// decremented where it is found), so dropping a snapshot, which typically frees one path of
/// C-nodes while their other children live on, keeps the stack within its inline capacity: a
/// stack of every child would spill to the heap, and with glibc that large allocation
/// consolidated the allocator's free lists on every cascade (measured in `snapshot_system`).
///
/// # Safety
/// The caller owns the edge, and the conditions above hold.
pub(crate) unsafe fn release_now<K, V>(e: Edge<K, V>) {
    let mut dead: Dead<K, V> = SmallVec::new();
    // SAFETY: we own `e` (contract).
    unsafe { release_into(&mut dead, e) };
    // SAFETY: what `release_into` put on `dead` reached zero.
    unsafe { free_dead(dead) };
}

/// At most this many nodes are freed by one deferred function (or one [`release_now`]); the
/// rest of a large structure is handed on to another deferred function. Dropping or clearing a
/// trie of 10M keys would otherwise free ~11M nodes in one go, on whichever thread collects
/// next (a writer in the middle of an insert: a pause of seconds, measured by `drop_pause`).
/// 1,024 frees take tens of microseconds; a collection runs at most one step of each such chain.
pub(crate) const FREE_BUDGET: usize = if cfg!(miri) { 16 } else { 1024 };

/// Frees the nodes on `dead` (whose counts reached zero) and, transitively, what only they
/// referenced, up to [`FREE_BUDGET`] nodes; if work remains, the rest of the stack is deferred
/// to run after the next grace period, on whichever thread collects then. That wait is not
/// needed for safety (nothing can reach a node whose count is zero, R1), only to spread the
/// work: the epoch is the one queue every thread that uses the trie already drains.
///
/// # Safety
/// Every node on `dead` has a count of zero and is owned by the caller.
unsafe fn free_dead<K, V>(mut dead: Dead<K, V>) {
    let mut budget = FREE_BUDGET;
    while let Some(e) = dead.pop() {
        if budget == 0 {
            dead.push(e);
            let rest = SendDead(dead);
            let guard = &crossbeam_epoch::pin();
            // SAFETY: the nodes on `rest` are unreachable (their counts are zero) and owned by
            // the deferred function from now on, which frees them (R1).
            unsafe {
                retire(guard, move || {
                    let rest = rest;
                    free_dead(rest.0)
                })
            };
            return;
        }
        budget -= 1;
        // SAFETY: `e`'s count reached zero, so nobody else can reach it (R1): we free it. Its
        // own edges are ours now, and each is dropped through `release_into`.
        unsafe {
            match e {
                Edge::S(s) => SNode::destroy(s),
                Edge::I(i) => {
                    // Every GCAS ever started on `i` ran in a thread pinned while `i` was
                    // reachable, which has unpinned (R1): `main` holds the committed main
                    // node, which `i` owns. Acquire: see that final value.
                    let m = (*i).main.load(Ordering::Acquire);
                    debug_assert!(
                        (*m).load_prev().is_null(),
                        "freed an I-node with a pending GCAS"
                    );
                    INode::free_shell(i);
                    release_into(&mut dead, Edge::M(m));
                }
                Edge::M(m) => {
                    match Main::view(m) {
                        MainRef::C(cn) => {
                            for &b in cn.branches() {
                                release_into(&mut dead, Edge::from(b));
                            }
                        }
                        MainRef::T(tn) => release_into(&mut dead, Edge::S(tn.sn)),
                        MainRef::L(ln) => {
                            for &s in ln.entries() {
                                release_into(&mut dead, Edge::S(s));
                            }
                        }
                    }
                    Main::free_shell(m);
                }
            }
        }
    }
}

/// The rest of a [`free_dead`] stack, moved into a deferred function (see [`SendEdge`]).
struct SendDead<K, V>(Dead<K, V>);

/// The nodes [`release_now`] has yet to free.
type Dead<K, V> = SmallVec<[Edge<K, V>; 16]>;

/// -1 on the target of `e`; if that was its last reference, the target goes on `dead`.
///
/// # Safety
/// The caller owns the edge, so the target is live.
#[inline]
unsafe fn release_into<K, V>(dead: &mut Dead<K, V>, e: Edge<K, V>) {
    // SAFETY: the target is live (contract).
    let last = unsafe {
        match e {
            Edge::S(s) => release_count(&(*s).rc),
            Edge::I(i) => release_count(&(*i).rc),
            Edge::M(m) => release_count(&(*m).rc),
        }
    };
    if last {
        dead.push(e);
    }
}

/// Drops an edge that was just removed from a structure other threads may be reading: the
/// decrement waits for a grace period (R1).
///
/// # Safety
/// The caller owns the edge and has made it unreachable.
pub(crate) unsafe fn release_later<K, V>(e: Edge<K, V>, guard: &Guard) {
    let e = SendEdge(e);
    // SAFETY: after the grace period nobody can follow the removed edge any more.
    unsafe {
        retire(guard, move || {
            let e = e;
            release_now(e.0)
        })
    };
}

/// An edge moved into a deferred function (which crossbeam-epoch may run on another thread;
/// the trie's `Send`/`Sync` bounds make that sound for the keys and values it may drop).
struct SendEdge<K, V>(Edge<K, V>);

/// A retired main node moved into a deferred function.
struct SendMain<K, V>(*mut Main<K, V>);

/// A node allocated by an attempt, other than the GCAS target itself.
#[derive(Clone, Copy)]
pub(crate) enum Fresh<K, V> {
    I(*mut INode<K, V>),
    M(*mut Main<K, V>),
}

/// The ownership bookkeeping of one attempt to replace a main node (rules R2 and R3): what the
/// new node borrowed or acquired, what it dropped, and what was allocated for it. The GCAS that
/// publishes the new node settles it with [`Txn::commit`] or [`Txn::abort`].
pub(crate) struct Txn<K, V> {
    /// R2 applies: the replaced node is uniquely owned and its edges move to the new node.
    transfer: bool,
    /// References acquired for the new node (undone if the attempt fails). Room for a whole
    /// C-node inline: a copy of a shared C-node acquires all its branches, and a list that
    /// spilled to the heap cost an allocation (and, with glibc, a consolidation) per copy.
    acquired: SmallVec<[Edge<K, V>; 32]>,
    /// References of the old node that the new node does not keep (released on commit, R2).
    dropped: SmallVec<[Edge<K, V>; 2]>,
    /// Nodes allocated for the new node besides the GCAS target (freed if the attempt fails).
    fresh: SmallVec<[Fresh<K, V>; 4]>,
}

impl<K, V> Txn<K, V> {
    pub(crate) fn new() -> Self {
        Txn {
            transfer: false,
            acquired: SmallVec::new(),
            dropped: SmallVec::new(),
            fresh: SmallVec::new(),
        }
    }

    /// Starts an attempt to replace `old` (a committed main node read while pinned).
    pub(crate) fn begin(&mut self, old: &Main<K, V>) {
        debug_assert!(self.acquired.is_empty() && self.dropped.is_empty() && self.fresh.is_empty());
        // Acquire: if another owner just released `old`, its accesses happen before we take
        // over `old`'s edges.
        self.transfer = old.rc.load(Ordering::Acquire) == 1;
    }

    /// Keeps a branch of the old node in the new node.
    pub(crate) fn keep(&mut self, b: Branch<K, V>) -> Branch<K, V> {
        if self.transfer {
            return b;
        }
        // SAFETY: `b` came from a node read while pinned, so its target's memory is live.
        let rc = unsafe {
            match b.get() {
                BranchRef::I(i) => &(*i).rc,
                BranchRef::S(s) => &(*s).rc,
            }
        };
        acquire(rc);
        self.acquired.push(Edge::from(b));
        b
    }

    /// Adds a new edge to an existing S-node that the old node does not own directly (e.g. the
    /// S-node of a tomb being resurrected into its parent).
    pub(crate) fn acquire_snode(&mut self, s: *mut SNode<K, V>) -> *mut SNode<K, V> {
        // SAFETY: `s` was read while pinned.
        acquire(unsafe { &(*s).rc });
        self.acquired.push(Edge::S(s));
        s
    }

    /// Adds a new edge to an existing main node (a renewed I-node sharing its predecessor's).
    pub(crate) fn acquire_main(&mut self, m: *mut Main<K, V>) -> *mut Main<K, V> {
        // SAFETY: `m` was read while pinned.
        acquire(unsafe { &(*m).rc });
        self.acquired.push(Edge::M(m));
        m
    }

    /// Records that the new node drops this branch of the old node.
    pub(crate) fn drop_branch(&mut self, b: Branch<K, V>) {
        if self.transfer {
            self.dropped.push(Edge::from(b));
        }
        // Otherwise the old node keeps its edge, and releasing the old node releases it.
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

    /// The GCAS replacing `old` committed: settle ownership (R2 or R3).
    ///
    /// # Safety
    /// `old` was the committed main node this attempt began with and has just been replaced by a
    /// committed GCAS; the caller (the I-node) gave up its reference to it.
    pub(crate) unsafe fn commit(&mut self, old: *mut Main<K, V>, guard: &Guard) {
        self.acquired.clear();
        self.fresh.clear();
        // SAFETY: per the contract; see R2/R3 in the module docs.
        unsafe {
            if self.transfer {
                // `old`'s only edge is gone (the committed GCAS replaced it) and its children now
                // belong to the replacement, except those it dropped. After a grace period its
                // shell is freed and the dropped edges released (R1, R2). The common case (an
                // upsert or a removal drops one S-node) costs a single deferred function.
                let mut dropped = self.dropped.drain(..);
                let first = dropped.next().map(SendEdge);
                // Seeded bug (ci/mutants.sh): leak the first dropped edge.
                let first = if cfg!(ctrie_mutant = "leak_dropped") {
                    None
                } else {
                    first
                };
                // Seeded bug (ci/mutants.sh, for Miri and AddressSanitizer): free the first
                // dropped edge at once, while pinned readers (and the caller, who is handed the
                // replaced value) may still hold it.
                let first = if cfg!(ctrie_mutant = "free_early") {
                    if let Some(e) = first {
                        release_now(e.0);
                    }
                    None
                } else {
                    first
                };
                for extra in dropped {
                    release_later(extra, guard);
                }
                let old = SendMain(old);
                retire(guard, move || {
                    let (old, first) = (old, first);
                    Main::free_shell(old.0);
                    if let Some(e) = first {
                        release_now(e.0);
                    }
                });
            } else {
                debug_assert!(self.dropped.is_empty());
                release_later(Edge::M(old), guard);
            }
        }
    }

    /// The attempt failed (or was abandoned): undo acquisitions and free fresh allocations.
    ///
    /// # Safety
    /// The fresh nodes recorded were never reachable by other threads except through the GCAS
    /// target (whose children no other thread reads while it is uncommitted).
    pub(crate) unsafe fn abort(&mut self) {
        self.dropped.clear();
        // SAFETY: per the contract. Fresh nodes own no counted edge beyond what `acquired` lists
        // (released here) and what was borrowed (not ours), so only their shells are freed.
        unsafe {
            // Speculative edges, never published: released at once (R1, R3).
            for e in self.acquired.drain(..) {
                release_now(e);
            }
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
/// `n` failed its GCAS, is no longer any I-node's `main`, and its edges were settled by
/// [`Txn::abort`].
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

#[cfg(all(test, debug_assertions, not(ctrie_loom)))]
mod tests {
    use super::*;

    #[test]
    fn acquire_adds_one() {
        let rc = AtomicUsize::new(1);
        acquire(&rc);
        assert_eq!(rc.load(Ordering::Relaxed), 2);
    }

    /// The check that R1 holds on every acquisition (see the module docs) does fire.
    #[test]
    #[should_panic(expected = "count had reached zero")]
    fn acquiring_a_node_whose_count_reached_zero_is_caught() {
        acquire(&AtomicUsize::new(0));
    }
}
