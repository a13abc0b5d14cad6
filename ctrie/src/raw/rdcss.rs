//! RDCSS on the root (paper, Fig. 6): swap the root I-node only if the old root's main node is
//! still the one expected, as one atomic step.
//!
//! `rdcss(old, expected, new)` installs a descriptor in the root pointer (tag bit 1), then
//! *decides* it with a CAS on the descriptor's `state`: committed if `old`'s GCAS-read main is
//! still `expected`, aborted otherwise, and finally swings the root to `new` or back to `old`.
//! Deciding on a separate word (rather than by which root CAS wins) lets the initiator read the
//! outcome reliably even when a helper finished the job.
//!
//! Anyone who finds a descriptor completes it. Normal priority (`read_root(false)`) checks and
//! decides; abort priority (`read_root(true)`, used inside GCAS completion) decides *aborted*
//! if still undecided. The abort priority is what makes a GCAS on the root I-node and a snapshot
//! mutually exclusive: the GCAS decision reads the root, and aborts a snapshot in flight.

use crossbeam_epoch::Guard;

use super::node::{INode, Main};
use super::shadow;
use super::RawCtrie;
use crate::sync::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use crate::sync::{fence, AtomicU8, Ordering};

const UNDECIDED: u8 = 0;
const COMMITTED: u8 = 1;
const ABORTED: u8 = 2;

/// Tag of a descriptor in the root pointer.
const DESC: usize = 1;

/// An RDCSS descriptor: swap the root from `old` to `new` if `old`'s main is `expected`.
///
/// Most live in an allocation of their own ([`Descriptor::alloc`]). The first attempt of a
/// snapshot's freeze uses the one embedded in its era instead ([`Descriptor::for_era`], filled in
/// before the era is published and never written again but for `state`), which lives as long
/// as the era: the era outlives every thread pinned at its freeze, since it is freed through
/// the epoch after it dies, and its death comes after the freeze (`era.rs`).
pub(crate) struct Descriptor<K, V> {
    old: *mut INode<K, V>,
    expected: *mut Main<K, V>,
    new: *mut INode<K, V>,
    state: AtomicU8,
    /// Embedded in an era: freed with it, never by itself.
    embedded: bool,
}

impl<K, V> Descriptor<K, V> {
    /// A descriptor to embed in an era.
    pub(crate) fn for_era(
        old: *mut INode<K, V>,
        expected: *mut Main<K, V>,
        new: *mut INode<K, V>,
    ) -> Self {
        Descriptor {
            old,
            expected,
            new,
            state: AtomicU8::new(UNDECIDED),
            embedded: true,
        }
    }

    fn alloc(old: *mut INode<K, V>, expected: *mut Main<K, V>, new: *mut INode<K, V>) -> *mut Self {
        let layout = Layout::new::<Self>();
        // SAFETY: non-zero-sized layout.
        let p = unsafe { alloc(layout) }.cast::<Self>();
        if p.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: fresh allocation of the right layout.
        unsafe {
            p.write(Descriptor {
                embedded: false,
                ..Descriptor::for_era(old, expected, new)
            })
        };
        p
    }

    /// Whether `d` lives in an era (then it is never freed by itself).
    ///
    /// # Safety
    /// `d` is live.
    pub(crate) unsafe fn is_embedded(d: *const Self) -> bool {
        // SAFETY: per the contract; `embedded` is never written after publication.
        unsafe { (*d).embedded }
    }

    /// # Safety
    /// `d` came from [`Descriptor::alloc`] and nobody can access it any more.
    pub(crate) unsafe fn free(d: *mut Self) {
        // SAFETY: per the contract; the descriptor has no drop glue.
        unsafe {
            debug_assert!(!(*d).embedded, "freeing an era's descriptor");
            dealloc(d.cast(), Layout::new::<Self>())
        }
    }
}

impl<K, V> RawCtrie<K, V> {
    /// Reads the root I-node, completing (normal priority) or aborting (`abort`) a descriptor.
    ///
    /// # Safety
    /// Must be called while pinned by `guard`; the result is live while `guard` is.
    #[inline]
    pub(crate) unsafe fn read_root(&self, abort: bool, guard: &Guard) -> *mut INode<K, V> {
        loop {
            // Acquire: pairs with the Release CAS that installed the root (or descriptor), making
            // its contents visible.
            let r = self.root.load(Ordering::Acquire);
            if r.addr() & DESC == 0 {
                return r.cast();
            }
            // SAFETY: a descriptor read while pinned is live (retired through the epoch).
            unsafe { self.rdcss_complete(r.map_addr(|a| a & !DESC).cast(), abort, guard) };
        }
    }

    /// Decides the descriptor `d` (if undecided) and swings the root accordingly.
    #[cold]
    unsafe fn rdcss_complete(&self, d: *mut Descriptor<K, V>, abort: bool, guard: &Guard) {
        // SAFETY: `d` is live while pinned; its `old` is live because the root pointer (which
        // holds `d`) still owns it, or our pin predates its retirement.
        unsafe {
            // Acquire: see the decision's causes if already decided.
            let mut state = (*d).state.load(Ordering::Acquire);
            if state == UNDECIDED {
                let decision = if abort {
                    ABORTED
                } else {
                    // F_RDCSS: the install of `d` (which we read from the root, or made) must be
                    // ordered before our read of `old.main`. Pairs with F_GCAS in `gcas.rs`: a
                    // GCAS on the root I-node either sees `d` (and aborts it) or we see its write.
                    fence(Ordering::SeqCst);
                    let m = self.gcas_read((*d).old, guard);
                    if m == (*d).expected {
                        COMMITTED
                    } else {
                        ABORTED
                    }
                };
                // The decision and the debug oracle's record of a committed swap are one step
                // (a no-op wrapper in release builds): the new root gains the root's edge.
                state = shadow::decide(|| {
                    // AcqRel: Release publishes the decision; Acquire (also on failure) orders
                    // us after a rival decision we then act on.
                    match (*d).state.compare_exchange(
                        UNDECIDED,
                        decision,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            if decision == COMMITTED {
                                shadow::on_root_swap((*d).old, (*d).new);
                            }
                            decision
                        }
                        Err(actual) => actual,
                    }
                });
            }
            let target = if state == COMMITTED {
                (*d).new
            } else {
                (*d).old
            };
            let tagged = d.cast::<u8>().map_addr(|a| a | DESC);
            // AcqRel: Release publishes the new root's contents to readers of the root; Relaxed on
            // failure: someone else already swung it, we read nothing from the result.
            let _ = self.root.compare_exchange(
                tagged,
                target.cast(),
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// Atomically replaces the root `old` by `new` if `old`'s committed main is still
    /// `expected`. Returns whether it did.
    ///
    /// On success the root pointer's reference to `old` passes to the caller and the caller's
    /// reference to `new` passes to the root pointer. On failure nothing changes hands, and
    /// `new` was never dereferenced by another thread.
    ///
    /// # Safety
    /// Pinned by `guard`; `old` was read as the root and `expected` as its committed main under
    /// that pin; `new` is live and owned by the caller.
    pub(crate) unsafe fn rdcss(
        &self,
        old: *mut INode<K, V>,
        expected: *mut Main<K, V>,
        new: *mut INode<K, V>,
        guard: &Guard,
    ) -> bool {
        // SAFETY: forwarded.
        match unsafe { self.rdcss_keeping_descriptor(old, expected, new, guard) } {
            Some(d) => {
                // Swung away from (see below): only threads pinned now can still hold it.
                // SAFETY: freed after them.
                unsafe { super::reclaim::retire(guard, move || Descriptor::free(d)) };
                true
            }
            None => false,
        }
    }

    /// [`RawCtrie::rdcss`], but a committed descriptor is handed back instead of retired: the
    /// caller frees it ([`Descriptor::free`]) in a deferred function queued after this returns
    /// (a snapshot frees it with the root it froze, at its era's death, sparing a deferred
    /// function per snapshot).
    ///
    /// # Safety
    /// As [`RawCtrie::rdcss`].
    pub(crate) unsafe fn rdcss_keeping_descriptor(
        &self,
        old: *mut INode<K, V>,
        expected: *mut Main<K, V>,
        new: *mut INode<K, V>,
        guard: &Guard,
    ) -> Option<*mut Descriptor<K, V>> {
        let d = Descriptor::alloc(old, expected, new);
        // SAFETY: forwarded; `d` is fresh.
        unsafe { self.rdcss_with(d, guard) }
    }

    /// [`RawCtrie::rdcss_keeping_descriptor`] with a descriptor made by the caller: one from
    /// [`Descriptor::alloc`], or one embedded in an era (which is then never freed here).
    ///
    /// # Safety
    /// As [`RawCtrie::rdcss`], for `d`'s fields; `d` was never installed before, and an
    /// embedded `d` lives until a grace period after the caller's era dies.
    pub(crate) unsafe fn rdcss_with(
        &self,
        d: *mut Descriptor<K, V>,
        guard: &Guard,
    ) -> Option<*mut Descriptor<K, V>> {
        debug_assert!(!self.read_only);
        // SAFETY: `d` is live (contract); its fields are written only before publication.
        let (old, embedded) = unsafe { ((*d).old, (*d).embedded) };
        let tagged = d.cast::<u8>().map_addr(|a| a | DESC);
        // AcqRel: Release publishes the descriptor's fields; Relaxed on failure: we only retry.
        if self
            .root
            .compare_exchange(old.cast(), tagged, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            if !embedded {
                // SAFETY: never published.
                unsafe { Descriptor::free(d) };
            }
            return None;
        }
        // SAFETY: `d` is live until it is retired; completion follows the protocol.
        unsafe {
            self.rdcss_complete(d, false, guard);
            // Acquire: pairs with the deciding CAS.
            let committed = (*d).state.load(Ordering::Acquire) == COMMITTED;
            // `rdcss_complete` swung the root away from `d` (or found it swung), and `d` is never
            // installed again, so only threads pinned now can still hold it: it may be freed in
            // any deferred function queued from now on.
            if committed {
                return Some(d);
            }
            // An embedded one goes with its era, which is freed through the epoch after it dies
            // (after this returns), so after the threads pinned now too.
            if !embedded {
                super::reclaim::retire(guard, move || Descriptor::free(d));
            }
            None
        }
    }
}
