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
//! L-node entry, the trie's root pointer, a snapshot's root. A node whose count drops to zero is
//! destroyed *through the epoch* ([`Guard::defer_unchecked`]): after a grace period its children
//! are released (each of which, on reaching zero, is deferred again) and its memory freed. So:
//!
//! * **R1 (nothing freed while reachable).** A node is freed only after its count reached zero,
//!   i.e. no structure edge points at it, *and* a grace period passed, so every thread that could
//!   have loaded a pointer to it from a since-removed edge has unpinned. A node freed while
//!   running another node's deferred destructor is deferred again rather than freed in place: its
//!   last other edge may have been removed less than a grace period ago (a same-generation
//!   replacement releases the replaced S-node right after its commit), so inheriting the parent's
//!   grace period would not be enough.
//!
//! Counting every edge naively would make each insert bump the count of every sibling it copies.
//! Two rules keep the common path count-free:
//!
//! * **R2 (transfer on unique replacement).** A write replaces the committed main node `old` of
//!   I-node `i` by a copy `new`. If `old.rc == 1` when the copy is built, `new` *borrows* the edges
//!   of `old` instead of adding its own; if the GCAS commits, `old`'s edges now belong to `new`,
//!   the edges `new` dropped (a replaced or removed S-node, a dropped I-node) are released, and
//!   `old`'s *shell* is retired (memory only, deferred). If the GCAS fails, `new` owned nothing it
//!   borrowed, so only what was freshly allocated is freed.
//! * **R3 (acquire when shared).** If `old.rc > 1`, `new` acquires (+1) every edge it keeps, and
//!   on commit `old` is released (-1). Acquisitions are *speculative*: they use
//!   [`try_acquire`] (increment unless zero) and are undone if the GCAS fails. The same goes for
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
//! Why speculative acquisitions are sound: [`try_acquire`] never resurrects a node whose count
//! reached zero (that node is already queued for destruction); a successful speculative
//! acquisition is published only by a CAS (GCAS on the parent, RDCSS on the root) whose expected
//! value is the node the edge was copied from, so the new edge is published only if its source
//! was still in place, and the acquisition is undone otherwise.
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

std::thread_local! {
    /// Deferred functions this thread queued since it last flushed (see [`retire`]).
    static QUEUED: core::cell::Cell<u32> = const { core::cell::Cell::new(0) };
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

/// +1 unless the count already reached zero. Returns whether the reference was acquired.
#[inline]
pub(crate) fn try_acquire(rc: &AtomicUsize) -> bool {
    // Relaxed: the increment only has to be ordered with other modifications of the same count
    // (they are, as read-modify-writes on one location); the node's contents were made visible
    // by the Acquire load of the pointer that led here.
    let mut cur = rc.load(Ordering::Relaxed);
    loop {
        if cur == 0 {
            return false;
        }
        if cur > isize::MAX as usize {
            count_overflow();
        }
        // Relaxed (both): see above.
        match rc.compare_exchange_weak(cur, cur + 1, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return true,
            Err(actual) => cur = actual,
        }
    }
}

/// +1 on a node the caller already holds a counted reference to (so the count is not zero).
#[inline]
pub(crate) fn acquire_held(rc: &AtomicUsize) {
    // Relaxed: as in `Arc::clone`, an existing reference keeps the node alive.
    if rc.fetch_add(1, Ordering::Relaxed) > isize::MAX as usize {
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
    // after all their accesses (the `Arc` protocol).
    fence(Ordering::Acquire);
    true
}

/// Releases one reference to an S-node.
///
/// # Safety
/// The caller owns the reference it gives up and `s` is live.
pub(crate) unsafe fn release_snode<K, V>(s: *mut SNode<K, V>, guard: &Guard) {
    // SAFETY: the caller owns a reference, so `s` is live.
    if release_count(unsafe { &(*s).rc }) {
        // SAFETY: count zero: no edge points at `s` any more; deferring the destruction past a
        // grace period makes sure no pinned thread still reads it (R1).
        unsafe { retire(guard, move || SNode::destroy(s)) };
    }
}

/// Releases one reference to an I-node.
///
/// # Safety
/// As [`release_snode`].
pub(crate) unsafe fn release_inode<K, V>(i: *mut INode<K, V>, guard: &Guard) {
    // SAFETY: the caller owns a reference, so `i` is live.
    if release_count(unsafe { &(*i).rc }) {
        // SAFETY: count zero: unreachable from any structure; destroyed after a grace period (R1).
        unsafe { retire(guard, move || destroy_inode(i)) };
    }
}

/// Releases one reference to a main node.
///
/// # Safety
/// As [`release_snode`].
pub(crate) unsafe fn release_main<K, V>(m: *mut Main<K, V>, guard: &Guard) {
    // SAFETY: the caller owns a reference, so `m` is live.
    if release_count(unsafe { &(*m).rc }) {
        // SAFETY: count zero: no I-node has it as committed main any more; destroyed after a
        // grace period (R1).
        unsafe { retire(guard, move || destroy_main(m)) };
    }
}

/// Releases one reference to whatever a branch points at.
///
/// # Safety
/// As [`release_snode`].
pub(crate) unsafe fn release_branch<K, V>(b: Branch<K, V>, guard: &Guard) {
    // SAFETY: forwarded contract.
    unsafe {
        match b.get() {
            BranchRef::I(i) => release_inode(i, guard),
            BranchRef::S(s) => release_snode(s, guard),
        }
    }
}

/// A node whose count reached zero inside another node's destructor, waiting for its own grace
/// period (R1). Destructors collect these and defer them as one batch, so dropping a large trie
/// costs one deferred function per C-node rather than one per entry.
enum Dead<K, V> {
    I(*mut INode<K, V>),
    M(*mut Main<K, V>),
    S(*mut SNode<K, V>),
}

/// Drops one reference to `r`; returns whether it was the last.
///
/// # Safety
/// The caller owned this reference.
unsafe fn release_dead<K, V>(r: &Dead<K, V>) -> bool {
    // SAFETY: the reference is owned, so the target is live.
    unsafe {
        match *r {
            Dead::I(i) => release_count(&(*i).rc),
            Dead::M(m) => release_count(&(*m).rc),
            Dead::S(s) => release_count(&(*s).rc),
        }
    }
}

/// Drops one reference held by a node being destroyed; records the target if that was the last.
///
/// # Safety
/// The destroyed node owned this reference.
unsafe fn release_into<K, V>(r: Dead<K, V>, dead: &mut Vec<Dead<K, V>>) {
    // SAFETY: forwarded.
    if unsafe { release_dead(&r) } {
        dead.push(r);
    }
}

/// Destroys the nodes of a batch (after their grace period) and defers what they release.
///
/// # Safety
/// Every node in `batch` reached count zero at least a grace period ago.
unsafe fn destroy_batch<K, V>(batch: Vec<Dead<K, V>>) {
    let mut dead = Vec::new();
    for d in batch {
        // SAFETY: forwarded.
        unsafe { destroy_one(d, &mut dead) };
    }
    defer_batch(dead);
}

/// Destroys one node whose count reached zero a grace period ago; queues what it releases.
///
/// # Safety
/// As [`destroy_batch`].
unsafe fn destroy_one<K, V>(d: Dead<K, V>, dead: &mut Vec<Dead<K, V>>) {
    // SAFETY: count zero and a grace period passed: we are the only user (R1). A node's
    // edges are released (their targets queued in `dead`) before its shell is freed.
    unsafe {
        match d {
            Dead::S(s) => SNode::destroy(s),
            Dead::I(i) => {
                // A grace period has passed since the count reached zero, so every GCAS ever
                // started on `i` (by a thread pinned while `i` was reachable) has completed,
                // including any roll-back: `main` holds the committed main node, which `i`
                // owns. Acquire: see that final value.
                let m = (*i).main.load(Ordering::Acquire);
                debug_assert!(
                    (*m).load_prev().is_null(),
                    "destroyed I-node with a pending GCAS"
                );
                release_into(Dead::M(m), dead);
                INode::free_shell(i);
            }
            Dead::M(m) => {
                match Main::view(m) {
                    MainRef::C(cn) => {
                        for &b in cn.branches() {
                            match b.get() {
                                BranchRef::I(i) => release_into(Dead::I(i), dead),
                                BranchRef::S(s) => release_into(Dead::S(s), dead),
                            }
                        }
                    }
                    MainRef::T(tn) => release_into(Dead::S(tn.sn), dead),
                    MainRef::L(ln) => {
                        for &s in ln.entries() {
                            release_into(Dead::S(s), dead);
                        }
                    }
                }
                Main::free_shell(m);
            }
        }
    }
}

/// Defers the destruction of nodes that just reached count zero, as one batch. They are not
/// freed in place: another edge to them may have been removed less than a grace period ago (R1).
fn defer_batch<K, V>(dead: Vec<Dead<K, V>>) {
    if !dead.is_empty() {
        let guard = &crossbeam_epoch::pin();
        // SAFETY: every node in `dead` just reached count zero.
        unsafe { retire(guard, move || destroy_batch(dead)) };
    }
}

/// Destructor of an I-node whose count reached zero, run after a grace period.
unsafe fn destroy_inode<K, V>(i: *mut INode<K, V>) {
    let mut dead = Vec::new();
    // SAFETY: forwarded.
    unsafe { destroy_one(Dead::I(i), &mut dead) };
    defer_batch(dead);
}

/// Destructor of a main node whose count reached zero, run after a grace period.
unsafe fn destroy_main<K, V>(m: *mut Main<K, V>) {
    let mut dead = Vec::new();
    // SAFETY: forwarded.
    unsafe { destroy_one(Dead::M(m), &mut dead) };
    defer_batch(dead);
}

/// A counted reference recorded by a [`Txn`].
#[derive(Clone, Copy)]
pub(crate) enum Ref<K, V> {
    B(Branch<K, V>),
    M(*mut Main<K, V>),
}

/// A node allocated by an attempt, other than the GCAS target itself.
#[derive(Clone, Copy)]
pub(crate) enum Fresh<K, V> {
    I(*mut INode<K, V>),
    M(*mut Main<K, V>),
}

/// Signals that an attempt must be abandoned and the operation restarted from the root.
#[derive(Debug)]
pub(crate) struct Restart;

/// The ownership bookkeeping of one attempt to replace a main node (rules R2 and R3): what the
/// new node borrowed or acquired, what it dropped, and what was allocated for it. The GCAS that
/// publishes the new node settles it with [`Txn::commit`] or [`Txn::abort`].
pub(crate) struct Txn<K, V> {
    /// R2 applies: the replaced node is uniquely owned and its edges move to the new node.
    transfer: bool,
    /// References acquired for the new node (undone if the attempt fails).
    acquired: SmallVec<[Ref<K, V>; 4]>,
    /// References of the old node that the new node does not keep (released on commit, R2).
    dropped: SmallVec<[Ref<K, V>; 2]>,
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
    pub(crate) fn keep(&mut self, b: Branch<K, V>) -> Result<Branch<K, V>, Restart> {
        if self.transfer {
            return Ok(b);
        }
        // SAFETY: `b` came from a node read while pinned, so its target's memory is live.
        let rc = unsafe {
            match b.get() {
                BranchRef::I(i) => &(*i).rc,
                BranchRef::S(s) => &(*s).rc,
            }
        };
        if try_acquire(rc) {
            self.acquired.push(Ref::B(b));
            Ok(b)
        } else {
            Err(Restart)
        }
    }

    /// Adds a new edge to an existing S-node that the old node does not own directly (e.g. the
    /// S-node of a tomb being resurrected into its parent).
    pub(crate) fn acquire_snode(
        &mut self,
        s: *mut SNode<K, V>,
    ) -> Result<*mut SNode<K, V>, Restart> {
        // SAFETY: `s` was read while pinned.
        if try_acquire(unsafe { &(*s).rc }) {
            self.acquired.push(Ref::B(Branch::snode(s)));
            Ok(s)
        } else {
            Err(Restart)
        }
    }

    /// Adds a new edge to an existing main node (a renewed I-node sharing its predecessor's).
    pub(crate) fn acquire_main(&mut self, m: *mut Main<K, V>) -> Result<*mut Main<K, V>, Restart> {
        // SAFETY: `m` was read while pinned.
        if try_acquire(unsafe { &(*m).rc }) {
            self.acquired.push(Ref::M(m));
            Ok(m)
        } else {
            Err(Restart)
        }
    }

    /// Records that the new node drops this branch of the old node.
    pub(crate) fn drop_branch(&mut self, b: Branch<K, V>) {
        if self.transfer {
            self.dropped.push(Ref::B(b));
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
                // The common case (an upsert or a removal drops one S-node) costs a single
                // deferred function: the old shell and the dropped node, if that was its last
                // edge, are freed together after the grace period.
                let mut last: Option<Dead<K, V>> = None;
                for r in self.dropped.drain(..) {
                    let dead = match r {
                        Ref::B(b) => match b.get() {
                            BranchRef::I(i) => Dead::I(i),
                            BranchRef::S(s) => Dead::S(s),
                        },
                        Ref::M(m) => Dead::M(m),
                    };
                    if release_dead(&dead) {
                        if let Some(prev) = last.replace(dead) {
                            // More than one: defer the earlier one on its own.
                            defer_batch(vec![prev]);
                        }
                    }
                }
                // SAFETY (of the deferred call): `old`'s only edge is gone (the committed GCAS
                // replaced it) and its children now belong to the replacement, so only its shell
                // is freed; `last` reached count zero just now. Both wait for a grace period
                // (R1, R2).
                retire(guard, move || {
                    Main::free_shell(old);
                    if let Some(d) = last {
                        let mut dead = Vec::new();
                        destroy_one(d, &mut dead);
                        defer_batch(dead);
                    }
                });
            } else {
                debug_assert!(self.dropped.is_empty());
                release_main(old, guard);
            }
        }
    }

    /// The attempt failed (or was abandoned): undo acquisitions and free fresh allocations.
    ///
    /// # Safety
    /// The fresh nodes recorded were never reachable by other threads except through the GCAS
    /// target (whose children no other thread reads while it is uncommitted).
    pub(crate) unsafe fn abort(&mut self, guard: &Guard) {
        self.dropped.clear();
        // SAFETY: per the contract. Fresh nodes own no counted edge beyond what `acquired` lists
        // (released here) and what was borrowed (not ours), so only their shells are freed.
        unsafe {
            for r in self.acquired.drain(..) {
                match r {
                    Ref::B(b) => release_branch(b, guard),
                    Ref::M(m) => release_main(m, guard),
                }
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
