//! Lineages and their eras: which generations of a trie's history something still reads, and
//! the retired nodes each of them keeps alive (see `reclaim.rs`, N2-N4).
//!
//! The era list of a lineage is a singly linked list, newest generation first, pushed on at
//! the head by registrations (N2) and read by retirements and settlements without locks. Dead
//! eras are unlinked by one sweeper at a time (a try-lock taken only by deferred functions, never
//! on an operation's path) and freed through the epoch, since walkers may still stand on them.

use core::ptr::{self, NonNull};

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::node::{Gen, INode};
use super::reclaim::{free_later, retire, Retired};
use super::settle::Job;
use super::shadow;
use crate::sync::{fence, Arc, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// The history of one writable trie (see `reclaim.rs`).
pub(crate) struct Lineage<K, V> {
    /// The eras, newest first.
    eras: AtomicPtr<Era<K, V>>,
    /// The first generation of this lineage: nodes born before it belong to an ancestor (N4).
    pub(crate) base: Gen,
    /// Pending requests to unlink dead eras; whoever raises it from zero sweeps (see `sweep`).
    sweeps: AtomicUsize,
    /// The reservation a fork holds on its origin's history (N4); dropped with the lineage.
    _fork_of: Option<EraRef<K, V>>,
}

/// One generation something still reads (N2), and the retired nodes it protects.
pub(crate) struct Era<K, V> {
    pub(crate) gen: Gen,
    /// Handles: read-only snapshots frozen here (and their clones), forks taken here.
    refs: AtomicUsize,
    /// The next older era.
    pub(crate) next: AtomicPtr<Era<K, V>>,
    /// Retired nodes attached here (N3), or [`closed`] once the era died.
    garbage: AtomicPtr<Batch<K, V>>,
    /// The root I-node its freeze retired, which only this era sees (it was born in this
    /// generation); kept here to spare a batch per snapshot.
    root: AtomicPtr<INode<K, V>>,
    /// Its nodes have been placed after its death: it may be unlinked.
    done: AtomicBool,
}

/// Retired nodes attached to an era, all with the same death.
pub(crate) struct Batch<K, V> {
    pub(crate) next: *mut Batch<K, V>,
    pub(crate) death: Gen,
    pub(crate) nodes: SmallVec<[Retired<K, V>; 6]>,
}

/// The marker in [`Era::garbage`] of a dead era: a dangling, never dereferenced pointer.
fn closed<K, V>() -> *mut Batch<K, V> {
    ptr::dangling_mut::<Batch<K, V>>().map_addr(|a| a | 1)
}

/// A counted handle on an era: what a read-only snapshot or a fork holds.
pub(crate) struct EraRef<K, V> {
    lineage: Arc<Lineage<K, V>>,
    era: NonNull<Era<K, V>>,
}

impl<K, V> Lineage<K, V> {
    pub(crate) fn new(base: Gen, fork_of: Option<EraRef<K, V>>) -> Arc<Self> {
        Arc::new(Lineage {
            eras: AtomicPtr::new(ptr::null_mut()),
            base,
            sweeps: AtomicUsize::new(0),
            _fork_of: fork_of,
        })
    }

    /// The newest era (N2 orders the list).
    pub(crate) fn newest(&self) -> *mut Era<K, V> {
        // Acquire: pairs with the Release CAS that pushed it, making its fields visible.
        self.eras.load(Ordering::Acquire)
    }

    /// Registers era `gen` (N2). `None` if a newer era is already registered: the root has left
    /// `gen`, so the caller's RDCSS would fail; it starts over.
    pub(crate) fn register(this: &Arc<Self>, gen: Gen) -> Option<EraRef<K, V>> {
        shadow::count_era(true);
        let era = Box::into_raw(Box::new(Era {
            gen,
            refs: AtomicUsize::new(1),
            next: AtomicPtr::new(ptr::null_mut()),
            garbage: AtomicPtr::new(ptr::null_mut()),
            root: AtomicPtr::new(ptr::null_mut()),
            done: AtomicBool::new(false),
        }));
        let mut head = this.newest();
        loop {
            // SAFETY: `head` was read from the list; eras are freed only through the epoch after
            // being unlinked, and a registering thread is pinned (by its caller).
            if !head.is_null() && unsafe { (*head).gen } > gen {
                // SAFETY: never published.
                unsafe { Era::free(era) };
                return None;
            }
            // SAFETY: `era` is ours until the CAS publishes it. Relaxed: published by the CAS.
            unsafe { (*era).next.store(head, Ordering::Relaxed) };
            // Release: publishes the era's fields to walkers (N2's ordering chain starts here).
            // Acquire on failure: we read the new head's generation next.
            match this
                .eras
                .compare_exchange(head, era, Ordering::Release, Ordering::Acquire)
            {
                Ok(_) => {
                    return Some(EraRef {
                        lineage: this.clone(),
                        // SAFETY: from `Box::into_raw`.
                        era: unsafe { NonNull::new_unchecked(era) },
                    });
                }
                Err(h) => head = h,
            }
        }
    }

    /// Retires the nodes one commit of generation `death` removed from the live tree (N1, N3):
    /// attached to the youngest live era that may see them, the rest freed after a grace period.
    ///
    /// # Safety
    /// Pinned by `guard`; the nodes are this lineage's (born at or after `base`), just removed.
    pub(crate) unsafe fn retire(&self, death: Gen, nodes: &[Retired<K, V>], guard: &Guard) {
        // Seeded bug (ci/mutants.sh): ignore the eras altogether.
        if cfg!(ctrie_mutant = "interval_check_skipped") {
            // SAFETY: (not) the contract of the bug.
            return unsafe { free_later(nodes, guard) };
        }
        // SAFETY: nodes are allocated (contract); eras read from the list are freed only through
        // the epoch, and we are pinned.
        unsafe {
            // Seeded bug (ci/mutants.sh): a node's interval taken to end where it starts.
            let death = |x: Retired<K, V>| {
                if cfg!(ctrie_mutant = "death_is_birth") {
                    x.birth()
                } else {
                    death
                }
            };
            // Born in the generation that removes them: no era can see them (the common case of
            // a write on a path already copied since the last snapshot).
            let (mut free, mut seen): (SmallVec<[Retired<K, V>; 8]>, SmallVec<[Retired<K, V>; 8]>) =
                nodes.iter().copied().partition(|&x| x.birth() >= death(x));
            let mut era = self.newest();
            if !seen.is_empty() {
                let d = death(seen[0]);
                while !era.is_null() && (*era).gen >= d {
                    era = (*era).next.load(Ordering::Acquire);
                }
            }
            while !seen.is_empty() && !era.is_null() {
                let g = (*era).gen;
                // Nodes born after `g` are in no era from here on (the list is sorted).
                seen.retain(|x| {
                    let keep = x.birth() <= g;
                    if !keep {
                        free.push(*x);
                    }
                    keep
                });
                if !seen.is_empty() && (*era).accepts() {
                    let batch = Box::new(Batch {
                        next: ptr::null_mut(),
                        death: death(seen[0]),
                        nodes: seen.iter().copied().collect(),
                    });
                    match Era::attach(era, batch) {
                        Ok(()) => {
                            seen.clear();
                            break;
                        }
                        Err(b) => drop(b),
                    }
                }
                era = (*era).next.load(Ordering::Acquire);
            }
            free.extend(seen);
            free_later(&free, guard);
        }
    }

    /// Unlinks every era whose nodes have been placed after its death, and frees them after a
    /// grace period. One sweeper at a time: a request made while another thread sweeps is left to
    /// it (it scans again before it stops if requests arrived meanwhile).
    ///
    /// # Safety
    /// Pinned by `guard`.
    pub(crate) unsafe fn sweep(&self, guard: &Guard) {
        // AcqRel: the sweeper that sees our request also sees the `done` flag we set before it.
        if self.sweeps.fetch_add(1, Ordering::AcqRel) != 0 {
            return;
        }
        loop {
            // Acquire: see the requests' `done` flags.
            let seen = self.sweeps.load(Ordering::Acquire);
            // SAFETY: pinned; only the sweeper changes `next` links of listed eras (registrations
            // only change the head), so `pred` stays linked while we use it.
            unsafe { self.unlink_done(guard) };
            // AcqRel: as above. If more requests came, scan again.
            if self
                .sweeps
                .compare_exchange(seen, 0, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return;
            }
        }
    }

    /// # Safety
    /// Pinned by `guard`, and the only sweeper.
    unsafe fn unlink_done(&self, guard: &Guard) {
        // SAFETY: per the contract.
        unsafe {
            let mut pred: *mut Era<K, V> = ptr::null_mut();
            let mut era = self.newest();
            while !era.is_null() {
                // Acquire: see the next era's fields.
                let next = (*era).next.load(Ordering::Acquire);
                // Acquire: pairs with the Release store of `done`.
                if (*era).done.load(Ordering::Acquire) {
                    let unlinked = if pred.is_null() {
                        // Release/Relaxed: readers of the head see `next`'s fields through it;
                        // on failure a registration pushed above us: find our predecessor.
                        self.eras
                            .compare_exchange(era, next, Ordering::Release, Ordering::Relaxed)
                            .is_ok()
                    } else {
                        // Release: walkers that follow `pred.next` see `next`'s fields.
                        (*pred).next.store(next, Ordering::Release);
                        true
                    };
                    if !unlinked {
                        // Restart from the head: `era` is below the new registrations now.
                        pred = ptr::null_mut();
                        era = self.newest();
                        continue;
                    }
                    // Walkers may still stand on it: free it after them.
                    let dead = SendEra(era);
                    retire(guard, move || {
                        let dead = dead;
                        Era::free(dead.0);
                    });
                } else {
                    pred = era;
                }
                era = next;
            }
        }
    }
}

impl<K, V> Drop for Lineage<K, V> {
    fn drop(&mut self) {
        // Nothing can reach the list any more: every era handle, every pending job and every
        // trie of this lineage held the lineage. So every era left is dead and settled.
        let mut era = self.eras.load(Ordering::Relaxed);
        while !era.is_null() {
            // SAFETY: exclusively ours now (see above).
            unsafe {
                debug_assert!(
                    (*era).done.load(Ordering::Relaxed),
                    "an era outlived its handles"
                );
                let next = (*era).next.load(Ordering::Relaxed);
                Era::free(era);
                era = next;
            }
        }
    }
}

impl<K, V> Era<K, V> {
    /// # Safety
    /// `era` came from `register` and nobody can reach it any more.
    unsafe fn free(era: *mut Era<K, V>) {
        shadow::count_era(false);
        // SAFETY: per the contract.
        drop(unsafe { Box::from_raw(era) });
    }

    /// Whether the era may still take attachments (a hint: [`Era::attach`] decides).
    pub(crate) fn accepts(&self) -> bool {
        // Relaxed: only a hint to spare an allocation; the CAS in `attach` decides.
        self.garbage.load(Ordering::Relaxed) != closed()
    }

    /// Attaches `batch` unless the era is dead (then hands it back).
    ///
    /// # Safety
    /// `era` is listed in a lineage and we are pinned.
    pub(crate) unsafe fn attach(
        era: *const Era<K, V>,
        batch: Box<Batch<K, V>>,
    ) -> Result<(), Box<Batch<K, V>>> {
        let batch = Box::into_raw(batch);
        // SAFETY: `era` is live while pinned (freed through the epoch after unlinking); `batch`
        // is ours until the CAS publishes it.
        unsafe {
            // Relaxed: the value is only compared by the CAS below.
            let mut head = (*era).garbage.load(Ordering::Relaxed);
            loop {
                if head == closed() {
                    return Err(Box::from_raw(batch));
                }
                (*batch).next = head;
                // Release: the era's death (an AcqRel swap) then sees the batch's contents.
                match (*era).garbage.compare_exchange(
                    head,
                    batch,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(()),
                    Err(h) => head = h,
                }
            }
        }
    }
}

impl<K, V> EraRef<K, V> {
    pub(crate) fn lineage(&self) -> &Arc<Lineage<K, V>> {
        &self.lineage
    }

    /// Hands the era the root I-node its freeze retired (born in this generation, so only this
    /// era sees it); it is freed when the era dies.
    pub(crate) fn keep_root(&self, r: *mut INode<K, V>) {
        // SAFETY: the era lives while we hold a reference on it.
        let era = unsafe { self.era.as_ref() };
        debug_assert_eq!(unsafe { (*r).gen }, era.gen);
        // Relaxed: read by the era's settlement, which the handle's release orders after this.
        era.root.store(r, Ordering::Relaxed);
    }
}

impl<K, V> Clone for EraRef<K, V> {
    fn clone(&self) -> Self {
        // SAFETY: the era lives while we hold a reference on it.
        let refs = unsafe { &self.era.as_ref().refs };
        // Relaxed: as in `Arc::clone`; we hold a reference, so the count is not zero.
        refs.fetch_add(1, Ordering::Relaxed);
        EraRef {
            lineage: self.lineage.clone(),
            era: self.era,
        }
    }
}

impl<K, V> Drop for EraRef<K, V> {
    fn drop(&mut self) {
        let era = self.era.as_ptr();
        // SAFETY: the era lives while we hold a reference on it.
        unsafe {
            // Release: our reads through the snapshot happen before its settlement.
            if (*era).refs.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            // Acquire: pairs with the other handles' Release decrements (the `Arc` protocol).
            fence(Ordering::Acquire);
            // The era is dead: no attachment succeeds after this swap (N3's race). AcqRel:
            // Acquire sees the attached batches' contents, Release orders the close.
            let garbage = (*era).garbage.swap(closed(), Ordering::AcqRel);
            let lineage = self.lineage.clone();
            // Place them again after a grace period: references taken from the snapshot by
            // readers pinned now (an iterator's entries live as long as its guard) end first.
            // (Three words: the deferred function needs no allocation.)
            let guard = &crossbeam_epoch::pin();
            let era = SendEra(era);
            retire(guard, move || {
                let era = era;
                Job::settle(lineage, era.0, garbage).run()
            });
        }
    }
}

/// An era moved into a deferred function that frees it.
struct SendEra<K, V>(*mut Era<K, V>);

impl<K, V> Era<K, V> {
    /// The root I-node its freeze retired, if any (see [`EraRef::keep_root`]).
    ///
    /// # Safety
    /// The era is dead and this is its settlement.
    pub(crate) unsafe fn take_root(era: *const Era<K, V>) -> *mut INode<K, V> {
        // Relaxed: stored before the last handle's Release decrement, which the death's Acquire
        // fence ordered before the deferred settlement. SAFETY: the era is listed.
        unsafe { (*era).root.swap(ptr::null_mut(), Ordering::Relaxed) }
    }

    /// Marks the era settled and asks for it to be unlinked.
    ///
    /// # Safety
    /// Its death's placements are complete; pinned by `guard`.
    pub(crate) unsafe fn settled(era: *const Era<K, V>, lineage: &Lineage<K, V>, guard: &Guard) {
        // SAFETY: the era is listed (not yet unlinked: it was not done).
        unsafe {
            // Release: the sweeper that sees it done unlinks it after our last use of it.
            (*era).done.store(true, Ordering::Release);
            lineage.sweep(guard);
        }
    }
}
