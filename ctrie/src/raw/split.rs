//! Pieces of a read-only trie for parallel iteration: a range of the branches of one C-node,
//! split in halves, or by descending into a lone child's C-node, until a piece is one entry.
//!
//! Read-only tries are frozen (R4 in `reclaim.rs`): the nodes a piece points to stay valid while
//! the trie lives, and every thread may read them. Like `iter.rs`, a piece pins only while it
//! GCAS-reads an I-node; it uses no reclamation internals.

use core::ops::ControlFlow;

use crate::raw::node::{BranchRef, INode, Main, MainRef};
use crate::raw::RawCtrie;

/// The branches `lo..hi` of the C-node `main` of the read-only trie `trie`.
pub(crate) struct Pieces<'a, K, V> {
    trie: &'a RawCtrie<K, V>,
    main: *mut Main<K, V>,
    lo: usize,
    hi: usize,
}

// SAFETY: a piece reads a frozen read-only trie (atomically, through `gcas_read`, which may roll
// back a pending write: an atomic operation any thread may do) and hands out `&K`/`&V` of it:
// sending it to another thread is sending `&Snapshot`, which needs `K`/`V: Send + Sync`.
unsafe impl<K: Send + Sync, V: Send + Sync> Send for Pieces<'_, K, V> {}

/// GCAS-reads `i` of the read-only trie `t`, pinning only for the read.
///
/// # Safety
/// `i` is reachable from `t`.
unsafe fn read_main<K, V>(t: &RawCtrie<K, V>, i: *mut INode<K, V>) -> *mut Main<K, V> {
    let guard = &crossbeam_epoch::pin();
    // SAFETY: forwarded; the committed main of a frozen I-node outlives the pin (R4).
    unsafe { t.gcas_read(i, guard) }
}

/// The number of branches of the C-node `m`, or `None` if `m` is not a C-node.
///
/// # Safety
/// `m` is a frozen main node.
unsafe fn width<K, V>(m: *mut Main<K, V>) -> Option<usize> {
    // SAFETY: forwarded.
    match unsafe { Main::view(m) } {
        MainRef::C(cn) => Some(cn.branches().len()),
        _ => None,
    }
}

impl<'a, K, V> Pieces<'a, K, V> {
    /// The whole read-only trie `t`.
    pub(crate) fn whole(t: &'a RawCtrie<K, V>) -> Self {
        debug_assert!(t.read_only);
        let guard = &crossbeam_epoch::pin();
        // SAFETY: `t` owns its root, whose main is a frozen C-node (R4).
        let main = unsafe { t.gcas_read(t.fixed_root(), guard) };
        // SAFETY: as above.
        let hi = unsafe { width(main) }.expect("a root's main is a C-node");
        Pieces {
            trie: t,
            main,
            lo: 0,
            hi,
        }
    }

    /// Splits off the second half; a piece of one branch that leads to a C-node is replaced by
    /// that C-node's branches first. `None` once the piece is a single entry (or a collision
    /// list).
    pub(crate) fn split(mut self) -> (Self, Option<Self>) {
        loop {
            if self.hi - self.lo >= 2 {
                let mid = self.lo + (self.hi - self.lo) / 2;
                let second = Pieces { lo: mid, ..self };
                self.hi = mid;
                return (self, Some(second));
            }
            if self.hi == self.lo {
                return (self, None);
            }
            // SAFETY: `main` is a frozen C-node of `trie` and `lo` is in range.
            let child = unsafe {
                let MainRef::C(cn) = Main::view(self.main) else {
                    unreachable!("pieces are ranges of C-nodes")
                };
                match cn.branch(self.lo).get() {
                    BranchRef::S(_) => return (self, None),
                    BranchRef::I(i) => read_main(self.trie, i),
                }
            };
            // SAFETY: `child` is frozen.
            match unsafe { width(child) } {
                Some(w) => {
                    self.main = child;
                    self.lo = 0;
                    self.hi = w;
                }
                None => return (self, None),
            }
        }
    }

    /// Folds `f` over the entries of the piece, in the order of the sequential iterator,
    /// stopping early when `f` breaks.
    pub(crate) fn fold<A>(
        self,
        acc: A,
        f: &mut impl FnMut(A, (&'a K, &'a V)) -> ControlFlow<A, A>,
    ) -> A {
        // SAFETY: `main` is a frozen C-node of `trie`.
        match unsafe { self.fold_cnode(self.main, self.lo, self.hi, acc, f) } {
            ControlFlow::Continue(a) | ControlFlow::Break(a) => a,
        }
    }

    /// # Safety
    /// `m` is a frozen C-node of `self.trie` with at least `hi` branches.
    unsafe fn fold_cnode<A>(
        &self,
        m: *mut Main<K, V>,
        lo: usize,
        hi: usize,
        mut acc: A,
        f: &mut impl FnMut(A, (&'a K, &'a V)) -> ControlFlow<A, A>,
    ) -> ControlFlow<A, A> {
        // SAFETY: forwarded; everything reached is frozen and owned by `self.trie` for `'a`.
        unsafe {
            let MainRef::C(cn) = Main::view(m) else {
                unreachable!("pieces are ranges of C-nodes")
            };
            for k in lo..hi {
                acc = match cn.branch(k).get() {
                    BranchRef::S(s) => f(acc, (&(*s).key, &(*s).value))?,
                    BranchRef::I(i) => {
                        let child = read_main(self.trie, i);
                        match Main::view(child) {
                            MainRef::C(c) => {
                                let w = c.branches().len();
                                self.fold_cnode(child, 0, w, acc, f)?
                            }
                            MainRef::T(tn) => f(acc, (&(*tn.sn).key, &(*tn.sn).value))?,
                            MainRef::L(ln) => {
                                let mut a = acc;
                                for &s in ln.entries() {
                                    a = f(a, (&(*s).key, &(*s).value))?;
                                }
                                a
                            }
                        }
                    }
                };
            }
            ControlFlow::Continue(acc)
        }
    }
}
