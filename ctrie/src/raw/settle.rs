//! The deferred work of reclamation: placing the nodes of a dead era, and retiring a whole tree
//! (`clear`, drop) node by node (see `reclaim.rs`, N3, N5, N6).
//!
//! A [`Job`] holds the youngest live era that may still need its nodes (a counted hold, taken
//! when the era died or when the tree job starts): a node born at or before that era's
//! generation is attached to it, any other is freed (with its children, for a tree). No era list
//! is walked per node. A job runs in a deferred function, pinned, and does at most
//! [`FREE_BUDGET`] placements before it hands the rest on to another deferred function (N6).

use core::ptr;

use crossbeam_epoch::Guard;
use smallvec::SmallVec;

use super::era::{Batch, Era, EraRef, Lineage};
use super::node::{Gen, INode};
use super::reclaim::{retire, Retired, FREE_BUDGET};
use crate::sync::Arc;

/// Placements still to make.
pub(crate) struct Job<K, V> {
    lineage: Arc<Lineage<K, V>>,
    /// Where nodes that an era may still see go; `None`: no live era may (free them all).
    hold: Option<EraRef<K, V>>,
    /// For a tree: the hold is looked up when the job first runs, among the eras older than this
    /// generation (the tree's death).
    find_hold_below: Option<Gen>,
    /// Batches of the dead era not opened yet.
    batches: *mut Batch<K, V>,
    /// Nodes to place, with their death.
    work: Vec<(Retired<K, V>, Gen)>,
    /// Attachments collected for the hold, sent as one batch.
    pending: Option<Box<Batch<K, V>>>,
}

/// How many nodes one attachment made by a job carries at most.
const PENDING_MAX: usize = 64;

impl<K, V> Job<K, V> {
    /// Settles the death of an era whose garbage list was `garbage` and whose freeze retired
    /// `root` (if not null): the root is freed (born in the era's generation, no older era sees
    /// it), the batches go to `hold` (the youngest live era older than the dead one) or are
    /// freed.
    pub(crate) fn settle(
        lineage: Arc<Lineage<K, V>>,
        garbage: *mut Batch<K, V>,
        root: *mut INode<K, V>,
        hold: Option<EraRef<K, V>>,
    ) -> Self {
        let mut work = Vec::new();
        if !root.is_null() {
            work.push((Retired::inode(root), 0));
        }
        Job {
            lineage,
            hold,
            find_hold_below: None,
            batches: garbage,
            work,
            pending: None,
        }
    }

    /// Retires the tree under `root` deep, dying in generation `death` (N5).
    pub(crate) fn tree(lineage: Arc<Lineage<K, V>>, root: *mut INode<K, V>, death: Gen) -> Self {
        Job {
            lineage,
            hold: None,
            find_hold_below: Some(death),
            batches: ptr::null_mut(),
            work: vec![(Retired::inode(root).deep(), death)],
            pending: None,
        }
    }

    /// The lineage whose nodes the job places.
    pub(crate) fn lineage(&self) -> &Arc<Lineage<K, V>> {
        &self.lineage
    }

    /// Runs the job, pinned, for at most [`FREE_BUDGET`] placements; hands the rest on.
    ///
    /// # Safety
    /// A grace period has passed since every node of the job was retired (or since the era
    /// died); the nodes are the job's to place (each is in exactly one job or era).
    pub(crate) unsafe fn run(mut self) {
        let guard = &crossbeam_epoch::pin();
        let mut budget = FREE_BUDGET;
        // SAFETY: per the contract.
        if !unsafe { self.step(&mut budget, guard) } {
            // The job holds no pointer to an era but its hold, which keeps that era alive until
            // the job ends.
            // SAFETY: forwarded.
            unsafe { retire(guard, move || self.run()) };
        }
        // Dropping the hold may kill that era in turn (its own settlement follows).
    }

    /// Makes placements until the job is done (`true`) or `budget` is spent (`false`; the job
    /// can be stepped again later, by any thread).
    ///
    /// # Safety
    /// As [`Job::run`]; pinned by `_guard`.
    pub(crate) unsafe fn step(&mut self, budget: &mut usize, _guard: &Guard) -> bool {
        // SAFETY: per the contract.
        unsafe {
            if let Some(death) = self.find_hold_below.take() {
                // The eras alive now that are older than the tree's death: the youngest of them
                // is the only one that can still see nodes of the tree (those dead meanwhile see
                // nothing, and eras registered since are at least as young as the death).
                self.hold = Era::hold_below(self.lineage.newest(), death, &self.lineage);
            }
            loop {
                if self.work.is_empty() {
                    if self.batches.is_null() {
                        self.flush();
                        return true;
                    }
                    let batch = Box::from_raw(self.batches);
                    self.batches = batch.next;
                    self.work
                        .extend(batch.nodes.iter().map(|&x| (x, batch.death)));
                    continue;
                }
                if *budget == 0 {
                    self.flush();
                    return false;
                }
                *budget -= 1;
                let (x, death) = self.work.pop().expect("not empty");
                self.place(x, death);
            }
        }
    }

    /// Attaches `x` to the hold if that era may see it, or frees it (pushing its children if it
    /// is retired deep).
    ///
    /// # Safety
    /// As [`Job::run`].
    unsafe fn place(&mut self, x: Retired<K, V>, death: Gen) {
        // SAFETY: per the contract.
        unsafe {
            let birth = x.birth();
            // A deep retirement leaves an ancestor lineage's nodes to it (N4, N5).
            if x.is_deep() && birth < self.lineage.base {
                return;
            }
            match &self.hold {
                // The hold is older than the node's death (it is older than the dead era, or
                // than the tree's death), so the node is in its view iff born by then (N0).
                Some(h) if h.gen() >= birth => self.attach(x, death),
                _ => x.free(&mut Children(&mut self.work, death)),
            }
        }
    }

    /// Adds `x` to the attachment collected for the hold, sending the previous one first if it
    /// is full or for another death.
    fn attach(&mut self, x: Retired<K, V>, death: Gen) {
        if let Some(batch) = &mut self.pending {
            if batch.death == death && batch.nodes.len() < PENDING_MAX {
                batch.nodes.push(x);
                return;
            }
        }
        self.flush();
        let mut nodes = SmallVec::new();
        nodes.push(x);
        self.pending = Some(Box::new(Batch {
            next: ptr::null_mut(),
            death,
            nodes,
        }));
    }

    /// Sends the collected attachment to the hold.
    fn flush(&mut self) {
        if let Some(batch) = self.pending.take() {
            let hold = self.hold.as_ref().expect("attachments go to the hold");
            // SAFETY: the era lives while we hold it, so it has not died: the attachment cannot
            // find it closed.
            let sent = unsafe { Era::attach(hold.era(), batch) };
            assert!(sent.is_ok(), "a held era was closed");
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
