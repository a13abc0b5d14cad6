//! A lineage's stage: the retired nodes that no era needs, gathered per lineage and handed to its
//! writers as one ready job (see `reclaim.rs`, N8).
//!
//! Why: most of what a write retires was born in the generation that removes it (a path already
//! copied since the last snapshot), so no era sees it and it could be freed after a grace period
//! by whichever thread collects the epoch. When another thread takes snapshots, that is often
//! the snapshot thread, which then pays a cache miss and a remote free per node the writer
//! allocated (8-10 nodes per 10 µs snapshot while a writer overwrites 1M keys, measured). Gathered
//! here instead, the nodes are freed by the writer itself, from the ready list (N7), in its own
//! cache and arena.
//!
//! # The slot
//! One word per lineage, [`Stage::slot`]: `EMPTY` (no stage exists), `HELD` (a writer is adding
//! to the stage; `HELD | EXPIRE`: and its time is up), or a pointer to the stage, resting. At
//! most one stage exists at a time: only a writer that swaps `EMPTY` for `HELD` creates one, and
//! a stage leaves the slot for good only when it is *sealed* (handed to the epoch, whose deferred
//! function lists it on the ready list; the slot becomes `EMPTY`). A writer that finds the stage
//! held by another writer frees its nodes through the epoch as before: concurrent writers never
//! wait here.
//!
//! # Every stage is sealed
//! A stage that fills up ([`STAGE_MAX`] nodes) is sealed by its holder. So that a stage whose
//! writers stopped is not kept forever, its creator queues a *timer* with it: a deferred function
//! that, a grace period later, seals the stage if it is resting in the slot, or marks the slot
//! `EXPIRE` if it is held, and then the holder, whose putting it back (a CAS from `HELD`) fails on
//! the mark, seals it. Everything happens on the one word, so there is no store-then-load pair to
//! fence: either the timer's CAS comes first in the word's modification order, or the holder's.
//! The timer knows its stage by address only and never dereferences it: if the slot holds that
//! address, it is this stage, or a later stage allocated at the same address after this one was
//! sealed, which the timer then seals early (harmless: sealing early only makes a smaller job). A
//! mark may likewise meet a later stage, held: it is sealed early too. Each stage is therefore
//! sealed at the latest one grace period after its creation plus the end of one commit, and the
//! garbage resting here is at most [`STAGE_MAX`] nodes per lineage, for at most that long.
//!
//! # Soundness
//! Only unreachable nodes come here: retired (N1), with no era in their interval (N3). A stage's
//! nodes are freed by its job, which is listed on the ready list by a deferred function queued
//! when the stage is sealed, after every node of it was retired: so a grace period has passed
//! since each retirement, as N3 asks. Each node is added to one stage once, and each stage is
//! sealed once (it leaves the slot once, by one successful CAS or by its holder).

use core::ptr;

use crossbeam_epoch::Guard;

use super::era::Lineage;
use super::node::Gen;
use super::ready;
use super::reclaim::{free_later, retire, Retired};
use super::settle::Job;
use crate::sync::{Arc, AtomicPtr, Ordering};

/// How many nodes a stage gathers before its holder seals it: a job of 64 frees is two commits'
/// worth of help (N7), and one timer, one seal and one listing per 64 nodes replace about 25
/// deferred functions. Under loom, two: so that the models see stages both fill up and time out.
pub(crate) const STAGE_MAX: usize = if cfg!(ctrie_loom) {
    2
} else if cfg!(miri) {
    8
} else {
    64
};

const EMPTY: usize = 0;
const HELD: usize = 1;
const EXPIRE: usize = 2;

/// The stage of one lineage (see the module docs).
pub(crate) struct Stage<K, V> {
    /// `EMPTY`, `HELD`, `HELD | EXPIRE`, or the resting stage.
    slot: AtomicPtr<Staged<K, V>>,
}

/// A stage: the nodes gathered so far, in the form its job frees them in.
struct Staged<K, V> {
    work: Vec<(Retired<K, V>, Gen)>,
}

/// One of the slot's markers (never dereferenced).
fn marker<K, V>(m: usize) -> *mut Staged<K, V> {
    ptr::without_provenance_mut(m)
}

impl<K, V> Stage<K, V> {
    pub(crate) fn new() -> Self {
        Stage {
            slot: AtomicPtr::new(marker(EMPTY)),
        }
    }

    /// Adds `nodes` (retired by one commit of `lineage`, needed by no era) to the stage, or,
    /// if another writer is holding it, frees them after a grace period as before.
    ///
    /// # Safety
    /// Pinned by `guard`; the nodes were just retired (N1) and no era needs them (N3).
    pub(crate) unsafe fn add(lineage: &Arc<Lineage<K, V>>, nodes: &[Retired<K, V>], guard: &Guard) {
        if nodes.is_empty() {
            return;
        }
        let this = lineage.stage();
        // Relaxed: only compared by the CAS that takes it.
        let cur = this.slot.load(Ordering::Relaxed);
        let (staged, created) = if cur.addr() > (HELD | EXPIRE) {
            // Acquire: see what the previous holder added (its Release put-back).
            match this.slot.compare_exchange(
                cur,
                marker(HELD),
                Ordering::Acquire,
                Ordering::Relaxed,
            ) {
                Ok(_) => (cur, false),
                // SAFETY: forwarded.
                Err(_) => return unsafe { free_later(nodes, guard) },
            }
        } else if cur.addr() == EMPTY
            // Relaxed: nothing to see; the new stage is ours.
            && this
                .slot
                .compare_exchange(cur, marker(HELD), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            let staged = Box::new(Staged {
                work: Vec::with_capacity(STAGE_MAX + 8),
            });
            (Box::into_raw(staged), true)
        } else {
            // Held by another writer.
            // SAFETY: forwarded.
            return unsafe { free_later(nodes, guard) };
        };
        // SAFETY: holding the slot makes the stage ours until we put it back or seal it.
        unsafe {
            (*staged).work.extend(nodes.iter().map(|&x| (x, 0)));
            if created {
                // The timer that seals the stage if its writers stop (module docs). It holds
                // the lineage, and knows the stage by address only.
                let (lineage, addr) = (lineage.clone(), staged.addr());
                // Seeded bug (ci/mutants.sh, loom-tests/run.sh): no timer, so a stage whose
                // writers stopped is never freed.
                if !cfg!(ctrie_mutant = "stage_no_timer") {
                    retire(guard, move || timer(lineage, addr));
                }
            }
            if (*staged).work.len() >= STAGE_MAX {
                seal(lineage, staged, guard);
                // Release: nothing to publish, but the next creator's stage is fresh anyway.
                // Overwrites a mark, which was meant for the stage just sealed (or a later
                // one: module docs).
                this.slot.store(marker(EMPTY), Ordering::Release);
                return;
            }
            // Release: the next holder (or the timer) sees what we added. Fails only on a mark:
            // the stage's time is up.
            if this
                .slot
                .compare_exchange(marker(HELD), staged, Ordering::Release, Ordering::Relaxed)
                .is_err()
            {
                // Seeded bug (loom-tests/run.sh): the mark is ignored, so a stage whose time
                // is up rests again with no timer left.
                if cfg!(ctrie_mutant = "stage_mark_ignored") {
                    this.slot.store(staged, Ordering::Release);
                    return;
                }
                seal(lineage, staged, guard);
                // Release: as above.
                this.slot.store(marker(EMPTY), Ordering::Release);
            }
        }
    }
}

impl<K, V> Drop for Stage<K, V> {
    fn drop(&mut self) {
        // Every stage's timer held the lineage, which owns this slot, and a timer leaves its
        // stage sealed or marked for its holder to seal; nobody holds it any more.
        debug_assert_eq!(
            self.slot.load(Ordering::Relaxed).addr(),
            EMPTY,
            "a stage outlived its lineage"
        );
    }
}

/// A stage's timer: seals the stage at `addr` if it rests in the slot, marks the slot if it is
/// held; otherwise the stage was sealed already (module docs).
fn timer<K, V>(lineage: Arc<Lineage<K, V>>, addr: usize) {
    let guard = &crossbeam_epoch::pin();
    let slot = &lineage.stage().slot;
    // Relaxed: only compared by the CASes below.
    let mut cur = slot.load(Ordering::Relaxed);
    loop {
        let next = if cur.addr() == addr {
            marker(EMPTY)
        } else if cur.addr() == HELD {
            marker(HELD | EXPIRE)
        } else {
            // EMPTY, already marked, or a later stage resting: ours was sealed.
            return;
        };
        // Acquire on success: see what the holders added, before we seal it.
        match slot.compare_exchange(cur, next, Ordering::Acquire, Ordering::Relaxed) {
            Ok(_) => {
                if next.addr() == EMPTY {
                    // SAFETY: the CAS took the resting stage out of the slot: it is ours, and
                    // every node in it was retired before it rested.
                    unsafe { seal(&lineage, cur, guard) };
                    // Hand the seal to the global queue at once: a timer runs on whatever
                    // thread collected the epoch, which may sleep next with the seal in its own
                    // bag (as `ready::ensure_fallback`).
                    guard.flush();
                }
                return;
            }
            Err(now) => cur = now,
        }
    }
}

/// Seals a stage: a grace period from now, its job is listed on the ready list (N7).
///
/// # Safety
/// Pinned by `guard`; the stage is out of the slot and ours, and every node in it was retired.
unsafe fn seal<K, V>(lineage: &Arc<Lineage<K, V>>, staged: *mut Staged<K, V>, guard: &Guard) {
    let (lineage, staged) = (lineage.clone(), SendStaged(staged));
    // SAFETY: after the grace period nobody reaches the nodes (N3, module docs). The stage's box
    // travels with them (two words, which crossbeam-epoch stores inline: no allocation).
    unsafe {
        retire(guard, move || {
            let staged = Box::from_raw(staged.0);
            ready::arrive(Job::free_all(lineage, staged.work));
        })
    };
}

/// A sealed stage moved into the deferred function that lists it.
struct SendStaged<K, V>(*mut Staged<K, V>);
