//! GCAS: generation compare-and-swap on an I-node's main pointer (paper, Fig. 5).
//!
//! `gcas(i, old, new)` first sets `new.prev = old` and CASes `i.main` from `old` to `new`. The
//! write is then *pending* until someone decides it by CASing `new.prev`:
//! * to null (**commit**), if the trie's root, read with abort priority, still has `i`'s
//!   generation and the trie is writable;
//! * to `old | FAILED` (**failure**) otherwise, after which `i.main` is CASed back to exactly
//!   `old` (roll-back).
//!
//! Every reader of `i.main` ([`RawCtrie::gcas_read`]) first helps decide a pending write, so no
//! thread ever *uses* an uncommitted main node: it only reads its `prev`. A write that raced a
//! snapshot is thereby rolled back and retried by its operation in the new generation.
//!
//! The paper's *failed node* is a tag bit on `prev` here: it wraps the same saved pointer without
//! an allocation.

use crossbeam_epoch::Guard;

use super::node::{INode, Main};
use super::reclaim::{discard_target, Txn};
use super::shadow;
use super::RawCtrie;
use crate::sync::{fence, Ordering};

/// Tag on [`Main::prev`] marking a failed GCAS; the untagged pointer is the node to restore.
pub(crate) const FAILED: usize = 1;

#[inline]
fn is_failed<K, V>(p: *mut Main<K, V>) -> bool {
    p.addr() & FAILED != 0
}

#[inline]
fn untag<K, V>(p: *mut Main<K, V>) -> *mut Main<K, V> {
    p.map_addr(|a| a & !FAILED)
}

impl<K, V> RawCtrie<K, V> {
    /// Returns the committed main node of `i`, deciding a pending GCAS first.
    ///
    /// # Safety
    /// `i` is live for the duration of `guard`.
    #[inline]
    pub(crate) unsafe fn gcas_read(&self, i: *mut INode<K, V>, guard: &Guard) -> *mut Main<K, V> {
        // SAFETY: `i` is live (contract); main nodes it points to are live while pinned (R1).
        unsafe {
            // Acquire: pairs with the Release CAS that installed this main node, making its
            // contents visible.
            let m = (*i).main.load(Ordering::Acquire);
            if (*m).load_prev().is_null() {
                m
            } else {
                self.gcas_complete(i, m, guard)
            }
        }
    }

    /// Drives the pending GCAS found in `i.main` to a decision and returns the committed main.
    #[cold]
    unsafe fn gcas_complete(
        &self,
        i: *mut INode<K, V>,
        mut m: *mut Main<K, V>,
        guard: &Guard,
    ) -> *mut Main<K, V> {
        // SAFETY: `i` is live; `m` and the nodes saved in `prev` are live while pinned (R1): a
        // failed target is only retired after its roll-back, and the saved node stays owned by
        // `i` until a commit replaces it.
        unsafe {
            loop {
                let prev = (*m).load_prev();
                if prev.is_null() {
                    return m;
                }
                if is_failed(prev) {
                    let saved = untag(prev);
                    // AcqRel: Release republishes the saved node (already committed), Acquire
                    // keeps this roll-back ordered after the failure decision we read.
                    // Acquire on failure: we go on to read the node someone else installed.
                    match (*i)
                        .main
                        .compare_exchange(m, saved, Ordering::AcqRel, Ordering::Acquire)
                    {
                        Ok(_) => return saved,
                        Err(now) => {
                            m = now;
                            continue;
                        }
                    }
                }
                // F_GCAS: the install of `m` (which we read, or made) must be ordered before our
                // read of the root. Pairs with F_RDCSS in `rdcss.rs`, which orders a root
                // descriptor's install before its read of the old root's main: of a concurrent
                // GCAS and snapshot, at least one sees the other.
                fence(Ordering::SeqCst);
                let root = self.read_root(true, guard);
                // Seeded bug (ci/mutants.sh): commit without noticing snapshots.
                let same_gen = (*root).gen == (*i).gen || cfg!(ctrie_mutant = "gcas_no_gen_check");
                if same_gen && !self.read_only {
                    // The decision and the debug oracle's record of it are one step (a no-op
                    // wrapper in release builds).
                    let committed = shadow::decide(|| {
                        // AcqRel: Release publishes the decision, Acquire orders us after a
                        // rival decision if we lose. Acquire on failure: we reread `prev` next.
                        let ok = (*m)
                            .prev
                            .compare_exchange(
                                prev,
                                core::ptr::null_mut(),
                                Ordering::AcqRel,
                                Ordering::Acquire,
                            )
                            .is_ok();
                        if ok {
                            shadow::on_commit(i, prev, m);
                        }
                        ok
                    });
                    if committed {
                        return m;
                    }
                } else {
                    let failed = prev.map_addr(|a| a | FAILED);
                    // AcqRel/Acquire: as above. Losing the race means another decision exists.
                    let _ = (*m).prev.compare_exchange(
                        prev,
                        failed,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    );
                }
                // Acquire: see the contents of whatever `main` holds now.
                m = (*i).main.load(Ordering::Acquire);
            }
        }
    }

    /// GCAS `i.main` from `old` to `new` and settle `txn` (the ownership of `new`'s edges).
    ///
    /// Returns whether the write committed. On failure `new` has been discarded and the
    /// operation must restart from the root.
    ///
    /// # Safety
    /// `i` is live and `old` was read as its committed main (while pinned by `guard`); `new` is a
    /// fresh, unpublished main node built under `txn`.
    pub(crate) unsafe fn gcas(
        &self,
        i: *mut INode<K, V>,
        old: *mut Main<K, V>,
        new: *mut Main<K, V>,
        txn: &mut Txn<K, V>,
        guard: &Guard,
    ) -> bool {
        debug_assert!(!self.read_only);
        // SAFETY: per the contract; the settlement functions' contracts are met as commented.
        unsafe {
            // Relaxed: `new` is not published yet; the CAS below releases it.
            (*new).prev.store(old, Ordering::Relaxed);
            // AcqRel: Release publishes `new` (its branches and `prev`); Acquire on failure is not
            // needed as we do not read the current value, hence Relaxed there.
            if (*i)
                .main
                .compare_exchange(old, new, Ordering::AcqRel, Ordering::Relaxed)
                .is_err()
            {
                txn.abort();
                discard_target(new, false, guard);
                return false;
            }
            self.gcas_complete(i, new, guard);
            if (*new).load_prev().is_null() {
                // Committed: `old` and what `new` drops have left the live tree (N1).
                txn.commit(self.lineage(), i, old, new, guard);
                true
            } else {
                // Failed: `gcas_complete` returned only after `i.main` was rolled back to `old`
                // (it loops until it finds a committed node), so `new` is unreachable; other
                // threads may still be reading its `prev`.
                txn.abort();
                discard_target(new, true, guard);
                false
            }
        }
    }
}
