//! Constructions of new main nodes from old ones (the paper's `insertedAt`, `updatedAt`,
//! `removedAt`, `renewed`, `toCompressed`, `toContracted`, `dual`, and the L-node updates).
//!
//! Each construction builds its nodes for publication in generation `gen` (the generation of the
//! I-node whose GCAS will publish them, which is their birth) and records in a [`Txn`] what the
//! new node removes from the live tree besides the old node itself (retired if the GCAS commits,
//! `reclaim.rs` N1) and what it allocated besides the returned node (freed if the GCAS fails).
//! Kept branches need no bookkeeping: they stay in the live tree under the new node.
//! Constructions never publish anything.

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::node::{
    Branch, BranchRef, CNode, CRef, Gen, INode, LNode, LRef, Main, MainRef, SNode, TNode,
    HASH_BITS, W,
};
use super::reclaim::{Retired, Txn};
use super::RawCtrie;

type Branches<K, V> = SmallVec<[Branch<K, V>; 32]>;

/// A C-node from `bitmap` and `branches`, or (below the root) the T-node of its only S-node:
/// `toContracted`.
fn contracted<K, V>(gen: Gen, bitmap: u32, lev: u32, branches: &[Branch<K, V>]) -> *mut Main<K, V> {
    if lev > 0 && branches.len() == 1 {
        if let BranchRef::S(s) = branches[0].get() {
            return TNode::alloc(gen, s);
        }
    }
    CNode::alloc(gen, bitmap, |k| branches[k])
}

/// `cn` with branch `b` inserted at position `pos` for the new slot `flag`.
pub(crate) fn inserted<K, V>(
    gen: Gen,
    cn: CRef<'_, K, V>,
    pos: usize,
    flag: u32,
    b: Branch<K, V>,
) -> *mut Main<K, V> {
    let old = cn.branches();
    CNode::alloc(gen, cn.bitmap() | flag, |k| match k.cmp(&pos) {
        core::cmp::Ordering::Less => old[k],
        core::cmp::Ordering::Equal => b,
        core::cmp::Ordering::Greater => old[k - 1],
    })
}

/// `cn` with the branch at `pos` replaced by `b`. The caller accounts for the replaced branch
/// (dropped, or moved into `b`).
pub(crate) fn updated<K, V>(
    gen: Gen,
    cn: CRef<'_, K, V>,
    pos: usize,
    b: Branch<K, V>,
) -> *mut Main<K, V> {
    let old = cn.branches();
    CNode::alloc(gen, cn.bitmap(), |k| if k == pos { b } else { old[k] })
}

/// `cn` with the branch at `pos` replaced by `b`, then contracted (used by cleanParent).
pub(crate) fn updated_contracted<K, V>(
    gen: Gen,
    cn: CRef<'_, K, V>,
    pos: usize,
    b: Branch<K, V>,
    lev: u32,
) -> *mut Main<K, V> {
    let mut bs: Branches<K, V> = cn.branches().iter().copied().collect();
    bs[pos] = b;
    contracted(gen, cn.bitmap(), lev, &bs)
}

/// `cn` without the branch at `pos` (slot `flag`), contracted. The caller accounts for the
/// removed branch.
pub(crate) fn removed<K, V>(
    gen: Gen,
    cn: CRef<'_, K, V>,
    pos: usize,
    flag: u32,
    lev: u32,
) -> *mut Main<K, V> {
    let mut bs: Branches<K, V> = cn.branches().iter().copied().collect();
    bs.remove(pos);
    contracted(gen, cn.bitmap() & !flag, lev, &bs)
}

/// Two S-nodes whose hashes agree below `lev`, placed under a fresh chain of single-slot C-nodes
/// until their 5-bit chunks differ, or in an L-node once the hash is exhausted: `dual`.
/// Returns the main node for a fresh I-node at level `lev`; everything is born in `gen`.
pub(crate) fn dual<K, V>(
    txn: &mut Txn<K, V>,
    x: *mut SNode<K, V>,
    y: *mut SNode<K, V>,
    lev: u32,
    gen: Gen,
) -> *mut Main<K, V> {
    // SAFETY: `x` and `y` are live (read while pinned / owned by the operation).
    let (xh, yh) = unsafe { ((*x).hash, (*y).hash) };
    if lev >= HASH_BITS {
        debug_assert_eq!(xh, yh);
        return LNode::alloc(gen, &[x, y]);
    }
    let (xi, yi) = ((xh >> lev) & 0x1f, (yh >> lev) & 0x1f);
    if xi != yi {
        let bitmap = (1u32 << xi) | (1u32 << yi);
        let (first, second) = if xi < yi { (x, y) } else { (y, x) };
        CNode::alloc(gen, bitmap, |k| {
            Branch::snode(if k == 0 { first } else { second })
        })
    } else {
        let sub = dual(txn, x, y, lev + W, gen);
        let sub = txn.fresh_main(sub);
        let inode = txn.fresh_inode(INode::alloc(gen, sub));
        CNode::alloc(gen, 1u32 << xi, |_| Branch::inode(inode))
    }
}

/// An L-node with `sn` added, replacing the entry at `replace` if any.
pub(crate) fn lnode_inserted<K, V>(
    txn: &mut Txn<K, V>,
    gen: Gen,
    ln: LRef<'_, K, V>,
    replace: Option<usize>,
    sn: *mut SNode<K, V>,
) -> *mut Main<K, V> {
    let mut es: SmallVec<[*mut SNode<K, V>; 8]> = SmallVec::new();
    es.push(sn);
    for (k, &e) in ln.entries().iter().enumerate() {
        if Some(k) == replace {
            txn.drop_branch(Branch::snode(e));
        } else {
            es.push(e);
        }
    }
    LNode::alloc(gen, &es)
}

/// An L-node without the entry at `idx`; a T-node if one entry remains.
pub(crate) fn lnode_removed<K, V>(
    txn: &mut Txn<K, V>,
    gen: Gen,
    ln: LRef<'_, K, V>,
    idx: usize,
) -> *mut Main<K, V> {
    let mut es: SmallVec<[*mut SNode<K, V>; 8]> = SmallVec::new();
    for (k, &e) in ln.entries().iter().enumerate() {
        if k == idx {
            txn.drop_branch(Branch::snode(e));
        } else {
            es.push(e);
        }
    }
    if es.len() == 1 {
        TNode::alloc(gen, es[0])
    } else {
        LNode::alloc(gen, &es)
    }
}

impl<K, V> RawCtrie<K, V> {
    /// `cn` with its I-node child at `pos` copied into generation `gen`, sharing that child's
    /// committed main node: the paper's `renewed`, restricted to the child on the operation's
    /// path. The old I-node leaves the live tree; its main node does not (it moves to the copy).
    ///
    /// The paper renews every I-node of the C-node at once. Renewing only the one about to be
    /// entered is just as correct: no step of the algorithm assumes that the children of a
    /// C-node share a generation (each walk compares every child's generation with its start
    /// generation before entering it, and renews it if they differ), and each remaining child is
    /// renewed when a walk first enters it. It is much cheaper, because renewing a child reads
    /// its main node (two cache misses): after every snapshot, the paper's version pays that for
    /// all ~32 children of each C-node on a written path, this one for one.
    ///
    /// # Safety
    /// `cn` is live while pinned by `guard`, and its branch at `pos` is an I-node.
    pub(crate) unsafe fn renewed_at(
        &self,
        txn: &mut Txn<K, V>,
        cn: CRef<'_, K, V>,
        pos: usize,
        gen: Gen,
        guard: &Guard,
    ) -> *mut Main<K, V> {
        let old = cn.branch(pos);
        let BranchRef::I(c) = old.get() else {
            unreachable!("renewing an S-node")
        };
        // SAFETY: `c` is live while pinned.
        let m = unsafe { self.gcas_read(c, guard) };
        let copy = txn.fresh_inode(INode::alloc(gen, m));
        txn.drop_branch(old);
        // Seeded bug (ci/mutants.sh): also retire the main node, which lives on in the copy.
        if cfg!(ctrie_mutant = "renewed_main_retired") {
            txn.drop_node(Retired::main(m));
        }
        updated(gen, cn, pos, Branch::inode(copy))
    }

    /// `cn` with tombed I-node children replaced by their S-nodes, contracted: `toCompressed`.
    /// Each tombed I-node leaves the live tree with its T-node; the S-node moves up.
    ///
    /// # Safety
    /// `cn` is live while pinned by `guard`.
    pub(crate) unsafe fn compressed(
        &self,
        txn: &mut Txn<K, V>,
        gen: Gen,
        cn: CRef<'_, K, V>,
        lev: u32,
        guard: &Guard,
    ) -> *mut Main<K, V> {
        let mut bs: Branches<K, V> = SmallVec::new();
        for &b in cn.branches() {
            match b.get() {
                BranchRef::I(c) => {
                    // SAFETY: `c` and its committed main are live while pinned.
                    let m = unsafe { self.gcas_read(c, guard) };
                    if let MainRef::T(tn) = unsafe { Main::view(m) } {
                        txn.drop_branch(b);
                        txn.drop_node(Retired::main(m));
                        bs.push(Branch::snode(tn.sn));
                    } else {
                        bs.push(b);
                    }
                }
                BranchRef::S(_) => bs.push(b),
            }
        }
        contracted(gen, cn.bitmap(), lev, &bs)
    }
}
