//! A small per-thread cache of freed node blocks, in front of the global allocator.
//!
//! # Why
//! Nodes are freed in batches, when crossbeam-epoch runs the deferred frees of a grace period
//! (up to 64 per bag), often on another thread than the one that allocated them. glibc's
//! per-thread cache keeps only 7 blocks per size, so most of a batch goes back to the arena and
//! the next allocations take the slow path (`_int_malloc`, `malloc_consolidate`, arena locks
//! contended with the thread that allocated the blocks). A thread taking read-only snapshots
//! while a writer runs spent over a third of its time there: its I-node and RDCSS descriptor per
//! snapshot. This cache keeps up to [`CAP`] freed blocks per size class per thread.
//!
//! Measured (A/B with `benches` `probe`, `snapshot_system` and the snapcache `apply` bench):
//! no gain beyond the run-to-run noise, so this experiment is reverted in the next commit.
//!
//! # What
//! Blocks of up to [`MAX_SIZE`] bytes and alignment up to [`ALIGN`] are rounded up to a multiple
//! of 16 bytes (their *class*) and always allocated from the global allocator with that rounded
//! layout, so a block can serve any node of its class. A freed block is pushed on an intrusive
//! list of its class in the freeing thread's cache, unless that list holds [`CAP`] blocks
//! already; allocation pops from the list first. A thread's cache is returned to the allocator
//! when the thread exits. The memory a thread can hold this way is bounded:
//! `CAP * (16 + 32 + ... + MAX_SIZE)` bytes, 86 KiB.
//!
//! The cache only changes *which* free block a new node gets, never *when* a node is freed:
//! every block reaches [`free`] only after the reclamation scheme (`reclaim.rs`) decided that
//! nobody can reach it. It is off under Miri, loom, the sanitizers and fuzzing (cfgs `miri`,
//! `ctrie_loom`, `crossbeam_sanitize`, `fuzzing`), so that every free reaches the allocator
//! there and a premature free shows as a use-after-free; `--cfg ctrie_no_pool` turns it off in
//! any build.

use core::cell::RefCell;
use core::ptr;

use crate::sync::alloc::{alloc as global_alloc, dealloc, handle_alloc_error, Layout};

/// Size granularity of the classes, and the alignment of every pooled block.
pub(crate) const ALIGN: usize = 16;
/// The largest pooled block: a C-node of 32 pointer-sized branches (288 bytes) fits.
pub(crate) const MAX_SIZE: usize = 320;
/// Number of size classes (16, 32, ..., [`MAX_SIZE`] bytes).
const CLASSES: usize = MAX_SIZE / ALIGN;
/// Blocks kept per class per thread.
pub(crate) const CAP: u32 = 32;

/// Whether nodes go through the cache in this build (see the module docs).
const ENABLED: bool = !cfg!(any(
    miri,
    ctrie_loom,
    crossbeam_sanitize,
    fuzzing,
    ctrie_no_pool
));

/// The class of a layout (0-based), if it is pooled.
#[inline]
fn class_of(layout: Layout) -> Option<usize> {
    if ENABLED && layout.size() <= MAX_SIZE && layout.align() <= ALIGN {
        // `size > 0` for every node (each has a header), so the class index is in bounds.
        Some(layout.size().div_ceil(ALIGN).max(1) - 1)
    } else {
        None
    }
}

/// The layout every block of class `c` is allocated with.
#[inline]
fn class_layout(c: usize) -> Layout {
    // SAFETY: the size is a non-zero multiple of the alignment, a power of two; no overflow.
    unsafe { Layout::from_size_align_unchecked((c + 1) * ALIGN, ALIGN) }
}

/// A freed block, linking to the next free block of its class.
struct Free {
    next: *mut Free,
}

/// One thread's cache: an intrusive list and its length per class.
pub(crate) struct Pool {
    heads: [*mut Free; CLASSES],
    lens: [u32; CLASSES],
}

impl Pool {
    pub(crate) const fn new() -> Self {
        Pool {
            heads: [ptr::null_mut(); CLASSES],
            lens: [0; CLASSES],
        }
    }

    /// A cached block of class `c`, if any.
    fn take(&mut self, c: usize) -> Option<*mut u8> {
        let head = self.heads[c];
        if head.is_null() {
            return None;
        }
        // SAFETY: every block on the list was put there by `put`, which wrote its link; the
        // block is ours alone until taken off the list.
        self.heads[c] = unsafe { (*head).next };
        self.lens[c] -= 1;
        Some(head.cast())
    }

    /// Caches the block `p` of class `c`, or gives it back if the class is full.
    ///
    /// # Safety
    /// `p` was allocated with `class_layout(c)` and nobody will access it again.
    unsafe fn put(&mut self, c: usize, p: *mut u8) -> Result<(), *mut u8> {
        if self.lens[c] >= CAP {
            return Err(p);
        }
        let f = p.cast::<Free>();
        // SAFETY: the block is at least 16 bytes, 16-aligned, and ours (contract).
        unsafe {
            f.write(Free {
                next: self.heads[c],
            })
        };
        self.heads[c] = f;
        self.lens[c] += 1;
        Ok(())
    }

    /// Number of cached blocks of class `c`.
    #[cfg(test)]
    fn len(&self, c: usize) -> u32 {
        self.lens[c]
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for c in 0..CLASSES {
            while let Some(p) = self.take(c) {
                // SAFETY: cached blocks were allocated with their class layout and are unused.
                unsafe { dealloc(p, class_layout(c)) };
            }
        }
    }
}

crate::sync::thread_local! {
    /// This thread's cache. (No `const` initializer: loom's `thread_local!` does not accept one;
    /// under loom the cache is off anyway.)
    #[allow(clippy::missing_const_for_thread_local)]
    static POOL: RefCell<Pool> = RefCell::new(Pool::new());
}

/// Allocates a block for `layout`, from this thread's cache if it has one of its class.
pub(crate) fn alloc(layout: Layout) -> *mut u8 {
    let (c, real) = match class_of(layout) {
        Some(c) => (Some(c), class_layout(c)),
        None => (None, layout),
    };
    if let Some(c) = c {
        // `try_*`: during thread exit the cache may be gone; nothing here re-enters, but a
        // failed borrow would just mean allocating afresh.
        let cached = POOL.try_with(|p| p.try_borrow_mut().ok().and_then(|mut p| p.take(c)));
        if let Ok(Some(p)) = cached {
            return p;
        }
    }
    // SAFETY: every layout used here has a non-zero size (each node has a header).
    let p = unsafe { global_alloc(real) };
    if p.is_null() {
        handle_alloc_error(real);
    }
    p
}

/// Frees a block allocated by [`alloc`] with the same `layout`.
///
/// # Safety
/// `p` came from [`alloc`] with `layout`, and nobody will access it again.
pub(crate) unsafe fn free(p: *mut u8, layout: Layout) {
    let Some(c) = class_of(layout) else {
        // SAFETY: not pooled, so allocated with `layout` itself (contract).
        unsafe { dealloc(p, layout) };
        return;
    };
    let kept = POOL.try_with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        // SAFETY: `p` was allocated with the class layout (`alloc` rounds every pooled layout
        // up) and is dead (contract).
        unsafe { pool.put(c, p) }.ok()
    });
    if kept != Ok(Some(())) {
        // SAFETY: full cache, or the thread's cache is already gone (thread exit): give the
        // block back with the layout it was allocated with.
        unsafe { dealloc(p, class_layout(c)) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_to_16_bytes() {
        let l = |s| Layout::from_size_align(s, 8).unwrap();
        if ENABLED {
            assert_eq!(class_of(l(1)), Some(0));
            assert_eq!(class_of(l(16)), Some(0));
            assert_eq!(class_of(l(17)), Some(1));
            assert_eq!(class_of(l(288)), Some(17));
            assert_eq!(class_of(l(MAX_SIZE)), Some(CLASSES - 1));
        }
        assert_eq!(class_of(l(MAX_SIZE + 1)), None);
        assert_eq!(class_of(Layout::from_size_align(64, 32).unwrap()), None);
    }

    /// The cache proper (also under Miri, where nodes bypass it): blocks come back last in,
    /// first out, at most `CAP` per class are kept, and dropping the cache frees them (Miri
    /// reports a leak otherwise).
    #[test]
    fn keeps_at_most_cap_blocks_and_frees_them_on_drop() {
        let mut pool = Pool::new();
        let c = 2;
        let blocks: Vec<*mut u8> = (0..CAP + 1)
            // SAFETY: non-zero size.
            .map(|_| unsafe { global_alloc(class_layout(c)) })
            .collect();
        for &b in &blocks[..CAP as usize] {
            // SAFETY: allocated with the class layout, unused.
            assert!(unsafe { pool.put(c, b) }.is_ok());
        }
        let last = blocks[CAP as usize];
        // SAFETY: as above.
        assert_eq!(unsafe { pool.put(c, last) }, Err(last));
        // SAFETY: refused, so still ours.
        unsafe { dealloc(last, class_layout(c)) };
        assert_eq!(pool.len(c), CAP);
        assert_eq!(pool.take(c), Some(blocks[CAP as usize - 1]));
        assert_eq!(pool.take(c + 1), None);
        assert_eq!(pool.len(c), CAP - 1);
        // SAFETY: taken from the pool, allocated with the class layout.
        unsafe { dealloc(blocks[CAP as usize - 1], class_layout(c)) };
        drop(pool);
    }

    #[test]
    fn a_freed_block_is_reused_by_the_same_thread() {
        let layout = Layout::from_size_align(24, 8).unwrap();
        let a = alloc(layout);
        // SAFETY: allocated just above with `layout`, unused.
        unsafe { free(a, layout) };
        let b = alloc(Layout::from_size_align(32, 8).unwrap());
        if ENABLED {
            assert_eq!(
                a, b,
                "a 24-byte and a 32-byte block share the 32-byte class"
            );
        }
        // SAFETY: allocated with this layout just above.
        unsafe { free(b, Layout::from_size_align(32, 8).unwrap()) };
    }
}
