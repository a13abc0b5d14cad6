//! The operations of the paper: lookup, insert, remove, clean and cleanParent.
//!
//! Each operation reads the root, remembers its generation as `start_gen` and walks down,
//! GCAS-reading every I-node's main node. An I-node of another generation is renewed before it
//! is entered (its parent's C-node is GCASed to a copy in which that I-node is copied into
//! `start_gen`; see `RawCtrie::renewed_at` for why only the one on the path), a T-node makes the
//! walker compress the parent and restart, and any failed GCAS restarts the operation from the
//! root (L-node removal included).
//!
//! The key comparison and the hash are supplied by the facade; here keys are compared with a
//! closure only after the full 64-bit hashes are equal.

use core::ptr;

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::build;
use super::node::{flag, pos, Branch, BranchRef, CRef, INode, Main, MainRef, SNode, W};
use super::reclaim::{Retired, Txn};
use super::RawCtrie;

/// When an insertion should take place.
pub(crate) enum InsertCond<'a, V> {
    /// Always (upsert).
    Always,
    /// Only if the key is absent.
    IfAbsent,
    /// Only if the key is present.
    IfPresent,
    /// Only if the key is present with a value satisfying the predicate.
    IfValue(&'a dyn Fn(&V) -> bool),
    /// Unless the key is present with a value satisfying the predicate.
    Unless(&'a dyn Fn(&V) -> bool),
}

impl<V> InsertCond<'_, V> {
    fn when_absent(&self) -> bool {
        matches!(
            self,
            InsertCond::Always | InsertCond::IfAbsent | InsertCond::Unless(_)
        )
    }
    fn when_present(&self, v: &V) -> bool {
        match self {
            InsertCond::Always | InsertCond::IfPresent => true,
            InsertCond::IfAbsent => false,
            InsertCond::IfValue(p) => p(v),
            InsertCond::Unless(p) => !p(v),
        }
    }
}

/// The outcome of an insertion.
pub(crate) enum Inserted<K, V> {
    /// The new S-node is in the trie; `prev` is the S-node it replaced, if any.
    Yes { prev: Option<*mut SNode<K, V>> },
    /// The condition failed; the new S-node still belongs to the caller. `current` is the
    /// S-node found for the key, if any.
    No { current: Option<*mut SNode<K, V>> },
}

/// The I-nodes a removal walked through, root first: at most one per level (levels 0 to 60 by
/// 5, and the L-node level), so it never spills to the heap.
type Path<K, V> = SmallVec<[*mut INode<K, V>; 16]>;

/// Stamps a fresh S-node with the generation of the GCAS that is about to publish it (its
/// birth, `reclaim.rs`); an attempt in a later generation stamps it again.
///
/// # Safety
/// `sn` is fresh: no other thread reads it (a failed attempt that installed it was rolled back
/// without anyone reading its branches).
unsafe fn born<K, V>(sn: *mut SNode<K, V>, gen: u64) -> *mut SNode<K, V> {
    // SAFETY: per the contract.
    unsafe { (*sn).birth = gen };
    sn
}

/// One step of a walk: where we are.
struct Walk<K, V> {
    start_gen: u64,
    i: *mut INode<K, V>,
    parent: *mut INode<K, V>,
    lev: u32,
}

impl<K, V> RawCtrie<K, V> {
    /// # Safety
    /// Pinned by `guard`.
    unsafe fn walk_from_root(&self, guard: &Guard) -> Walk<K, V> {
        // SAFETY: pinned.
        let root = unsafe { self.read_root(false, guard) };
        // SAFETY: the root is live while pinned.
        Walk {
            start_gen: unsafe { (*root).gen },
            i: root,
            parent: ptr::null_mut(),
            lev: 0,
        }
    }

    /// Renews the I-node at `pos` of `cn` (the committed main of `i`) into generation `gen`.
    /// Returns whether the GCAS committed; on `false` the operation restarts from the root.
    ///
    /// # Safety
    /// Pinned by `guard`; `m`/`cn` were GCAS-read from `i`; the branch at `pos` is an I-node.
    #[allow(clippy::too_many_arguments)]
    unsafe fn renew(
        &self,
        txn: &mut Txn<K, V>,
        i: *mut INode<K, V>,
        m: *mut Main<K, V>,
        cn: CRef<'_, K, V>,
        pos: usize,
        gen: u64,
        guard: &Guard,
    ) -> bool {
        // SAFETY: forwarded; the GCAS settles `txn`.
        unsafe {
            txn.begin();
            let n = self.renewed_at(txn, cn, pos, gen, guard);
            self.gcas(i, m, n, txn, guard)
        }
    }

    /// Finds the S-node for a key with full hash `hash` for which `eq` holds.
    ///
    /// # Safety
    /// Pinned by `guard`; the returned node is live while `guard` is (and, in a read-only trie,
    /// while the trie is, R4).
    pub(crate) unsafe fn lookup(
        &self,
        hash: u64,
        eq: &dyn Fn(&K) -> bool,
        guard: &Guard,
    ) -> Option<*mut SNode<K, V>> {
        let mut txn = Txn::new();
        // SAFETY: every node is read while pinned (R1).
        unsafe {
            'restart: loop {
                let mut w = self.walk_from_root(guard);
                loop {
                    let m = self.gcas_read(w.i, guard);
                    match Main::view(m) {
                        MainRef::C(cn) => {
                            let flag = flag(hash, w.lev);
                            let bmp = cn.bitmap();
                            if bmp & flag == 0 {
                                return None;
                            }
                            let pos = pos(bmp, flag);
                            match cn.branch(pos).get() {
                                BranchRef::I(c) => {
                                    if self.read_only || (*c).gen == w.start_gen {
                                        w.parent = w.i;
                                        w.i = c;
                                        w.lev += W;
                                    } else if !self.renew(
                                        &mut txn,
                                        w.i,
                                        m,
                                        cn,
                                        pos,
                                        w.start_gen,
                                        guard,
                                    ) {
                                        continue 'restart;
                                    }
                                }
                                BranchRef::S(s) => {
                                    return ((*s).hash == hash && eq(&(*s).key)).then_some(s);
                                }
                            }
                        }
                        MainRef::T(tn) => {
                            if self.read_only {
                                let s = tn.sn;
                                return ((*s).hash == hash && eq(&(*s).key)).then_some(s);
                            }
                            self.clean(&mut txn, w.parent, w.lev - W, guard);
                            continue 'restart;
                        }
                        MainRef::L(ln) => {
                            return ln
                                .entries()
                                .iter()
                                .copied()
                                .find(|&s| (*s).hash == hash && eq(&(*s).key));
                        }
                    }
                }
            }
        }
    }

    /// Inserts the S-node `sn()` under `cond`, for a key with full hash `hash`.
    ///
    /// `sn` returns the S-node to insert, the same one on every call; it is called only once the
    /// walk has decided to store it (and before any bookkeeping starts, so that a panic in it
    /// leaves nothing half done), so an insertion the condition refuses need not build one. On
    /// [`Inserted::Yes`] the trie owns it; on [`Inserted::No`] the caller still owns it if it was
    /// built.
    ///
    /// # Safety
    /// Pinned by `guard`; `sn` returns a fresh, unpublished S-node with hash `hash` whose key
    /// `eq` holds for.
    pub(crate) unsafe fn insert(
        &self,
        hash: u64,
        sn: &mut dyn FnMut() -> *mut SNode<K, V>,
        cond: InsertCond<'_, V>,
        eq: &dyn Fn(&K) -> bool,
        guard: &Guard,
    ) -> Inserted<K, V> {
        debug_assert!(!self.read_only);
        let mut txn = Txn::new();
        // SAFETY: every node is read while pinned (R1); each GCAS settles `txn`.
        unsafe {
            'restart: loop {
                let mut w = self.walk_from_root(guard);
                loop {
                    let m = self.gcas_read(w.i, guard);
                    match Main::view(m) {
                        MainRef::C(cn) => {
                            let flag = flag(hash, w.lev);
                            let bmp = cn.bitmap();
                            let pos = pos(bmp, flag);
                            if bmp & flag == 0 {
                                if !cond.when_absent() {
                                    return Inserted::No { current: None };
                                }
                                let gen = (*w.i).gen;
                                let sn = born(sn(), gen);
                                txn.begin();
                                let n = build::inserted(gen, cn, pos, flag, Branch::snode(sn));
                                if self.gcas(w.i, m, n, &mut txn, guard) {
                                    return Inserted::Yes { prev: None };
                                }
                                continue 'restart;
                            }
                            let b = cn.branch(pos);
                            match b.get() {
                                BranchRef::I(c) => {
                                    if (*c).gen == w.start_gen {
                                        w.parent = w.i;
                                        w.i = c;
                                        w.lev += W;
                                    } else if !self.renew(
                                        &mut txn,
                                        w.i,
                                        m,
                                        cn,
                                        pos,
                                        w.start_gen,
                                        guard,
                                    ) {
                                        continue 'restart;
                                    }
                                }
                                BranchRef::S(s) if (*s).hash == hash && eq(&(*s).key) => {
                                    if !cond.when_present(&(*s).value) {
                                        return Inserted::No { current: Some(s) };
                                    }
                                    let gen = (*w.i).gen;
                                    let sn = born(sn(), gen);
                                    txn.begin();
                                    txn.drop_branch(b);
                                    let n = build::updated(gen, cn, pos, Branch::snode(sn));
                                    if self.gcas(w.i, m, n, &mut txn, guard) {
                                        return Inserted::Yes { prev: Some(s) };
                                    }
                                    continue 'restart;
                                }
                                BranchRef::S(s) => {
                                    if !cond.when_absent() {
                                        return Inserted::No { current: None };
                                    }
                                    let gen = (*w.i).gen;
                                    let sn = born(sn(), gen);
                                    txn.begin();
                                    // `s` moves from this C-node into the new sub-trie.
                                    let sub = build::dual(&mut txn, s, sn, w.lev + W, gen);
                                    let sub = txn.fresh_main(sub);
                                    let inode = txn.fresh_inode(INode::alloc(gen, sub));
                                    let n = build::updated(gen, cn, pos, Branch::inode(inode));
                                    if self.gcas(w.i, m, n, &mut txn, guard) {
                                        return Inserted::Yes { prev: None };
                                    }
                                    continue 'restart;
                                }
                            }
                        }
                        MainRef::T(_) => {
                            self.clean(&mut txn, w.parent, w.lev - W, guard);
                            continue 'restart;
                        }
                        MainRef::L(ln) => {
                            let found = ln.entries().iter().position(|&e| eq(&(*e).key));
                            match found {
                                Some(k) if !cond.when_present(&(*ln.entries()[k]).value) => {
                                    return Inserted::No {
                                        current: Some(ln.entries()[k]),
                                    };
                                }
                                None if !cond.when_absent() => {
                                    return Inserted::No { current: None }
                                }
                                _ => {}
                            }
                            let gen = (*w.i).gen;
                            let sn = born(sn(), gen);
                            txn.begin();
                            let n = build::lnode_inserted(&mut txn, gen, ln, found, sn);
                            if self.gcas(w.i, m, n, &mut txn, guard) {
                                return Inserted::Yes {
                                    prev: found.map(|k| ln.entries()[k]),
                                };
                            }
                            continue 'restart;
                        }
                    }
                }
            }
        }
    }

    /// Removes the key with full hash `hash` for which `eq` holds, if its value satisfies
    /// `cond`. Returns the removed S-node (released by the trie: live while `guard` is).
    ///
    /// # Safety
    /// Pinned by `guard`.
    pub(crate) unsafe fn remove(
        &self,
        hash: u64,
        eq: &dyn Fn(&K) -> bool,
        cond: Option<&dyn Fn(&V) -> bool>,
        guard: &Guard,
    ) -> Option<*mut SNode<K, V>> {
        debug_assert!(!self.read_only);
        let mut txn = Txn::new();
        // The I-nodes from the root down to `w.i`, for the clean-up as the paper's recursion
        // unwinds (`after_removal`).
        let mut path: Path<K, V> = SmallVec::new();
        // SAFETY: every node is read while pinned (R1); each GCAS settles `txn`.
        unsafe {
            'restart: loop {
                let mut w = self.walk_from_root(guard);
                path.clear();
                path.push(w.i);
                loop {
                    let m = self.gcas_read(w.i, guard);
                    match Main::view(m) {
                        MainRef::C(cn) => {
                            let flag = flag(hash, w.lev);
                            let bmp = cn.bitmap();
                            if bmp & flag == 0 {
                                return None;
                            }
                            let pos = pos(bmp, flag);
                            let b = cn.branch(pos);
                            match b.get() {
                                BranchRef::I(c) => {
                                    if (*c).gen == w.start_gen {
                                        w.parent = w.i;
                                        w.i = c;
                                        w.lev += W;
                                        path.push(c);
                                    } else if !self.renew(
                                        &mut txn,
                                        w.i,
                                        m,
                                        cn,
                                        pos,
                                        w.start_gen,
                                        guard,
                                    ) {
                                        continue 'restart;
                                    }
                                }
                                BranchRef::S(s) => {
                                    if (*s).hash != hash || !eq(&(*s).key) {
                                        return None;
                                    }
                                    if !cond.is_none_or(|c| c(&(*s).value)) {
                                        return None;
                                    }
                                    txn.begin();
                                    txn.drop_branch(b);
                                    let n = build::removed((*w.i).gen, cn, pos, flag, w.lev);
                                    if !self.gcas(w.i, m, n, &mut txn, guard) {
                                        continue 'restart;
                                    }
                                    self.after_removal(&mut txn, &path, hash, w.start_gen, guard);
                                    return Some(s);
                                }
                            }
                        }
                        MainRef::T(_) => {
                            self.clean(&mut txn, w.parent, w.lev - W, guard);
                            continue 'restart;
                        }
                        MainRef::L(ln) => {
                            let k = ln.entries().iter().position(|&e| eq(&(*e).key))?;
                            let s = ln.entries()[k];
                            if !cond.is_none_or(|c| c(&(*s).value)) {
                                return None;
                            }
                            txn.begin();
                            let n = build::lnode_removed(&mut txn, (*w.i).gen, ln, k);
                            if !self.gcas(w.i, m, n, &mut txn, guard) {
                                // Restart (the Go port answered "not found" here: a bug).
                                continue 'restart;
                            }
                            self.after_removal(&mut txn, &path, hash, w.start_gen, guard);
                            return Some(s);
                        }
                    }
                }
            }
        }
    }

    /// After a committed removal at the last I-node of `path` (the I-nodes walked from the
    /// root, one per level): the paper's `iremove` as its recursion unwinds. At every level below
    /// the root, deepest first, an I-node that now holds a tomb is merged into its parent
    /// (`cleanParent`). Merging a tomb can leave the parent's C-node with a single S-node, which
    /// contracts into a tomb one level up: checking only the deepest level would leave that one
    /// for a later operation on the path to clean (and pay a restart for).
    ///
    /// # Safety
    /// Pinned by `guard`; `path` was walked under it.
    unsafe fn after_removal(
        &self,
        txn: &mut Txn<K, V>,
        path: &[*mut INode<K, V>],
        hash: u64,
        start_gen: u64,
        guard: &Guard,
    ) {
        // The root (`path[0]`) never holds a tomb.
        for lev in (1..path.len()).rev() {
            let i = path[lev];
            // SAFETY: forwarded; the I-nodes of the path were read while pinned.
            unsafe {
                let m = self.gcas_read(i, guard);
                if let MainRef::T(tn) = Main::view(m) {
                    let (parent, lev) = (path[lev - 1], lev as u32 * W);
                    self.clean_parent(txn, parent, i, m, tn.sn, hash, lev, start_gen, guard);
                }
            }
        }
    }

    /// `clean`: GCASes `parent`'s C-node to its compressed form (tombed children resurrected).
    ///
    /// # Safety
    /// Pinned by `guard`; `parent` is live.
    unsafe fn clean(&self, txn: &mut Txn<K, V>, parent: *mut INode<K, V>, lev: u32, guard: &Guard) {
        debug_assert!(!parent.is_null(), "a tomb is never the root's main node");
        // SAFETY: forwarded; the GCAS settles `txn`.
        unsafe {
            let m = self.gcas_read(parent, guard);
            if let MainRef::C(cn) = Main::view(m) {
                txn.begin();
                let n = self.compressed(txn, (*parent).gen, cn, lev, guard);
                self.gcas(parent, m, n, txn, guard);
            }
        }
    }

    /// `cleanParent`: if `parent` still points at the tombed I-node `i` (whose tomb `tomb` holds
    /// `sn`), GCAS it to a contracted copy with `sn` resurrected; retry while the root
    /// generation is still `start_gen`. `i` and its tomb leave the live tree; `sn` moves up.
    ///
    /// # Safety
    /// Pinned by `guard`; `parent`, `i`, `tomb` and `sn` are live; `tomb` is `i`'s committed main
    /// node (a T-node, which never changes).
    #[allow(clippy::too_many_arguments)]
    unsafe fn clean_parent(
        &self,
        txn: &mut Txn<K, V>,
        parent: *mut INode<K, V>,
        i: *mut INode<K, V>,
        tomb: *mut Main<K, V>,
        sn: *mut SNode<K, V>,
        hash: u64,
        lev: u32,
        start_gen: u64,
        guard: &Guard,
    ) {
        // SAFETY: forwarded; each GCAS settles `txn`.
        unsafe {
            loop {
                let pm = self.gcas_read(parent, guard);
                let MainRef::C(cn) = Main::view(pm) else {
                    return;
                };
                let flag = flag(hash, lev - W);
                let bmp = cn.bitmap();
                if bmp & flag == 0 {
                    return; // somebody already removed the I-node
                }
                let pos = pos(bmp, flag);
                let b = cn.branch(pos);
                if b != Branch::inode(i) {
                    return;
                }
                txn.begin();
                txn.drop_branch(b);
                txn.drop_node(Retired::main(tomb));
                let n =
                    build::updated_contracted((*parent).gen, cn, pos, Branch::snode(sn), lev - W);
                if self.gcas(parent, pm, n, txn, guard) {
                    return;
                }
                if (*self.read_root(false, guard)).gen != start_gen {
                    return;
                }
            }
        }
    }
}
