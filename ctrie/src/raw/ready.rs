//! A lineage's ready list: settlement jobs whose grace period has passed, run by the lineage's
//! writers a few placements per commit (see `reclaim.rs`, N7).
//!
//! Why: a dead era's nodes were retired by a writer, were allocated by it and are still in its
//! cache. Freeing them on whichever thread collects the epoch (often the one that dropped the
//! snapshot) costs that thread a cache miss per node, and with a per-thread-arena allocator
//! (glibc) a lock against the writer's own allocations. A writer that frees them finds them warm
//! and frees into its own arena.
//!
//! The list is a Treiber stack of boxed jobs. Pushes prepend with a CAS; takers swap the whole
//! list out, so each job belongs to exactly one thread at a time, and a taker that stops early
//! prepends what it did not finish. Nothing is ever popped one at a time, so there is no ABA: a
//! push compares only the head it links to, whatever that head's history.
//!
//! Whoever lists a job (its arrival, or a taker listing what it did not finish) also makes sure a
//! *fallback* is queued: a deferred function, one grace period later, that runs whatever is still
//! listed. A job therefore never waits for a writer that has stopped writing (or was dropped),
//! and the list holds only what arrived within about a grace period, or what the writers are
//! still working through. One flag keeps this to one pending fallback per list: a lister that
//! finds it set leaves its jobs to the pending fallback, which clears the flag before it takes
//! the list. That is a store-then-load pair on each side (a lister: prepend, then read the flag;
//! a fallback: clear the flag, then read the list), so each side has a `fence(SeqCst)` between
//! the two: either the fallback's read of the list sees the lister's jobs, or the lister reads the
//! flag cleared (or set again by a later lister, who queued a later fallback) and queues one.
//! Both reads are read-modify-writes as well (the fallback clears the flag with a swap and takes
//! the list without the `is_empty` hint), which loom models exactly: with a plain load after the
//! fence, correct by C++'s fence rules, loom reported a job left unrun (see VERIFICATION.md).

use core::ptr;

use crossbeam_epoch::Guard;

use super::era::Lineage;
use super::reclaim::{retire, FREE_BUDGET};
use super::settle::Job;
use crate::sync::{fence, Arc, AtomicBool, AtomicPtr, Ordering};

/// How many placements a commit runs from its lineage's ready list at most: about four times
/// what a write after a snapshot retires at 1M keys (~9 nodes), so the writers outpace their own
/// retirements, and short enough (~1 µs) not to stretch a write much.
/// Under loom, one: so that the models see a commit stop part-way through a job and list the
/// rest again.
pub(crate) const HELP_PER_COMMIT: usize = if cfg!(ctrie_loom) { 1 } else { 32 };

/// The ready list (one per lineage).
pub(crate) struct Ready<K, V> {
    head: AtomicPtr<Queued<K, V>>,
    /// A fallback is queued and has not yet started (see the module docs).
    fallback_pending: AtomicBool,
}

/// A job on the list.
struct Queued<K, V> {
    job: Job<K, V>,
    next: *mut Queued<K, V>,
}

impl<K, V> Ready<K, V> {
    pub(crate) fn new() -> Self {
        Ready {
            head: AtomicPtr::new(ptr::null_mut()),
            fallback_pending: AtomicBool::new(false),
        }
    }

    /// Whether no job is listed (a hint: a push may be under way).
    pub(crate) fn is_empty(&self) -> bool {
        // Relaxed: only a hint; the swap in `take` decides what a taker gets.
        self.head.load(Ordering::Relaxed).is_null()
    }

    /// Prepends the chain `first..=last` (owned by the caller).
    ///
    /// # Safety
    /// The chain is well formed and nobody else can reach it.
    unsafe fn prepend(&self, first: *mut Queued<K, V>, last: *mut Queued<K, V>) {
        // Relaxed: only compared by the CAS below.
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            // SAFETY: `last` is ours until the CAS publishes the chain.
            unsafe { (*last).next = head };
            // Release: a taker's Acquire swap sees the jobs' contents and links.
            match self
                .head
                .compare_exchange(head, first, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(h) => head = h,
            }
        }
    }

    /// Runs up to `budget` placements of listed jobs on this thread, and lists again what it did
    /// not finish.
    ///
    /// # Safety
    /// Pinned by `guard`; the list's lineage is alive (the caller holds it).
    pub(crate) unsafe fn help(&self, budget: usize, guard: &Guard) {
        if self.is_empty() {
            return;
        }
        // SAFETY: forwarded.
        unsafe { self.take_and_run(budget, guard) }
    }

    /// [`Ready::help`] without the hint: the fallback's read of the list must be the swap (an
    /// atomic read-modify-write reads the latest value; see the module docs).
    ///
    /// # Safety
    /// As [`Ready::help`].
    unsafe fn take_and_run(&self, mut budget: usize, guard: &Guard) {
        // Acquire: pairs with `prepend`'s Release, so the jobs' contents are visible.
        let mut q = self.head.swap(ptr::null_mut(), Ordering::Acquire);
        // SAFETY: the swap made the chain ours; each job's grace period has passed (listed only by
        // `arrive`, a deferred function queued at the era's death), and we are pinned.
        unsafe {
            while !q.is_null() {
                if !(*q).job.step(&mut budget, guard) {
                    // Out of budget: list the rest again, this job first.
                    let mut last = q;
                    while !(*last).next.is_null() {
                        last = (*last).next;
                    }
                    let lineage = (*q).job.lineage().clone();
                    // Seeded bug (loom-tests/run.sh): lose what the commit did not finish.
                    if cfg!(ctrie_mutant = "ready_rest_lost") {
                        return;
                    }
                    self.prepend(q, last);
                    return ensure_fallback(lineage, guard);
                }
                let done = Box::from_raw(q);
                q = done.next;
                // Dropping the finished job drops its hold on an older era, which may die in
                // turn (its settlement is queued, not run, here).
                drop(done);
            }
        }
    }
}

impl<K, V> Drop for Ready<K, V> {
    fn drop(&mut self) {
        // Every listed job holds its lineage, which owns this list: a lineage is dropped only
        // once its list is empty.
        debug_assert!(
            self.head.load(Ordering::Relaxed).is_null(),
            "a ready job outlived its lineage"
        );
    }
}

/// Lists a dead era's settlement `job` for its lineage's writers, now that its grace period has
/// passed, with a fallback a grace period later for whatever they leave (see the module docs).
///
/// # Safety
/// A deferred function queued at the era's death (so its grace period has passed), as
/// [`Job::run`].
pub(crate) unsafe fn arrive<K, V>(job: Job<K, V>) {
    let lineage = job.lineage().clone();
    let q = Box::into_raw(Box::new(Queued {
        job,
        next: ptr::null_mut(),
    }));
    let guard = &crossbeam_epoch::pin();
    // SAFETY: the new chain is ours.
    unsafe { lineage.ready().prepend(q, q) };
    ensure_fallback(lineage, guard);
}

/// Makes sure a fallback is pending for what was just listed on `lineage`'s ready list.
fn ensure_fallback<K, V>(lineage: Arc<Lineage<K, V>>, guard: &Guard) {
    // Between our prepend and our read of the flag; pairs with the fence in `fallback` (module
    // docs).
    fence(Ordering::SeqCst);
    // Seeded bug (loom-tests/run.sh): no fallback, so a job waits for the writers' next commit.
    if cfg!(ctrie_mutant = "no_fallback") {
        return;
    }
    // Relaxed: ordered by the fence above; the fallback needs nothing from us but the list.
    if !lineage
        .ready()
        .fallback_pending
        .swap(true, Ordering::Relaxed)
    {
        // SAFETY: the fallback needs nothing but the lineage it holds.
        unsafe { retire(guard, move || fallback(lineage)) };
        // Hand it to the global queue at once: a listing often runs inside a deferred function,
        // on whatever thread collected the epoch, and that thread may go to sleep next (another
        // part of the program, a follower about to wait) with the fallback in its own bag, where
        // no other thread's collection finds it.
        guard.flush();
    }
}

/// Runs what the writers left on `lineage`'s ready list, at most [`FREE_BUDGET`] placements
/// (N6); what it does not finish it lists again, with a new fallback.
fn fallback<K, V>(lineage: Arc<Lineage<K, V>>) {
    // Relaxed: ordered by the fence below. A swap, not a store, so that under loom too it is
    // the latest value a lister's swap can read.
    lineage
        .ready()
        .fallback_pending
        .swap(false, Ordering::Relaxed);
    // Between clearing the flag and reading the list; pairs with the fence in `ensure_fallback`
    // (module docs).
    fence(Ordering::SeqCst);
    let guard = &crossbeam_epoch::pin();
    // SAFETY: pinned; we hold the lineage.
    unsafe { lineage.ready().take_and_run(FREE_BUDGET, guard) };
}
