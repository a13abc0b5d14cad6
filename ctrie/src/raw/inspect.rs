//! A test-only inspector of the live structure: how many nodes of each kind a walk from the
//! root reaches, and how deep it goes. Results of operations cannot show a tomb that was left
//! behind or a chain that was not contracted; this can.

use super::node::{BranchRef, INode, Main, MainRef};
use super::RawCtrie;

/// Node counts of the structure reachable from a root.
#[derive(Debug, Default, PartialEq, Eq, Clone, Copy)]
pub(crate) struct Shape {
    pub(crate) inodes: usize,
    pub(crate) cnodes: usize,
    pub(crate) tnodes: usize,
    pub(crate) lnodes: usize,
    /// S-nodes in C-node branches (not those inside tombs or L-nodes).
    pub(crate) snodes: usize,
    /// The number of I-nodes on the longest path from the root.
    pub(crate) depth: usize,
}

impl<K, V> RawCtrie<K, V> {
    /// The shape of the structure reachable from the current root.
    pub(crate) fn shape(&self) -> Shape {
        let guard = &crossbeam_epoch::pin();
        let mut shape = Shape::default();
        // SAFETY: pinned; every node read is reachable from the root while pinned (R1).
        unsafe {
            let root = self.read_root(false, guard);
            self.shape_of(root, 1, &mut shape, guard);
        }
        shape
    }

    /// # Safety
    /// Pinned by `guard`; `i` is reachable.
    unsafe fn shape_of(
        &self,
        i: *mut INode<K, V>,
        depth: usize,
        shape: &mut Shape,
        guard: &crossbeam_epoch::Guard,
    ) {
        shape.inodes += 1;
        shape.depth = shape.depth.max(depth);
        // SAFETY: forwarded.
        unsafe {
            match Main::view(self.gcas_read(i, guard)) {
                MainRef::C(cn) => {
                    shape.cnodes += 1;
                    for b in cn.branches() {
                        match b.get() {
                            BranchRef::I(c) => self.shape_of(c, depth + 1, shape, guard),
                            BranchRef::S(_) => shape.snodes += 1,
                        }
                    }
                }
                MainRef::T(_) => shape.tnodes += 1,
                MainRef::L(_) => shape.lnodes += 1,
            }
        }
    }
}

#[cfg(all(test, not(ctrie_loom)))]
mod tests {
    use super::super::node::SNode;
    use super::super::ops::{InsertCond, Inserted};
    use super::*;

    fn insert(t: &RawCtrie<u64, u64>, key: u64, hash: u64) {
        let guard = &crossbeam_epoch::pin();
        let sn = SNode::alloc(key, key, hash);
        // SAFETY: pinned; `sn` is fresh and has hash `hash`.
        let res = unsafe { t.insert(hash, &mut || sn, InsertCond::Always, &|k| *k == key, guard) };
        assert!(matches!(res, Inserted::Yes { prev: None }));
    }

    fn remove(t: &RawCtrie<u64, u64>, key: u64, hash: u64) -> bool {
        let guard = &crossbeam_epoch::pin();
        // SAFETY: pinned.
        unsafe { t.remove(hash, &|k| *k == key, None, guard) }.is_some()
    }

    fn get(t: &RawCtrie<u64, u64>, key: u64, hash: u64) -> bool {
        let guard = &crossbeam_epoch::pin();
        // SAFETY: pinned.
        unsafe { t.lookup(hash, &|k| *k == key, guard) }.is_some()
    }

    /// A removal whose tomb, once merged into its parent, leaves a tomb one level up: the
    /// paper's `iremove` cleans every level as it unwinds, so no tomb and no chain is left.
    #[test]
    fn removal_cleans_tombs_at_every_level() {
        // `a` and `b` share their slots at levels 0 and 5 and differ at level 10; `c` sits in
        // another root slot. Structure: root {I1, c}, I1 -> {I2}, I2 -> {a, b}.
        let (a, b, c) = ((1, 0u64), (2, 1u64 << 10), (3, 1u64));
        let t = RawCtrie::<u64, u64>::new();
        for (k, h) in [a, b, c] {
            insert(&t, k, h);
        }
        let before = t.shape();
        assert_eq!((before.inodes, before.depth, before.snodes), (3, 3, 3));

        // Removing `a` tombs I2 ({b} contracts); merging that tomb into I1 leaves I1 with the
        // single S-node b, a tomb too, which must be merged into the root.
        assert!(remove(&t, a.0, a.1));
        let after = t.shape();
        assert_eq!(
            after,
            Shape {
                inodes: 1,
                cnodes: 1,
                tnodes: 0,
                lnodes: 0,
                snodes: 2,
                depth: 1
            },
            "a tomb or a chain was left behind"
        );
        assert!(!get(&t, a.0, a.1) && get(&t, b.0, b.1) && get(&t, c.0, c.1));
    }
}
