//! Iteration and size over read-only tries.
//!
//! A read-only trie is frozen (R4 in `reclaim.rs`): once an I-node's main has been GCAS-read
//! through it, it never changes, and every node reached stays counted by the trie's structure
//! while the trie lives. The iterator therefore keeps plain pointers to C-nodes between calls and
//! pins only while it GCAS-reads an I-node (which may have to roll back a pending write, touching
//! nodes that only the epoch protects). It yields entries of S-nodes, of T-nodes and of L-nodes
//! (the Go port once skipped tombs).
//!
//! Sizes are cached per C-node, as in Scala's `TrieMap`: a C-node reachable from a read-only
//! trie has a frozen subtree, so its size never changes once computed. Successive snapshots of a
//! live trie share most C-nodes, so a second `len()` recounts only what changed.

use super::node::{BranchRef, CNode, CRef, INode, LRef, Main, MainRef, SNode, UNKNOWN_SIZE};
use super::RawCtrie;
use crate::sync::Ordering;

/// Deepest C-node nesting: levels 0, 5, ..., 60 (13 C-nodes); L-nodes sit below.
const MAX_DEPTH: usize = 14;

/// A depth-first, pull-based walk over a read-only trie.
pub(crate) struct RawIter<K, V> {
    /// C-nodes on the current path and the index of the next branch to visit in each.
    stack: [(*const CNode<K, V>, u8); MAX_DEPTH],
    depth: usize,
    /// An L-node being walked, and the next entry.
    list: Option<(*const super::node::LNode<K, V>, usize)>,
}

impl<K, V> RawIter<K, V> {
    /// Starts at the root of the read-only trie `t`.
    pub(crate) fn new(t: &RawCtrie<K, V>) -> Self {
        let guard = &crossbeam_epoch::pin();
        // SAFETY: `t` owns its root; pinned while reading it.
        let m = unsafe { t.gcas_read(t.fixed_root(), guard) };
        let mut it = RawIter {
            stack: [(core::ptr::null(), 0); MAX_DEPTH],
            depth: 0,
            list: None,
        };
        // SAFETY: a root's main node is a C-node (never contracted at level 0), frozen (R4).
        if let MainRef::C(cn) = unsafe { Main::view(m) } {
            cn.prefetch_children();
            it.stack[0] = (cn.as_ptr(), 0);
            it.depth = 1;
        }
        it
    }

    /// The next S-node, or `None` at the end.
    ///
    /// # Safety
    /// `t` is the read-only trie this iterator was created on, alive for as long as the returned
    /// S-nodes are used.
    pub(crate) unsafe fn next(&mut self, t: &RawCtrie<K, V>) -> Option<*mut SNode<K, V>> {
        debug_assert!(t.read_only);
        loop {
            if let Some((ln, k)) = self.list {
                // SAFETY: frozen and owned by `t` (R4); the pointer is the allocation's (from `as_ptr`).
                let es = unsafe { LRef::new(ln).entries() };
                if k < es.len() {
                    self.list = Some((ln, k + 1));
                    return Some(es[k]);
                }
                self.list = None;
            }
            if self.depth == 0 {
                return None;
            }
            let (cn, k) = self.stack[self.depth - 1];
            // SAFETY: frozen and owned by `t` (R4); the pointer is the allocation's (from `as_ptr`).
            let bs = unsafe { CRef::new(cn).branches() };
            if k as usize >= bs.len() {
                self.depth -= 1;
                continue;
            }
            self.stack[self.depth - 1].1 = k + 1;
            match bs[k as usize].get() {
                BranchRef::S(s) => return Some(s),
                // SAFETY: the child I-node is owned by `t`'s structure.
                BranchRef::I(i) => match unsafe { read_main(t, i) } {
                    MainRef::C(child) => {
                        assert!(self.depth < MAX_DEPTH, "trie deeper than the hash allows");
                        child.prefetch_children();
                        self.stack[self.depth] = (child.as_ptr(), 0);
                        self.depth += 1;
                    }
                    MainRef::T(tn) => return Some(tn.sn),
                    MainRef::L(ln) => self.list = Some((ln.as_ptr(), 0)),
                },
            }
        }
    }
}

/// GCAS-reads `i` in the read-only trie `t`, pinning only for the read.
///
/// # Safety
/// `i` is reachable from `t`, which is alive for `'a`.
unsafe fn read_main<'a, K, V>(t: &'a RawCtrie<K, V>, i: *mut INode<K, V>) -> MainRef<'a, K, V> {
    let guard = &crossbeam_epoch::pin();
    // SAFETY: the committed main of an I-node of a read-only trie is frozen and owned by that
    // trie's structure once read (R4), so the view outlives the pin.
    unsafe { Main::view(t.gcas_read(i, guard)) }
}

impl<K, V> RawCtrie<K, V> {
    /// Number of entries of a read-only trie (cached per C-node).
    pub(crate) fn size(&self) -> usize {
        debug_assert!(self.read_only);
        // SAFETY: the root is owned by `self`.
        match unsafe { read_main(self, self.fixed_root()) } {
            MainRef::C(cn) => self.cnode_size(cn),
            MainRef::T(_) => 1,
            MainRef::L(ln) => ln.entries().len(),
        }
    }

    fn cnode_size(&self, cn: CRef<'_, K, V>) -> usize {
        // Relaxed: the size of a frozen subtree is a pure function of it; any thread storing it
        // stores the same value, so no ordering with other memory is needed.
        let cached = cn.size.load(Ordering::Relaxed);
        if cached != UNKNOWN_SIZE {
            return cached;
        }
        let mut n = 0;
        for b in cn.branches() {
            n += match b.get() {
                BranchRef::S(_) => 1,
                // SAFETY: the child is owned by this read-only trie's frozen structure.
                BranchRef::I(i) => match unsafe { read_main(self, i) } {
                    MainRef::C(child) => self.cnode_size(child),
                    MainRef::T(_) => 1,
                    MainRef::L(ln) => ln.entries().len(),
                },
            };
        }
        // Relaxed: see the load above.
        cn.size.store(n, Ordering::Relaxed);
        n
    }

    /// Whether a read-only trie holds no entry (stops at the first one found).
    pub(crate) fn is_empty_frozen(&self) -> bool {
        let mut it = RawIter::new(self);
        // SAFETY: `it` walks `self`.
        unsafe { it.next(self) }.is_none()
    }
}
