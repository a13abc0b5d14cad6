//! Lineages and their eras: which generations of a trie's history something still reads, and
//! the retired nodes each of them keeps alive (see `reclaim.rs`, N2-N4).
//!
//! The era list of a lineage is a singly linked list, newest generation first, pushed on at
//! the head by registrations (N2) and read by retirements without locks. When an era dies
//! (its last handle dropped) it takes its garbage and a counted *hold* on the next older live era,
//! which is where its nodes go (the youngest live era older than it: the eras between are dead),
//! so placing them never walks the list again and the dead era can be unlinked at once. Dead eras
//! are unlinked by one thread at a time (a try-lock that nobody waits for): at the head at once,
//! the rest in a sweep every [`SWEEP_EVERY`] deaths; they are freed through the epoch, since
//! walkers may still stand on them.

use core::ptr::{self, NonNull};

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::node::{Gen, INode};
use super::rdcss::Descriptor;
use super::ready::{self, Ready, HELP_PER_COMMIT};
use super::reclaim::{free_later, retire, NoChildren, Retired};
use super::settle::Job;
use super::shadow;
use crate::sync::{fence, Arc, AtomicBool, AtomicPtr, AtomicUsize, Ordering};

/// The history of one writable trie (see `reclaim.rs`).
pub(crate) struct Lineage<K, V> {
    /// The eras, newest first.
    eras: AtomicPtr<Era<K, V>>,
    /// The first generation of this lineage: nodes born before it belong to an ancestor (N4).
    pub(crate) base: Gen,
    /// Dead eras not unlinked yet (see [`Lineage::tidy`]).
    dead_linked: AtomicUsize,
    /// The tidier's try-lock: one thread at a time unlinks dead eras.
    tidying: AtomicBool,
    /// Settlements of dead eras whose grace period has passed, for the writers (N7).
    ready: Ready<K, V>,
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
    /// The RDCSS descriptor of that freeze if it is not [`Era::slot`] (a retry's), which only
    /// threads pinned at the freeze can still hold: freed with the root, sparing a deferred
    /// function per snapshot.
    desc: AtomicPtr<Descriptor<K, V>>,
    /// The descriptor of the freeze's first attempt, filled in before the era is published and
    /// then written only through its atomic `state`: it lives as long as the era, which is freed
    /// through the epoch after it dies, so after every thread pinned at the freeze, and spares
    /// an allocation and a free per snapshot.
    slot: Descriptor<K, V>,
    /// Dead, with its garbage taken: it may be unlinked.
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

/// Retired nodes of one commit.
type Nodes<K, V> = SmallVec<[Retired<K, V>; 8]>;

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
            dead_linked: AtomicUsize::new(0),
            tidying: AtomicBool::new(false),
            ready: Ready::new(),
            _fork_of: fork_of,
        })
    }

    /// The settlements waiting for this lineage's writers (N7).
    pub(crate) fn ready(&self) -> &Ready<K, V> {
        &self.ready
    }

    /// The newest era (N2 orders the list).
    pub(crate) fn newest(&self) -> *mut Era<K, V> {
        // Acquire: pairs with the Release CAS that pushed it, making its fields visible.
        self.eras.load(Ordering::Acquire)
    }

    /// Registers era `gen` (N2), with `slot` as the descriptor of its freeze's first attempt
    /// ([`EraRef::slot`]). `None` if a newer era is already registered: the root has left `gen`,
    /// so the caller's RDCSS would fail; it starts over.
    pub(crate) fn register(
        this: &Arc<Self>,
        gen: Gen,
        slot: Descriptor<K, V>,
    ) -> Option<EraRef<K, V>> {
        shadow::count_era(true);
        let era = Box::into_raw(Box::new(Era {
            gen,
            refs: AtomicUsize::new(1),
            next: AtomicPtr::new(ptr::null_mut()),
            garbage: AtomicPtr::new(ptr::null_mut()),
            root: AtomicPtr::new(ptr::null_mut()),
            desc: AtomicPtr::new(ptr::null_mut()),
            slot,
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
            let (mut free, mut seen): (Nodes<K, V>, Nodes<K, V>) =
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
            // N7: the writer frees what dead eras left, a few nodes per commit.
            self.ready.help(HELP_PER_COMMIT, guard);
        }
    }

    /// Unlinks `era` (dead, its garbage taken) if it is the head and no other thread is
    /// unlinking; whether it did.
    ///
    /// # Safety
    /// Pinned; `era` is listed.
    unsafe fn pop_head(&self, era: *mut Era<K, V>) -> bool {
        // Acquire: see the previous tidier's unlinking.
        if self.tidying.swap(true, Ordering::Acquire) {
            return false;
        }
        // SAFETY: listed eras are allocated while we are pinned; as the tidier we may unlink.
        let popped = unsafe {
            // Acquire: see the next era's fields.
            let next = (*era).next.load(Ordering::Acquire);
            // Release/Relaxed: as in `tidy`; failing, someone registered above it.
            self.eras
                .compare_exchange(era, next, Ordering::Release, Ordering::Relaxed)
                .is_ok()
        };
        // Release: our unlinking happens before the next tidier's.
        self.tidying.store(false, Ordering::Release);
        popped
    }

    /// Unlinks dead eras, if no other thread is doing it: those at the head at once, and all
    /// of them if `full` (a walk of the list, once every [`SWEEP_EVERY`] deaths). A dead era
    /// another thread skips stays counted and goes in a later sweep.
    ///
    /// # Safety
    /// Pinned by `guard`.
    pub(crate) unsafe fn tidy(&self, full: bool, guard: &Guard) {
        // Acquire: see the previous tidier's unlinking.
        if self.tidying.swap(true, Ordering::Acquire) {
            return;
        }
        // SAFETY: pinned; only the tidier changes `next` links of listed eras (registrations
        // only change the head), so `pred` stays linked while we use it.
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
                    // Relaxed: a count for deciding when to sweep.
                    self.dead_linked.fetch_sub(1, Ordering::Relaxed);
                    // Walkers may still stand on it: free it after them.
                    let dead = SendEra(era);
                    retire(guard, move || {
                        let dead = dead;
                        Era::free(dead.0);
                    });
                } else if !full {
                    break;
                } else {
                    pred = era;
                }
                era = next;
            }
            // Release: our unlinking happens before the next tidier's.
            self.tidying.store(false, Ordering::Release);
        }
    }
}

/// A full sweep of dead eras runs once this many have died since the last one: the list stays
/// within the live eras plus this many, and a sweep costs a death about (live eras / this)
/// steps.
pub(crate) const SWEEP_EVERY: usize = 32;

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

    /// The era's generation.
    pub(crate) fn gen(&self) -> Gen {
        // SAFETY: the era lives while we hold a reference on it.
        unsafe { self.era.as_ref().gen }
    }

    /// The era itself (alive while this handle is).
    pub(crate) fn era(&self) -> *mut Era<K, V> {
        self.era.as_ptr()
    }

    /// The descriptor embedded in the era, for the first RDCSS of its freeze (which hands it to
    /// [`RawCtrie::rdcss_with`](super::RawCtrie::rdcss_with) once, never again).
    pub(crate) fn slot(&self) -> *mut Descriptor<K, V> {
        // SAFETY: the era lives while we hold a reference on it; the pointer keeps the
        // allocation's provenance (no reference to the era is made), and its `state` is atomic.
        unsafe { ptr::addr_of_mut!((*self.era.as_ptr()).slot) }
    }

    /// Hands the era the root I-node its freeze retired (born in this generation, so only this
    /// era sees it) and the descriptor that froze it; they are freed when the era dies.
    pub(crate) fn keep_root(&self, r: *mut INode<K, V>, d: *mut Descriptor<K, V>) {
        // SAFETY: the era lives while we hold a reference on it.
        let era = unsafe { self.era.as_ref() };
        debug_assert_eq!(unsafe { (*r).gen }, era.gen);
        // Relaxed: read by the era's settlement, which the handle's release orders after this.
        era.root.store(r, Ordering::Relaxed);
        // SAFETY: `d` is live (it just committed). Its own allocation unless it is the slot,
        // which goes with the era.
        if !unsafe { Descriptor::is_embedded(d) } {
            // Relaxed: as above.
            era.desc.store(d, Ordering::Relaxed);
        }
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
        // SAFETY: the era lives while we hold a reference on it; after its death it stays
        // listed (hence allocated) until it is marked done below and unlinked.
        unsafe {
            // Release: our reads through the snapshot happen before its settlement.
            if (*era).refs.fetch_sub(1, Ordering::Release) != 1 {
                return;
            }
            // Acquire: pairs with the other handles' Release decrements (the `Arc` protocol).
            fence(Ordering::Acquire);
            let guard = &crossbeam_epoch::pin();
            // The era is dead: no attachment succeeds after this swap (N3's race). AcqRel:
            // Acquire sees the attached batches' contents, Release orders the close.
            let garbage = (*era).garbage.swap(closed(), Ordering::AcqRel);
            let (root, desc) = Era::take_root(era);
            if garbage.is_null() && self.lineage.pop_head(era) {
                // The common case (a snapshot dropped before the next one is taken): nothing
                // attached, and the era was the head, so it is unlinked already. Its root (which
                // no older era sees) and the era itself are freed after the readers pinned now
                // (an iterator's entries live as long as its guard), with the descriptor of its
                // freeze, in one deferred function of three words (crossbeam-epoch stores them
                // inline: no allocation).
                let (root, desc, dead) = (SendRoot(root), SendDesc(desc), SendEra(era));
                retire(guard, move || {
                    let (root, desc, dead) = (root, desc, dead);
                    free_frozen(root.0, desc.0);
                    Era::free(dead.0);
                });
                return;
            }
            // Its nodes go to the youngest live era older than it (the eras between are dead);
            // a hold keeps that one alive until they are there.
            let hold = if garbage.is_null() {
                None
            } else {
                // Acquire: see the next era's fields.
                let next = (*era).next.load(Ordering::Acquire);
                Era::hold_below(next, (*era).gen + 1, &self.lineage)
            };
            // Nothing needs the era itself any more: unlink it.
            // Release: pairs with the tidier's Acquire load.
            (*era).done.store(true, Ordering::Release);
            // Relaxed: a count for deciding when to sweep.
            let dead = self.lineage.dead_linked.fetch_add(1, Ordering::Relaxed) + 1;
            self.lineage.tidy(dead >= SWEEP_EVERY, guard);
            if garbage.is_null() {
                // Only the frozen root: freed after the readers pinned now.
                let (root, desc) = (SendRoot(root), SendDesc(desc));
                retire(guard, move || {
                    let (root, desc) = (root, desc);
                    free_frozen(root.0, desc.0);
                });
            } else {
                // Place them after a grace period, for the same readers, on the writers'
                // threads (N7).
                let job = Job::settle(self.lineage.clone(), garbage, root, hold);
                let desc = SendDesc(desc);
                retire(guard, move || {
                    let desc = desc;
                    free_frozen(ptr::null_mut(), desc.0);
                    ready::arrive(job);
                });
            }
        }
    }
}

/// A root I-node moved into a deferred function that frees it.
struct SendRoot<K, V>(*mut INode<K, V>);

/// An RDCSS descriptor moved into a deferred function that frees it.
struct SendDesc<K, V>(*mut Descriptor<K, V>);

/// Frees a dead era's frozen root I-node and the descriptor of its freeze (either may be null).
///
/// # Safety
/// A grace period has passed since the era's death; they were the era's.
unsafe fn free_frozen<K, V>(root: *mut INode<K, V>, desc: *mut Descriptor<K, V>) {
    // SAFETY: the root was born in the era's generation, so only the era saw it (N3), and the
    // descriptor left the root pointer before the era's handle was handed out (`rdcss.rs`).
    unsafe {
        if !root.is_null() {
            Retired::inode(root).free(&mut NoChildren);
        }
        if !desc.is_null() {
            Descriptor::free(desc);
        }
    }
}

/// An era moved into a deferred function that frees it.
struct SendEra<K, V>(*mut Era<K, V>);

impl<K, V> Era<K, V> {
    /// The root I-node its freeze retired, if any (see [`EraRef::keep_root`]).
    ///
    /// # Safety
    /// The era is dead and this is its death.
    unsafe fn take_root(era: *const Era<K, V>) -> (*mut INode<K, V>, *mut Descriptor<K, V>) {
        // Relaxed: stored before the last handle's Release decrement, which the death's Acquire
        // fence ordered before us; nobody else reads them. SAFETY: the era is listed.
        unsafe {
            (
                (*era).root.load(Ordering::Relaxed),
                (*era).desc.load(Ordering::Relaxed),
            )
        }
    }

    /// A new handle on `era` unless it has died.
    ///
    /// # Safety
    /// `era` is listed in `lineage` and we are pinned.
    unsafe fn try_hold(era: *mut Era<K, V>, lineage: &Arc<Lineage<K, V>>) -> Option<EraRef<K, V>> {
        // SAFETY: listed eras are freed only through the epoch after being unlinked.
        let refs = unsafe { &(*era).refs };
        // Relaxed: the era's contents were published by its registration (read through the
        // list with Acquire); a count that reached zero never rises again.
        let mut n = refs.load(Ordering::Relaxed);
        loop {
            if n == 0 {
                return None;
            }
            // Relaxed: as in `EraRef::clone`.
            match refs.compare_exchange(n, n + 1, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => {
                    return Some(EraRef {
                        lineage: lineage.clone(),
                        // SAFETY: listed eras are not null.
                        era: unsafe { NonNull::new_unchecked(era) },
                    });
                }
                Err(now) => n = now,
            }
        }
    }

    /// A hold on the youngest live era of `lineage` older than `gen` (in `lineage`'s list from
    /// `from` on), if any: where the nodes of a dead era (or of a tree dying in generation
    /// `gen`) go.
    ///
    /// # Safety
    /// `from` is null or listed in `lineage`, and we are pinned.
    pub(crate) unsafe fn hold_below(
        mut from: *mut Era<K, V>,
        gen: Gen,
        lineage: &Arc<Lineage<K, V>>,
    ) -> Option<EraRef<K, V>> {
        // SAFETY: per the contract; listed eras are freed only through the epoch.
        unsafe {
            while !from.is_null() {
                if (*from).gen < gen {
                    if let Some(h) = Era::try_hold(from, lineage) {
                        return Some(h);
                    }
                }
                // Acquire: see the next era's fields.
                from = (*from).next.load(Ordering::Acquire);
            }
        }
        None
    }
}
