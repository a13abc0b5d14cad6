//! The deferred work of reclamation: placing the nodes of a dead era among the older eras, and
//! retiring a whole tree (`clear`, drop) node by node (see `reclaim.rs`, N3, N5, N6).
//!
//! A [`Job`] runs in a deferred function, pinned, and does at most [`FREE_BUDGET`] placements
//! before it hands the rest on to another deferred function (N6).

use core::ptr;

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::era::{Batch, Era, Lineage};
use super::node::{Gen, INode};
use super::reclaim::{retire, Retired, FREE_BUDGET};
use crate::sync::{Arc, Ordering};

/// Placements still to make.
pub(crate) struct Job<K, V> {
    lineage: Arc<Lineage<K, V>>,
    /// The dead era being settled, whose nodes go to older eras only; null for a tree.
    from: *const Era<K, V>,
    /// Batches of the dead era not opened yet.
    batches: *mut Batch<K, V>,
    /// Nodes to place, with their death.
    work: Vec<(Retired<K, V>, Gen)>,
    /// Attachments collected for one era, sent as one batch.
    pending: Option<(*mut Era<K, V>, Box<Batch<K, V>>)>,
}

/// How many nodes one attachment made by a job carries at most.
const PENDING_MAX: usize = 64;

impl<K, V> Job<K, V> {
    /// Settles the death of `era`, whose garbage list was `garbage` when it closed: its root
    /// I-node (if a freeze retired one) is freed, its batches are placed among older eras.
    pub(crate) fn settle(
        lineage: Arc<Lineage<K, V>>,
        era: *const Era<K, V>,
        garbage: *mut Batch<K, V>,
    ) -> Self {
        Job {
            lineage,
            from: era,
            batches: garbage,
            work: Vec::new(),
            pending: None,
        }
    }

    /// Retires the tree under `root` deep, dying in generation `death` (N5).
    pub(crate) fn tree(lineage: Arc<Lineage<K, V>>, root: *mut INode<K, V>, death: Gen) -> Self {
        Job {
            lineage,
            from: ptr::null(),
            batches: ptr::null_mut(),
            work: vec![(Retired::inode(root).deep(), death)],
            pending: None,
        }
    }

    /// Runs the job, pinned, for at most [`FREE_BUDGET`] placements; hands the rest on.
    ///
    /// # Safety
    /// A grace period has passed since every node of the job was retired (or since the era
    /// died); the nodes are the job's to place (each is in exactly one job or era).
    pub(crate) unsafe fn run(mut self) {
        let guard = &crossbeam_epoch::pin();
        let mut budget = FREE_BUDGET;
        // SAFETY: per the contract; eras read while pinned stay allocated.
        unsafe {
            if !self.from.is_null() {
                // The root its freeze retired: born in the era's generation, no older era sees
                // it. Relaxed: the era's death (an Acquire fence after the last handle's release)
                // ordered the store before us.
                let root = Era::take_root(self.from);
                if !root.is_null() {
                    Retired::inode(root).free(&mut Children(&mut self.work, 0));
                    budget -= 1;
                }
            }
            loop {
                if budget == 0 {
                    self.flush(guard);
                    // Attachments are all sent: the job holds no era but `from`, which is not
                    // settled yet, so nothing it points to can be freed before it runs again.
                    return retire(guard, move || self.run());
                }
                let Some((x, death)) = self.work.pop() else {
                    if self.batches.is_null() {
                        break;
                    }
                    let batch = Box::from_raw(self.batches);
                    self.batches = batch.next;
                    self.work
                        .extend(batch.nodes.iter().map(|&x| (x, batch.death)));
                    continue;
                };
                budget -= 1;
                self.place(x, death, guard);
            }
            self.flush(guard);
            if !self.from.is_null() {
                Era::settled(self.from, &self.lineage, guard);
            }
        }
    }

    /// Attaches `x` to the youngest live era that may see it, or frees it (pushing its children
    /// if it is retired deep).
    ///
    /// # Safety
    /// As [`Job::run`]; pinned by `guard`.
    unsafe fn place(&mut self, x: Retired<K, V>, death: Gen, guard: &Guard) {
        // SAFETY: per the contract.
        unsafe {
            let birth = x.birth();
            // A deep retirement leaves an ancestor lineage's nodes to it (N4, N5).
            if x.is_deep() && birth < self.lineage.base {
                return;
            }
            let mut era = if self.from.is_null() {
                self.lineage.newest()
            } else {
                // Acquire: see the older era's fields.
                (*self.from).next.load(Ordering::Acquire)
            };
            while !era.is_null() && (*era).gen >= birth {
                if (*era).gen < death && (*era).accepts() {
                    self.attach(era, x, death, guard);
                    return;
                }
                // Acquire: as above.
                era = (*era).next.load(Ordering::Acquire);
            }
            x.free(&mut Children(&mut self.work, death));
        }
    }

    /// Adds `x` to the attachment collected for `era`, sending the previous one first if it
    /// was for another era or is full.
    ///
    /// # Safety
    /// Pinned by `guard`; `era` is listed.
    unsafe fn attach(&mut self, era: *mut Era<K, V>, x: Retired<K, V>, death: Gen, guard: &Guard) {
        if let Some((e, batch)) = &mut self.pending {
            if *e == era && batch.death == death && batch.nodes.len() < PENDING_MAX {
                batch.nodes.push(x);
                return;
            }
        }
        // SAFETY: forwarded.
        unsafe { self.flush(guard) };
        let mut nodes = SmallVec::new();
        nodes.push(x);
        self.pending = Some((
            era,
            Box::new(Batch {
                next: ptr::null_mut(),
                death,
                nodes,
            }),
        ));
    }

    /// Sends the collected attachment; if its era died meanwhile, its nodes are placed again.
    ///
    /// # Safety
    /// Pinned by `guard` since the attachment was collected.
    unsafe fn flush(&mut self, _guard: &Guard) {
        if let Some((era, batch)) = self.pending.take() {
            // SAFETY: `era` was listed when collected and we have been pinned since.
            if let Err(batch) = unsafe { Era::attach(era, batch) } {
                let d = batch.death;
                self.work.extend(batch.nodes.iter().map(|&x| (x, d)));
            }
        }
    }
}

/// The children of a deep free, each to be placed with its parent's death.
struct Children<'a, K, V>(&'a mut Vec<(Retired<K, V>, Gen)>, Gen);

impl<K, V> Extend<Retired<K, V>> for Children<'_, K, V> {
    fn extend<T: IntoIterator<Item = Retired<K, V>>>(&mut self, iter: T) {
        let d = self.1;
        self.0.extend(iter.into_iter().map(|x| (x, d)));
    }
}

/// Queues `job` to run after a grace period.
///
/// # Safety
/// As [`Job::run`], once the grace period has passed.
pub(crate) unsafe fn run_later<K, V>(job: Job<K, V>, guard: &Guard) {
    // SAFETY: forwarded.
    unsafe { retire(guard, move || job.run()) };
}
