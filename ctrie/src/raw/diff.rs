//! The difference between two read-only tries, walked in lock-step by hash, skipping every pair
//! of subtrees the two share.
//!
//! Snapshots of one trie share structure: a write after a snapshot copies only the C-nodes on
//! its path (into a new generation) and keeps every other branch as it was, so two snapshots
//! some writes apart differ only along those paths. The walk compares the two tries slot by slot
//! from the root and descends only where the branches differ:
//!
//! * equal branches (the same S-node, or the same I-node) are skipped at once;
//! * I-nodes are renewed per generation (a snapshot makes each later write copy the I-nodes on
//!   its path), so two different I-nodes may still share their main node: their committed mains
//!   are read and a pair of equal mains is skipped too;
//! * a T-node stands for its S-node (a tomb and the S-node it was merged back into compare
//!   equal), a lone S-node facing a C-node is *lifted* to a one-entry C-node at that level (so a
//!   key pushed down by a neighbour, or contracted up after a removal, is matched with itself),
//!   and from the level where the hash is exhausted, or wherever an L-node appears, the two
//!   subtrees are compared as lists of entries, keys matched by the map's own equality.
//!
//! The cost is the number of slots of the differing C-nodes on the changed paths (at most 32
//! per C-node, about `changes x depth x 32` pointer comparisons), not the size. Two unrelated
//! tries with the same hash function are still compared correctly, by walking both entirely.
//!
//! Read-only tries are frozen (R4 in `reclaim.rs`), so pointers read from them stay valid while
//! they live; the walk pins only inside each `next` call, to GCAS-read I-nodes, and never
//! depends on the reclamation scheme beyond that.

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use crate::raw::node::{flag, pos, Branch, BranchRef, INode, Main, MainRef, SNode, HASH_BITS, W};
use crate::raw::RawCtrie;

/// One difference, between an entry of the older trie and one of the newer.
pub(crate) enum RawDiffItem<K, V> {
    /// Only in the newer trie.
    Added(*mut SNode<K, V>),
    /// Only in the older trie.
    Removed(*mut SNode<K, V>),
    /// A key present in both with different S-nodes: (older, newer).
    Updated(*mut SNode<K, V>, *mut SNode<K, V>),
}

/// What a branch leads to, with T-nodes already replaced by their S-nodes.
enum Sub<K, V> {
    Empty,
    S(*mut SNode<K, V>),
    C(*mut Main<K, V>),
    L(*mut Main<K, V>),
}

/// One side of a frame: the branches of a C-node at the frame's level, a lone S-node lifted to a
/// one-entry C-node at that level, or nothing.
enum Side<K, V> {
    Empty,
    C(*mut Main<K, V>),
    One(*mut SNode<K, V>),
}

impl<K, V> Side<K, V> {
    /// # Safety
    /// The node is live (frozen in its read-only trie, R4).
    unsafe fn bitmap(self, lev: u32) -> u32 {
        // SAFETY: forwarded.
        unsafe {
            match self {
                Side::Empty => 0,
                Side::One(s) => flag((*s).hash, lev),
                Side::C(m) => match Main::view(m) {
                    MainRef::C(cn) => cn.bitmap(),
                    _ => unreachable!("a C-node side"),
                },
            }
        }
    }

    /// The branch in the slot `flag` if any.
    ///
    /// # Safety
    /// As [`Side::bitmap`].
    unsafe fn branch(self, flag: u32, lev: u32) -> Option<Branch<K, V>> {
        // SAFETY: forwarded.
        unsafe {
            match self {
                Side::Empty => None,
                Side::One(s) => (self.bitmap(lev) == flag).then(|| Branch::snode(s)),
                Side::C(m) => match Main::view(m) {
                    MainRef::C(cn) => {
                        let bmp = cn.bitmap();
                        (bmp & flag != 0).then(|| cn.branch(pos(bmp, flag)))
                    }
                    _ => unreachable!("a C-node side"),
                },
            }
        }
    }
}

/// `Copy` without bounds on `K`/`V` (the derive would add them): these are pointers.
macro_rules! copy {
    ($($t:ident),*) => {$(
        impl<K, V> Clone for $t<K, V> {
            fn clone(&self) -> Self {
                *self
            }
        }
        impl<K, V> Copy for $t<K, V> {}
    )*};
}
copy!(RawDiffItem, Sub, Side);

/// A pair of C-nodes (or lifted S-nodes) at level `lev` being compared slot by slot.
struct Frame<K, V> {
    older: Side<K, V>,
    newer: Side<K, V>,
    lev: u32,
    /// Slots (of the union of both bitmaps) not compared yet.
    todo: u32,
}

/// What one step of the walk works with: the two tries, the key equality, the pin.
struct Cx<'t, K, V> {
    older: &'t RawCtrie<K, V>,
    newer: &'t RawCtrie<K, V>,
    eq: &'t dyn Fn(&K, &K) -> bool,
    guard: &'t Guard,
}

/// A lazy lock-step walk of two read-only tries (see the module docs).
pub(crate) struct RawDiff<K, V> {
    stack: SmallVec<[Frame<K, V>; 14]>,
    /// Differences found and not yet returned (a step can find several).
    pending: SmallVec<[RawDiffItem<K, V>; 4]>,
}

impl<K, V> RawDiff<K, V> {
    /// Starts comparing the read-only tries `older` and `newer`.
    pub(crate) fn new(older: &RawCtrie<K, V>, newer: &RawCtrie<K, V>) -> Self {
        debug_assert!(older.read_only && newer.read_only);
        let guard = &crossbeam_epoch::pin();
        let mut d = RawDiff {
            stack: SmallVec::new(),
            pending: SmallVec::new(),
        };
        // SAFETY: each trie owns its root; pinned while reading their mains, which are frozen
        // C-nodes (R4; a root's main is never contracted).
        unsafe {
            let a = older.gcas_read(older.fixed_root(), guard);
            let b = newer.gcas_read(newer.fixed_root(), guard);
            if a != b {
                d.push(Side::C(a), Side::C(b), 0);
            }
        }
        d
    }

    /// # Safety
    /// The sides are live (frozen in their tries).
    unsafe fn push(&mut self, older: Side<K, V>, newer: Side<K, V>, lev: u32) {
        // SAFETY: forwarded.
        let todo = unsafe { older.bitmap(lev) | newer.bitmap(lev) };
        // The frame compares every child next (most of them, when the subtrees differ much):
        // start loading them all, so that their cache misses overlap, as the iterator does.
        for side in [older, newer] {
            if let Side::C(m) = side {
                // SAFETY: forwarded.
                if let MainRef::C(cn) = unsafe { Main::view(m) } {
                    cn.prefetch_children();
                }
            }
        }
        self.stack.push(Frame {
            older,
            newer,
            lev,
            todo,
        });
    }

    /// The next difference, or `None` once the tries have been compared.
    ///
    /// # Safety
    /// `older` and `newer` are the tries this walk was created on, alive while the returned
    /// S-nodes are used; `eq` is the key equality of the map, and both tries use the same hash
    /// function.
    pub(crate) unsafe fn next(
        &mut self,
        older: &RawCtrie<K, V>,
        newer: &RawCtrie<K, V>,
        eq: &dyn Fn(&K, &K) -> bool,
    ) -> Option<RawDiffItem<K, V>> {
        if let Some(item) = self.pending.pop() {
            return Some(item);
        }
        // Pinned while this call GCAS-reads I-nodes (R4: what it returns outlives the pin).
        let guard = &crossbeam_epoch::pin();
        loop {
            if let Some(item) = self.pending.pop() {
                return Some(item);
            }
            let f = self.stack.last_mut()?;
            if f.todo == 0 {
                self.stack.pop();
                continue;
            }
            let bit = f.todo & f.todo.wrapping_neg();
            f.todo &= !bit;
            let (o, n, lev) = (f.older, f.newer, f.lev);
            // SAFETY: the sides are frozen parts of their tries (contract).
            unsafe {
                let (bo, bn) = (o.branch(bit, lev), n.branch(bit, lev));
                if bo.is_some() && bo == bn {
                    continue; // the same S-node or the same I-node: a shared subtree
                }
                let so = sub(older, bo, guard);
                let sn = sub(newer, bn, guard);
                let cx = Cx {
                    older,
                    newer,
                    eq,
                    guard,
                };
                self.compare(&cx, so, sn, lev + W);
            }
        }
    }

    /// Compares two subtrees at level `lev`: reports what it can at once, pushes a frame for the
    /// rest.
    ///
    /// # Safety
    /// As [`RawDiff::next`]; `o` is part of `older`, `n` of `newer`.
    unsafe fn compare(&mut self, cx: &Cx<'_, K, V>, o: Sub<K, V>, n: Sub<K, V>, lev: u32) {
        let eq = cx.eq;
        // SAFETY: forwarded.
        unsafe {
            match (o, n) {
                (Sub::Empty, Sub::Empty) => {}
                (Sub::S(x), Sub::S(y)) if x == y => {}
                (Sub::C(x), Sub::C(y)) | (Sub::L(x), Sub::L(y)) if x == y => {}
                (Sub::S(x), Sub::S(y)) => {
                    if (*x).hash == (*y).hash && eq(&(*x).key, &(*y).key) {
                        self.pending.push(RawDiffItem::Updated(x, y));
                    } else {
                        // Pushed in reverse: `pending` pops from the end.
                        self.pending.push(RawDiffItem::Added(y));
                        self.pending.push(RawDiffItem::Removed(x));
                    }
                }
                (Sub::Empty, Sub::S(y)) => self.pending.push(RawDiffItem::Added(y)),
                (Sub::S(x), Sub::Empty) => self.pending.push(RawDiffItem::Removed(x)),
                _ if lev >= HASH_BITS || matches!(o, Sub::L(_)) || matches!(n, Sub::L(_)) => {
                    self.compare_lists(cx, o, n);
                }
                _ => self.push(side(o), side(n), lev),
            }
        }
    }

    /// Compares two subtrees entry by entry (collision lists, where the hash is exhausted).
    ///
    /// # Safety
    /// As [`RawDiff::compare`].
    unsafe fn compare_lists(&mut self, cx: &Cx<'_, K, V>, o: Sub<K, V>, n: Sub<K, V>) {
        let eq = cx.eq;
        let mut xs = SmallVec::<[*mut SNode<K, V>; 8]>::new();
        let mut ys = SmallVec::<[*mut SNode<K, V>; 8]>::new();
        // SAFETY: forwarded; the S-nodes collected are frozen parts of their tries.
        unsafe {
            entries(cx.older, o, &mut xs, cx.guard);
            entries(cx.newer, n, &mut ys, cx.guard);
            let mut matched = SmallVec::<[bool; 8]>::from_elem(false, ys.len());
            let mut found = SmallVec::<[RawDiffItem<K, V>; 8]>::new();
            for &x in &xs {
                let hit = ys.iter().enumerate().position(|(j, &y)| {
                    !matched[j] && (*x).hash == (*y).hash && eq(&(*x).key, &(*y).key)
                });
                match hit {
                    Some(j) => {
                        matched[j] = true;
                        if ys[j] != x {
                            found.push(RawDiffItem::Updated(x, ys[j]));
                        }
                    }
                    None => found.push(RawDiffItem::Removed(x)),
                }
            }
            for (j, &y) in ys.iter().enumerate() {
                if !matched[j] {
                    found.push(RawDiffItem::Added(y));
                }
            }
            // `pending` pops from the end: reverse to report in the order found.
            self.pending.extend(found.into_iter().rev());
        }
    }
}

/// What the branch `b` of a C-node of `t` leads to.
///
/// # Safety
/// `b` belongs to a C-node of the read-only trie `t` (frozen, R4); pinned by `guard`.
unsafe fn sub<K, V>(t: &RawCtrie<K, V>, b: Option<Branch<K, V>>, guard: &Guard) -> Sub<K, V> {
    match b.map(Branch::get) {
        None => Sub::Empty,
        Some(BranchRef::S(s)) => Sub::S(s),
        // SAFETY: forwarded.
        Some(BranchRef::I(i)) => unsafe { main_sub(t, i, guard) },
    }
}

/// What the I-node `i` of `t` holds.
///
/// # Safety
/// `i` is reachable from the read-only trie `t`; pinned by `guard`.
unsafe fn main_sub<K, V>(t: &RawCtrie<K, V>, i: *mut INode<K, V>, guard: &Guard) -> Sub<K, V> {
    // SAFETY: the committed main of an I-node of a read-only trie is frozen and owned by that
    // trie's structure once read (R4), so it outlives the pin.
    unsafe {
        let m = t.gcas_read(i, guard);
        match Main::view(m) {
            MainRef::C(_) => Sub::C(m),
            MainRef::T(tn) => Sub::S(tn.sn),
            MainRef::L(_) => Sub::L(m),
        }
    }
}

fn side<K, V>(s: Sub<K, V>) -> Side<K, V> {
    match s {
        Sub::Empty => Side::Empty,
        Sub::S(x) => Side::One(x),
        Sub::C(m) => Side::C(m),
        Sub::L(_) => unreachable!("L-nodes are compared as lists"),
    }
}

/// Appends every entry of the subtree `s` of `t` to `out`.
///
/// # Safety
/// `s` is part of the read-only trie `t`; pinned by `guard`.
unsafe fn entries<K, V>(
    t: &RawCtrie<K, V>,
    s: Sub<K, V>,
    out: &mut SmallVec<[*mut SNode<K, V>; 8]>,
    guard: &Guard,
) {
    // SAFETY: forwarded; frozen nodes (R4).
    unsafe {
        match s {
            Sub::Empty => {}
            Sub::S(x) => out.push(x),
            Sub::L(m) => {
                if let MainRef::L(ln) = Main::view(m) {
                    out.extend(ln.entries().iter().copied());
                }
            }
            Sub::C(m) => {
                if let MainRef::C(cn) = Main::view(m) {
                    for &b in cn.branches() {
                        entries(t, sub(t, Some(b), guard), out, guard);
                    }
                }
            }
        }
    }
}
