//! The debug oracle: the previous scheme's exact reference counts, kept beside generation
//! intervals in debug builds (the test suite, Miri and loom), and checked at every free.
//!
//! Every node carries a shadow count: the number of edges to it from *attached* holders (a
//! trie's root pointer, a snapshot handle, an attached I-node's main node, an attached main
//! node's branches). A node is attached while its count is above zero; attaching it attaches
//! its children, detaching it detaches them (the old scheme's cascade, without its frees). So a
//! node's count is zero exactly when no trie, snapshot or fork can reach it, and [`on_free`]
//! asserts that: a free of a node some structure still reaches fails at once, whether or not
//! anything reads it later. Per-kind allocation counters let tests check at quiescence that
//! every node was freed exactly once, and how much unreachable memory waits for reclamation.
//!
//! An I-node's edge moves when a GCAS on it commits. The commit's decision (the CAS of `prev` to
//! null) and the shadow update are made under one global lock, so the shadow sees commits in
//! their real order. An I-node that is not attached (a new root not counted yet, an I-node the
//! shadow already detached) only records its latest main node for when it is attached.
//!
//! The counts are `std` atomics even under loom (the oracle is not what loom explores; loom runs
//! one thread at a time, so they need no modelling). Under loom the lock yields to loom while it
//! waits, because the commit CAS it guards is a loom operation at which loom may switch threads.
//!
//! Release builds compile all of this away.

use super::node::{INode, Main, SNode};

/// A node of any kind.
#[cfg_attr(not(debug_assertions), allow(dead_code))] // only the oracle reads it
pub(crate) enum Node<K, V> {
    I(*mut INode<K, V>),
    M(*mut Main<K, V>),
    S(*mut SNode<K, V>),
}

impl<K, V> Clone for Node<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Node<K, V> {}

#[cfg(debug_assertions)]
pub(crate) use imp::*;

#[cfg(not(debug_assertions))]
pub(crate) use off::*;

#[cfg(not(debug_assertions))]
mod off {
    use super::super::node::{INode, Kind, Main};
    use super::Node;

    #[inline(always)]
    pub(crate) unsafe fn on_commit<K, V>(
        _: *mut INode<K, V>,
        _: *mut Main<K, V>,
        _: *mut Main<K, V>,
    ) {
    }
    #[inline(always)]
    pub(crate) unsafe fn on_free<K, V>(_: Node<K, V>) {}
    #[inline(always)]
    pub(crate) fn on_new_root<K, V>(_: *mut INode<K, V>) {}
    #[inline(always)]
    pub(crate) fn on_root_swap<K, V>(_: *mut INode<K, V>, _: *mut INode<K, V>) {}
    #[inline(always)]
    pub(crate) fn on_dropped_root<K, V>(_: *mut INode<K, V>) {}
    #[inline(always)]
    pub(crate) fn count_alloc(_: Option<Kind>) {}
    #[inline(always)]
    pub(crate) fn count_free(_: Option<Kind>) {}
    #[inline(always)]
    pub(crate) fn count_era(_: bool) {}
    #[inline(always)]
    pub(crate) fn count_snode_alloc() {}
    #[inline(always)]
    pub(crate) fn count_snode_free() {}
    #[inline(always)]
    pub(crate) fn count_deferred(_: bool) {}
    /// Runs the decision `cas`; no oracle to update in release builds.
    #[inline(always)]
    pub(crate) fn decide<T>(cas: impl FnOnce() -> T) -> T {
        cas()
    }
}

#[cfg(debug_assertions)]
mod imp {
    use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
    #[cfg(not(ctrie_loom))]
    use std::sync::{Mutex, MutexGuard};

    use super::super::node::{BranchRef, INode, Kind, Main, MainRef};
    use super::Node;

    /// Serialises commit decisions with their shadow updates, and every cascade.
    #[cfg(not(ctrie_loom))]
    static LOCK: Mutex<()> = Mutex::new(());

    #[cfg(not(ctrie_loom))]
    fn lock() -> MutexGuard<'static, ()> {
        LOCK.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Under loom: a spin lock that yields to loom while it waits, so that loom runs the holder
    /// (which may be switched out at the commit CAS it guards). Not a loom lazy static: the
    /// oracle also runs while loom tears an execution down (deferred frees), when those are gone.
    #[cfg(ctrie_loom)]
    static LOCKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

    #[cfg(ctrie_loom)]
    pub(crate) struct Held;

    #[cfg(ctrie_loom)]
    impl Drop for Held {
        fn drop(&mut self) {
            LOCKED.store(false, SeqCst);
        }
    }

    #[cfg(ctrie_loom)]
    fn lock() -> Held {
        while LOCKED
            .compare_exchange(false, true, SeqCst, SeqCst)
            .is_err()
        {
            loom::thread::yield_now();
        }
        Held
    }

    /// Allocated and not yet freed, per kind: I-nodes, C-nodes, T-nodes, L-nodes, S-nodes.
    static LIVE: [AtomicUsize; 5] = [const { AtomicUsize::new(0) }; 5];
    /// Nodes attached (reachable from some trie, snapshot or fork), all kinds.
    static ATTACHED: AtomicUsize = AtomicUsize::new(0);
    /// Eras allocated and not yet freed.
    static ERAS: AtomicUsize = AtomicUsize::new(0);

    /// Deferred functions queued and not yet run (see `reclaim::retire`).
    static DEFERRED: AtomicUsize = AtomicUsize::new(0);

    /// A deferred function was queued (`true`) or has run.
    pub(crate) fn count_deferred(queued: bool) {
        if queued {
            DEFERRED.fetch_add(1, SeqCst);
        } else {
            DEFERRED.fetch_sub(1, SeqCst);
        }
    }

    /// Deferred functions queued and not yet run.
    pub(crate) fn deferred() -> usize {
        DEFERRED.load(SeqCst)
    }

    /// An era was allocated (`true`) or freed.
    pub(crate) fn count_era(alloc: bool) {
        if alloc {
            ERAS.fetch_add(1, SeqCst);
        } else {
            ERAS.fetch_sub(1, SeqCst);
        }
    }

    fn slot(kind: Option<Kind>) -> usize {
        match kind {
            None => 0,
            Some(Kind::CNode) => 1,
            Some(Kind::TNode) => 2,
            Some(Kind::LNode) => 3,
        }
    }

    /// A main node (`Some(kind)`) or an I-node (`None`) was allocated.
    pub(crate) fn count_alloc(kind: Option<Kind>) {
        LIVE[slot(kind)].fetch_add(1, SeqCst);
    }

    /// A node was freed (`None`: an I-node).
    pub(crate) fn count_free(kind: Option<Kind>) {
        let before = LIVE[slot(kind)].fetch_sub(1, SeqCst);
        assert_ne!(before, 0, "ctrie oracle: more nodes freed than allocated");
    }

    /// An S-node was allocated.
    pub(crate) fn count_snode_alloc() {
        LIVE[4].fetch_add(1, SeqCst);
    }

    /// An S-node was freed.
    pub(crate) fn count_snode_free() {
        let before = LIVE[4].fetch_sub(1, SeqCst);
        assert_ne!(before, 0, "ctrie oracle: more S-nodes freed than allocated");
    }

    /// Allocated nodes per kind (I, C, T, L, S), how many of all kinds are reachable, and how
    /// many eras are allocated.
    pub(crate) fn census() -> ([usize; 5], usize, usize) {
        let _l = lock();
        (
            core::array::from_fn(|k| LIVE[k].load(SeqCst)),
            ATTACHED.load(SeqCst),
            ERAS.load(SeqCst),
        )
    }

    /// The shadow count of a node.
    unsafe fn count<'a, K, V>(n: Node<K, V>) -> &'a AtomicUsize {
        // SAFETY: the node is allocated (callers).
        unsafe {
            match n {
                Node::I(i) => &(*i).shadow,
                Node::M(m) => &(*m).shadow,
                Node::S(s) => &(*s).shadow,
            }
        }
    }

    /// The holders below `n`: an I-node's recorded main node, a main node's branches.
    unsafe fn children<K, V>(n: Node<K, V>, mut f: impl FnMut(Node<K, V>)) {
        // SAFETY: the node is allocated (callers); immutable parts only, plus the recorded main.
        unsafe {
            match n {
                Node::I(i) => f(Node::M((*i).shadow_main.load(SeqCst))),
                Node::M(m) => match Main::view(m) {
                    MainRef::C(cn) => {
                        for b in cn.branches() {
                            f(match b.get() {
                                BranchRef::I(c) => Node::I(c),
                                BranchRef::S(s) => Node::S(s),
                            })
                        }
                    }
                    MainRef::T(tn) => f(Node::S(tn.sn)),
                    MainRef::L(ln) => {
                        for &s in ln.entries() {
                            f(Node::S(s))
                        }
                    }
                },
                Node::S(_) => {}
            }
        }
    }

    /// +1; attaching `n` attaches its children. Under the lock.
    unsafe fn acquire<K, V>(n: Node<K, V>) {
        // SAFETY: reachable nodes are allocated (the property being checked).
        unsafe {
            if count(n).fetch_add(1, SeqCst) == 0 {
                ATTACHED.fetch_add(1, SeqCst);
                children(n, |c| acquire(c));
            }
        }
    }

    /// -1; detaching `n` detaches its children. Under the lock.
    unsafe fn release<K, V>(n: Node<K, V>) {
        // SAFETY: as in `acquire`.
        unsafe {
            let before = count(n).fetch_sub(1, SeqCst);
            assert_ne!(before, 0, "ctrie oracle: a shadow count went below zero");
            if before == 1 {
                ATTACHED.fetch_sub(1, SeqCst);
                children(n, |c| release(c));
            }
        }
    }

    /// Makes the commit decision `cas` (of a GCAS on some I-node) atomic with the oracle's
    /// update, which the caller makes through [`on_commit`] inside `cas` when it succeeds.
    pub(crate) fn decide<T>(cas: impl FnOnce() -> T) -> T {
        let _l = lock();
        cas()
    }

    /// A GCAS on `i` committed `new` in place of `old` (called inside [`decide`]).
    ///
    /// # Safety
    /// The nodes are allocated.
    pub(crate) unsafe fn on_commit<K, V>(
        i: *mut INode<K, V>,
        old: *mut Main<K, V>,
        new: *mut Main<K, V>,
    ) {
        // SAFETY: per the contract.
        unsafe {
            let recorded = (*i).shadow_main.swap(new, SeqCst);
            assert_eq!(
                recorded, old,
                "ctrie oracle: commits on an I-node out of order"
            );
            if (*i).shadow.load(SeqCst) > 0 {
                acquire(Node::M(new));
                release(Node::M(old));
            }
        }
    }

    /// A new root edge to `r`: a trie's or a fork's root, a snapshot handle.
    pub(crate) fn on_new_root<K, V>(r: *mut INode<K, V>) {
        let _l = lock();
        // SAFETY: `r` is allocated (it is a root).
        unsafe { acquire(Node::I(r)) }
    }

    /// The root pointer of a trie moved from `old` to `new` (an RDCSS decided, inside
    /// [`decide`]): `new` gains the edge; `old`'s is taken over by a snapshot handle or dropped
    /// by the caller ([`on_dropped_root`]).
    pub(crate) fn on_root_swap<K, V>(_old: *mut INode<K, V>, new: *mut INode<K, V>) {
        // SAFETY: `new` is allocated (it is the root now). The lock is held by `decide`.
        unsafe { acquire(Node::I(new)) }
    }

    /// A root edge to `r` went (a trie or snapshot handle dropped, a cleared tree).
    pub(crate) fn on_dropped_root<K, V>(r: *mut INode<K, V>) {
        let _l = lock();
        // SAFETY: `r` is allocated while an edge to it exists.
        unsafe { release(Node::I(r)) }
    }

    /// `n` is about to be freed: no trie, snapshot or fork may reach it.
    ///
    /// # Safety
    /// The node is allocated.
    pub(crate) unsafe fn on_free<K, V>(n: Node<K, V>) {
        let _l = lock();
        // SAFETY: per the contract.
        let c = unsafe { count(n).load(SeqCst) };
        assert_eq!(
            c, 0,
            "ctrie oracle: freed a node that {c} attached holder(s) still reach"
        );
    }
}
