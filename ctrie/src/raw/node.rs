//! Node types of the Ctrie (names from the paper) and their allocation.
//!
//! * [`INode`]: the only mutable cell; an atomic pointer to a main node and a generation.
//! * main nodes, all starting with the common header [`Main`]:
//!   [`CNode`] (bitmap + dense array of [`Branch`]es), [`TNode`] (a tomb: an S-node left alone
//!   below the root, to be merged into the parent) and [`LNode`] (S-nodes whose full 64-bit hashes
//!   collide). The GCAS *failed* marker of the paper is represented as a tag bit on
//!   [`Main::prev`] (see `gcas.rs`), so it needs no allocation.
//! * [`SNode`]: an immutable key, value and full hash.
//!
//! Every node records the generation it was born in (see `reclaim.rs`; an I-node's generation
//! is its birth). Nodes are allocated through the `sync` shim so that loom can track them.
//! Nothing in this file decides *when* a node is freed; it only knows *how*.

use core::marker::PhantomData;
use core::ptr;

use super::shadow;
use crate::sync::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use crate::sync::{AtomicPtr, AtomicUsize, Ordering};

/// A generation: compared by value, unique per snapshot/clear (see `sync::next_generation`).
pub(crate) type Gen = u64;

/// Bits of the hash consumed per level.
pub(crate) const W: u32 = 5;
/// The hash is exhausted once the level reaches this many bits; L-nodes live there.
pub(crate) const HASH_BITS: u32 = 64;

/// The kind of a main node, stored in its header.
#[repr(u8)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(clippy::enum_variant_names)] // the paper's names
pub(crate) enum Kind {
    CNode,
    TNode,
    LNode,
}

/// Header shared by every main node (C-node, T-node, L-node).
#[repr(C)]
pub(crate) struct Main<K, V> {
    /// GCAS bookkeeping: null once the node is committed; while a GCAS is pending, the main node
    /// it replaces, possibly tagged with [`crate::raw::gcas::FAILED`].
    pub(crate) prev: AtomicPtr<Main<K, V>>,
    /// The generation of the commit that published it (the generation of its I-node).
    pub(crate) birth: Gen,
    /// The debug oracle's reference count (`shadow.rs`).
    #[cfg(debug_assertions)]
    pub(crate) shadow: std::sync::atomic::AtomicUsize,
    pub(crate) kind: Kind,
    /// C-node: the bitmap. L-node: the number of entries. T-node: unused.
    pub(crate) aux: u32,
    _marker: PhantomData<*const (K, V)>,
}

/// A multi-way node: a 32-bit bitmap and `popcount(bitmap)` branches in slot order.
#[repr(C)]
pub(crate) struct CNode<K, V> {
    pub(crate) hdr: Main<K, V>,
    /// Cached number of entries below this node, or [`UNKNOWN_SIZE`]. Only ever computed through
    /// a read-only snapshot, where the whole subtree is frozen (see `iter.rs`).
    pub(crate) size: AtomicUsize,
    branches: [Branch<K, V>; 0],
}

/// Marks [`CNode::size`] as not computed yet.
pub(crate) const UNKNOWN_SIZE: usize = usize::MAX;

/// A tomb: the single S-node left in a C-node below the root after a removal.
#[repr(C)]
pub(crate) struct TNode<K, V> {
    pub(crate) hdr: Main<K, V>,
    pub(crate) sn: *mut SNode<K, V>,
}

/// A list of S-nodes whose full hashes are equal (created once the hash bits are exhausted).
/// Never holds two entries with equal keys, and always at least two entries.
#[repr(C)]
pub(crate) struct LNode<K, V> {
    pub(crate) hdr: Main<K, V>,
    entries: [*mut SNode<K, V>; 0],
}

/// The only mutable cell of the trie.
#[repr(C)]
pub(crate) struct INode<K, V> {
    /// Its generation, which is also its birth: an I-node is published in the generation it is
    /// created for.
    pub(crate) gen: Gen,
    pub(crate) main: AtomicPtr<Main<K, V>>,
    /// The debug oracle's reference count, and the main node it last saw committed here
    /// (`shadow.rs`).
    #[cfg(debug_assertions)]
    pub(crate) shadow: std::sync::atomic::AtomicUsize,
    #[cfg(debug_assertions)]
    pub(crate) shadow_main: std::sync::atomic::AtomicPtr<Main<K, V>>,
}

/// An immutable key/value pair with the key's full hash.
#[repr(C)]
pub(crate) struct SNode<K, V> {
    /// The generation of the commit that published it: set by the insertion that publishes it
    /// (before its GCAS; see `ops.rs`), never changed once published.
    pub(crate) birth: Gen,
    /// The debug oracle's reference count (`shadow.rs`).
    #[cfg(debug_assertions)]
    pub(crate) shadow: std::sync::atomic::AtomicUsize,
    pub(crate) hash: u64,
    pub(crate) key: K,
    pub(crate) value: V,
}

/// A branch of a C-node: a tagged pointer to an I-node (tag 0) or an S-node (tag 1). The tag is
/// set and cleared with the strict-provenance address APIs, so the pointer keeps its provenance
/// (no integer-to-pointer casts; Miri checks this).
pub(crate) struct Branch<K, V> {
    raw: *mut u8,
    _marker: PhantomData<*const (K, V)>,
}

impl<K, V> Clone for Branch<K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for Branch<K, V> {}
impl<K, V> PartialEq for Branch<K, V> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw
    }
}

/// A decoded [`Branch`].
pub(crate) enum BranchRef<K, V> {
    I(*mut INode<K, V>),
    S(*mut SNode<K, V>),
}

const SNODE_TAG: usize = 1;

impl<K, V> Branch<K, V> {
    pub(crate) fn inode(i: *mut INode<K, V>) -> Self {
        debug_assert_eq!(i.addr() & SNODE_TAG, 0);
        Branch {
            raw: i.cast(),
            _marker: PhantomData,
        }
    }
    pub(crate) fn snode(s: *mut SNode<K, V>) -> Self {
        debug_assert_eq!(s.addr() & SNODE_TAG, 0);
        Branch {
            raw: s.cast::<u8>().map_addr(|a| a | SNODE_TAG),
            _marker: PhantomData,
        }
    }
    pub(crate) fn get(self) -> BranchRef<K, V> {
        if self.raw.addr() & SNODE_TAG == 0 {
            BranchRef::I(self.raw.cast())
        } else {
            BranchRef::S(self.raw.map_addr(|a| a & !SNODE_TAG).cast())
        }
    }
}

/// A hint to load the cache line holding `p`. It never faults and changes nothing, whatever `p`
/// is, so it is safe on any pointer; a tagged [`Branch`] pointer lies in the same line as the
/// node's first word. A no-op where it is not implemented, and under Miri and loom.
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(all(target_arch = "x86_64", not(miri), not(ctrie_loom)))]
    // SAFETY: SSE is part of the x86_64 baseline, so the instruction exists; a prefetch reads
    // and writes no memory and never faults.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast())
    };
    #[cfg(not(all(target_arch = "x86_64", not(miri), not(ctrie_loom))))]
    let _ = p;
}

/// Slot of `hash` at level `lev` and the bit for it in a C-node bitmap.
#[inline]
pub(crate) fn flag(hash: u64, lev: u32) -> u32 {
    1u32 << ((hash >> lev) & 0x1f)
}

/// Position of the branch for `flag` in the dense array of a C-node with `bitmap`.
#[inline]
pub(crate) fn pos(bitmap: u32, flag: u32) -> usize {
    popcount(bitmap & (flag - 1)) as usize
}

/// Number of set bits. Every lookup computes one per level, on the critical path of the walk,
/// so on x86-64 builds without the `popcnt` target feature (the default target) the instruction
/// is used after a (cached) run-time check instead of the ~12-instruction portable fallback:
/// measured 1.5x faster lookups at 1M keys.
#[inline(always)]
pub(crate) fn popcount(x: u32) -> u32 {
    #[cfg(all(
        target_arch = "x86_64",
        not(target_feature = "popcnt"),
        not(miri),
        not(ctrie_loom)
    ))]
    {
        if std::arch::is_x86_feature_detected!("popcnt") {
            let n: u32;
            // SAFETY: the CPU supports POPCNT (checked just above); the instruction reads one
            // register and writes another and the flags, touching no memory.
            unsafe {
                core::arch::asm!("popcnt {0:e}, {1:e}", lateout(reg) n, in(reg) x, options(pure, nomem, nostack));
            }
            return n;
        }
    }
    x.count_ones()
}

fn raw_alloc<T>(layout: Layout) -> *mut T {
    // SAFETY: every layout used here has a non-zero size (each node has a header).
    let p = unsafe { alloc(layout) };
    if p.is_null() {
        handle_alloc_error(layout);
    }
    p.cast()
}

impl<K, V> Main<K, V> {
    fn header(birth: Gen, kind: Kind, aux: u32) -> Self {
        shadow::count_alloc(Some(kind));
        Main {
            prev: AtomicPtr::new(ptr::null_mut()),
            birth,
            #[cfg(debug_assertions)]
            shadow: std::sync::atomic::AtomicUsize::new(0),
            kind,
            aux,
            _marker: PhantomData,
        }
    }

    /// Frees the allocation of a main node without touching its children.
    ///
    /// # Safety
    /// `m` was allocated by this module, is unreachable, and nobody will access it again.
    pub(crate) unsafe fn free_shell(m: *mut Main<K, V>) {
        // SAFETY: the caller guarantees `m` is a live allocation made here; its header says which
        // layout it was allocated with.
        unsafe {
            shadow::count_free(Some((*m).kind));
            let layout = match (*m).kind {
                Kind::CNode => CNode::<K, V>::layout(popcount((*m).aux) as usize),
                Kind::LNode => LNode::<K, V>::layout((*m).aux as usize),
                Kind::TNode => Layout::new::<TNode<K, V>>(),
            };
            dealloc(m.cast(), layout);
        }
    }
}

impl<K, V> CNode<K, V> {
    fn layout(n: usize) -> Layout {
        Layout::new::<CNode<K, V>>()
            .extend(Layout::array::<Branch<K, V>>(n).expect("at most 32 branches"))
            .expect("small layout")
            .0
            .pad_to_align()
    }

    /// Allocates a C-node with `bitmap` whose branches are produced, in slot order, by `fill`,
    /// for publication in generation `birth`. It starts with a null `prev` (committed as soon as
    /// it is published by a plain store or a GCAS).
    pub(crate) fn alloc(
        birth: Gen,
        bitmap: u32,
        mut fill: impl FnMut(usize) -> Branch<K, V>,
    ) -> *mut Main<K, V> {
        let n = popcount(bitmap) as usize;
        let p: *mut CNode<K, V> = raw_alloc(Self::layout(n));
        // SAFETY: `p` is a fresh allocation for a C-node header followed by `n` branches.
        unsafe {
            p.write(CNode {
                hdr: Main::header(birth, Kind::CNode, bitmap),
                size: AtomicUsize::new(UNKNOWN_SIZE),
                branches: [],
            });
            let arr = ptr::addr_of_mut!((*p).branches).cast::<Branch<K, V>>();
            for k in 0..n {
                arr.add(k).write(fill(k));
            }
        }
        p.cast()
    }

    #[inline]
    pub(crate) fn bitmap(&self) -> u32 {
        self.hdr.aux
    }
}

/// A C-node seen through the pointer of its allocation, which is what its trailing array of
/// branches is read through. A `&CNode` covers only the header (`size_of::<CNode>()` bytes), so
/// a slice of branches derived from it would reach past the reference: Tree Borrows accepts
/// that, Stacked Borrows does not (crossbeam-skiplist's `TowerRef` solves the same problem the
/// same way). Derefs to the header.
pub(crate) struct CRef<'a, K, V> {
    p: *const CNode<K, V>,
    _life: PhantomData<&'a CNode<K, V>>,
}

impl<K, V> Clone for CRef<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for CRef<'_, K, V> {}

impl<K, V> core::ops::Deref for CRef<'_, K, V> {
    type Target = CNode<K, V>;
    #[inline]
    fn deref(&self) -> &CNode<K, V> {
        // SAFETY: `p` points to a live C-node for `'a` (see `CRef::new`).
        unsafe { &*self.p }
    }
}

impl<'a, K, V> CRef<'a, K, V> {
    /// # Safety
    /// `p` is the pointer of a live C-node allocation (carrying the provenance of all of it,
    /// as the pointer stored in an I-node does), live and immutable for `'a`.
    #[inline]
    pub(crate) unsafe fn new(p: *const CNode<K, V>) -> Self {
        CRef {
            p,
            _life: PhantomData,
        }
    }

    /// The allocation's pointer.
    #[inline]
    pub(crate) fn as_ptr(self) -> *const CNode<K, V> {
        self.p
    }

    #[inline]
    pub(crate) fn branches(self) -> &'a [Branch<K, V>] {
        // SAFETY: a C-node is always allocated with `popcount(bitmap)` initialised branches
        // following the header, and is immutable once published; `p` has the provenance of the
        // whole allocation (`CRef::new`).
        unsafe {
            core::slice::from_raw_parts(
                ptr::addr_of!((*self.p).branches).cast::<Branch<K, V>>(),
                popcount(self.bitmap()) as usize,
            )
        }
    }

    /// Starts loading the first cache line of every child (an S-node's hash and key, an
    /// I-node's main pointer) without waiting for any of them. An iterator entering a C-node
    /// visits all its children next; issued together, their cache misses overlap instead of
    /// coming one per entry.
    #[inline]
    pub(crate) fn prefetch_children(self) {
        for b in self.branches() {
            prefetch(b.raw);
        }
    }

    /// The branch at position `pos`, which must be below `popcount(bitmap)` (as [`pos`] returns
    /// for a flag that is set).
    #[inline]
    pub(crate) fn branch(self, pos: usize) -> Branch<K, V> {
        debug_assert!(pos < popcount(self.bitmap()) as usize);
        // SAFETY: `pos` is in bounds (contract, checked in debug builds) of the initialised
        // branch array following the header, read through the allocation's pointer.
        unsafe {
            *ptr::addr_of!((*self.p).branches)
                .cast::<Branch<K, V>>()
                .add(pos)
        }
    }
}

impl<K, V> LNode<K, V> {
    fn layout(n: usize) -> Layout {
        Layout::new::<LNode<K, V>>()
            .extend(Layout::array::<*mut SNode<K, V>>(n).expect("L-node length"))
            .expect("L-node layout")
            .0
            .pad_to_align()
    }

    /// Allocates an L-node holding `entries` (at least two, pairwise distinct keys), for
    /// publication in generation `birth`.
    pub(crate) fn alloc(birth: Gen, entries: &[*mut SNode<K, V>]) -> *mut Main<K, V> {
        debug_assert!(entries.len() >= 2);
        let n = entries.len();
        let p: *mut LNode<K, V> = raw_alloc(Self::layout(n));
        // SAFETY: fresh allocation sized for the header plus `n` entry pointers.
        unsafe {
            p.write(LNode {
                hdr: Main::header(birth, Kind::LNode, n as u32),
                entries: [],
            });
            let arr = ptr::addr_of_mut!((*p).entries).cast::<*mut SNode<K, V>>();
            ptr::copy_nonoverlapping(entries.as_ptr(), arr, n);
        }
        p.cast()
    }
}

/// An L-node seen through the pointer of its allocation, for its trailing array of entries
/// (see [`CRef`] for why not through a `&LNode`).
pub(crate) struct LRef<'a, K, V> {
    p: *const LNode<K, V>,
    _life: PhantomData<&'a LNode<K, V>>,
}

impl<K, V> Clone for LRef<'_, K, V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, V> Copy for LRef<'_, K, V> {}

impl<'a, K, V> LRef<'a, K, V> {
    /// # Safety
    /// As [`CRef::new`], for an L-node.
    #[inline]
    pub(crate) unsafe fn new(p: *const LNode<K, V>) -> Self {
        LRef {
            p,
            _life: PhantomData,
        }
    }

    /// The allocation's pointer.
    #[inline]
    pub(crate) fn as_ptr(self) -> *const LNode<K, V> {
        self.p
    }

    #[inline]
    pub(crate) fn entries(self) -> &'a [*mut SNode<K, V>] {
        // SAFETY: allocated with `aux` initialised entries, immutable once published; `p` has
        // the provenance of the whole allocation (`LRef::new`).
        unsafe {
            core::slice::from_raw_parts(
                ptr::addr_of!((*self.p).entries).cast::<*mut SNode<K, V>>(),
                (*self.p).hdr.aux as usize,
            )
        }
    }
}

impl<K, V> TNode<K, V> {
    /// Allocates a tomb of `sn`, for publication in generation `birth`.
    pub(crate) fn alloc(birth: Gen, sn: *mut SNode<K, V>) -> *mut Main<K, V> {
        let p: *mut TNode<K, V> = raw_alloc(Layout::new::<TNode<K, V>>());
        // SAFETY: fresh allocation of the right layout.
        unsafe {
            p.write(TNode {
                hdr: Main::header(birth, Kind::TNode, 0),
                sn,
            })
        };
        p.cast()
    }
}

impl<K, V> INode<K, V> {
    pub(crate) fn alloc(gen: Gen, main: *mut Main<K, V>) -> *mut INode<K, V> {
        let p: *mut INode<K, V> = raw_alloc(Layout::new::<INode<K, V>>());
        // SAFETY: fresh allocation of the right layout.
        unsafe {
            p.write(INode {
                gen,
                main: AtomicPtr::new(main),
                #[cfg(debug_assertions)]
                shadow: std::sync::atomic::AtomicUsize::new(0),
                #[cfg(debug_assertions)]
                shadow_main: std::sync::atomic::AtomicPtr::new(main),
            })
        };
        shadow::count_alloc(None);
        p
    }

    /// Points an I-node that was never published at another main node.
    ///
    /// # Safety
    /// `i` was allocated by [`INode::alloc`] and no other thread has seen it.
    pub(crate) unsafe fn set_unpublished_main(i: *mut INode<K, V>, main: *mut Main<K, V>) {
        // SAFETY: per the contract, `i` is ours. Relaxed: it is published later by a Release CAS.
        unsafe {
            (*i).main.store(main, Ordering::Relaxed);
            #[cfg(debug_assertions)]
            (*i).shadow_main
                .store(main, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// # Safety
    /// `i` was allocated by [`INode::alloc`], is unreachable and will not be accessed again.
    pub(crate) unsafe fn free_shell(i: *mut INode<K, V>) {
        shadow::count_free(None);
        // SAFETY: per the contract; I-nodes own no drop glue besides their allocation.
        unsafe { dealloc(i.cast(), Layout::new::<INode<K, V>>()) }
    }
}

impl<K, V> SNode<K, V> {
    /// Allocates an S-node; its birth is set by the insertion that publishes it.
    pub(crate) fn alloc(key: K, value: V, hash: u64) -> *mut SNode<K, V> {
        let p: *mut SNode<K, V> = raw_alloc(Layout::new::<SNode<K, V>>());
        // SAFETY: fresh allocation of the right layout.
        unsafe {
            p.write(SNode {
                birth: 0,
                #[cfg(debug_assertions)]
                shadow: std::sync::atomic::AtomicUsize::new(0),
                hash,
                key,
                value,
            })
        };
        shadow::count_snode_alloc();
        p
    }

    /// Drops the key and value and frees the node.
    ///
    /// # Safety
    /// `s` was allocated by [`SNode::alloc`], is unreachable and will not be accessed again.
    pub(crate) unsafe fn destroy(s: *mut SNode<K, V>) {
        // SAFETY: per the contract, we are the last user: drop the contents in place, then free.
        unsafe {
            shadow::count_snode_free();
            ptr::drop_in_place(s);
            dealloc(s.cast(), Layout::new::<SNode<K, V>>());
        }
    }
}

/// A view of a main node by kind.
pub(crate) enum MainRef<'a, K, V> {
    C(CRef<'a, K, V>),
    T(&'a TNode<K, V>),
    L(LRef<'a, K, V>),
}

impl<K, V> Main<K, V> {
    /// Views a main node by its kind.
    ///
    /// # Safety
    /// `m` is the pointer of a live main node's allocation (as stored in an I-node), live for at
    /// least `'a`.
    #[inline]
    pub(crate) unsafe fn view<'a>(m: *const Main<K, V>) -> MainRef<'a, K, V> {
        // SAFETY: the header says which node type the allocation holds; all are `repr(C)` with
        // the header first; `m` carries the whole allocation's provenance (contract).
        unsafe {
            match (*m).kind {
                Kind::CNode => MainRef::C(CRef::new(m.cast())),
                Kind::TNode => MainRef::T(&*m.cast::<TNode<K, V>>()),
                Kind::LNode => MainRef::L(LRef::new(m.cast())),
            }
        }
    }

    /// Loads `prev`; see `gcas.rs` for the protocol.
    #[inline]
    pub(crate) fn load_prev(&self) -> *mut Main<K, V> {
        // Acquire: pairs with the Release CAS that rolled `prev` forward (commit or failure), so a
        // reader that sees the decision also sees everything the decider saw.
        self.prev.load(Ordering::Acquire)
    }
}

/// Node-level tests that never pin the epoch, so that they also run under Miri's Stacked
/// Borrows (`ci/miri.sh` runs them with it: crossbeam-epoch itself trips Stacked Borrows, so the
/// rest of the suite runs under Tree Borrows). They read every trailing array through the views
/// the trie uses, which must derive it from the allocation's pointer, not from a reference to
/// the header.
#[cfg(all(test, not(ctrie_loom)))]
mod tests {
    use super::*;

    fn view<'a>(m: *mut Main<u64, String>) -> MainRef<'a, u64, String> {
        // SAFETY: `m` is a live main node allocated by the caller, freed only after the view.
        unsafe { Main::view(m) }
    }

    #[test]
    fn cnode_branches_are_read_through_the_allocation() {
        let s: Vec<_> = (0..3u64)
            .map(|k| SNode::alloc(k, format!("v{k}"), k))
            .collect();
        let inner = CNode::alloc(1, 0, |_| unreachable!());
        let i = INode::alloc(1, inner);
        // Slots 1, 7 and 30 hold S-nodes, slot 12 the I-node.
        let bitmap = (1 << 1) | (1 << 7) | (1 << 12) | (1 << 30);
        let cn = CNode::alloc(1, bitmap, |k| match k {
            0 => Branch::snode(s[0]),
            1 => Branch::snode(s[1]),
            2 => Branch::inode(i),
            _ => Branch::snode(s[2]),
        });
        let MainRef::C(c) = view(cn) else {
            panic!("not a C-node")
        };
        assert_eq!(c.bitmap(), bitmap);
        assert_eq!(c.branches().len(), 4);
        c.prefetch_children();
        let mut values = Vec::new();
        for (k, b) in c.branches().iter().enumerate() {
            assert!(*b == c.branch(k));
            match b.get() {
                // SAFETY: the S-nodes are live until freed below.
                BranchRef::S(p) => values.push(unsafe { (*p).value.clone() }),
                BranchRef::I(p) => assert_eq!(p, i),
            }
        }
        assert_eq!(values, ["v0", "v1", "v2"]);
        assert!(c.branch(pos(bitmap, 1 << 12)) == Branch::inode(i));
        // SAFETY: nothing else refers to these nodes; each is freed once.
        unsafe {
            Main::free_shell(cn);
            INode::free_shell(i);
            Main::free_shell(inner);
            for p in s {
                SNode::destroy(p);
            }
        }
    }

    #[test]
    fn lnode_entries_and_tnode_are_read_through_the_allocation() {
        let s: Vec<_> = (0..5u64)
            .map(|k| SNode::alloc(k, format!("v{k}"), 42))
            .collect();
        let ln = LNode::alloc(1, &s);
        let MainRef::L(l) = view(ln) else {
            panic!("not an L-node")
        };
        // SAFETY: the S-nodes are live until freed below.
        let keys: Vec<u64> = l.entries().iter().map(|&p| unsafe { (*p).key }).collect();
        assert_eq!(keys, [0, 1, 2, 3, 4]);
        let tn = TNode::alloc(1, s[3]);
        let MainRef::T(t) = view(tn) else {
            panic!("not a T-node")
        };
        // SAFETY: as above.
        assert_eq!(unsafe { &(*t.sn).value }, "v3");
        // SAFETY: nothing else refers to these nodes; each is freed once.
        unsafe {
            Main::free_shell(ln);
            Main::free_shell(tn);
            for p in s {
                SNode::destroy(p);
            }
        }
    }
}
