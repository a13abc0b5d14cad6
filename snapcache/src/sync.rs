//! The one place where the crate names its concurrency primitives.
//!
//! Under `--cfg snapcache_loom` every atomic, lock, thread and the futex come from [loom] so
//! that its model checker can explore interleavings. Loom has no futex: [`wait`] / [`wake_all`]
//! become a condition variable keyed by the word's address under a loom mutex, so a lost
//! wake-up shows up as a loom deadlock.

#[cfg(not(snapcache_loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(not(snapcache_loom))]
pub(crate) use std::thread;

#[cfg(snapcache_loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, Ordering},
    Arc, Condvar, Mutex, MutexGuard,
};
#[cfg(snapcache_loom)]
pub(crate) use loom::thread;

/// Blocks while `word` holds `expected` (returns at once otherwise). May wake spuriously:
/// callers loop and re-check their condition.
#[cfg(not(snapcache_loom))]
pub(crate) fn wait(word: &AtomicU32, expected: u32) {
    atomic_wait::wait(word, expected)
}

/// Wakes every thread blocked in [`wait`] on `word`.
#[cfg(not(snapcache_loom))]
pub(crate) fn wake_all(word: &AtomicU32) {
    atomic_wait::wake_all(word)
}

#[cfg(snapcache_loom)]
mod futex {
    use super::{AtomicU32, Condvar, Mutex, Ordering};

    loom::lazy_static! {
        /// One lock and condition variable for every word: waking all waiters of all words is
        /// allowed (waiters re-check), and a single lock makes the check-then-sleep atomic with
        /// respect to wake-ups, as the kernel's futex does.
        static ref FUTEX: (Mutex<()>, Condvar) = (Mutex::new(()), Condvar::new());
    }

    pub(crate) fn wait(word: &AtomicU32, expected: u32) {
        let (lock, cv) = &*FUTEX;
        let guard = lock.lock().unwrap();
        // SeqCst: stands for the kernel's atomic compare of the futex word.
        if word.load(Ordering::SeqCst) == expected {
            drop(cv.wait(guard).unwrap());
        }
    }

    pub(crate) fn wake_all(_word: &AtomicU32) {
        let (lock, cv) = &*FUTEX;
        let _guard = lock.lock().unwrap();
        cv.notify_all();
    }
}

#[cfg(snapcache_loom)]
pub(crate) use futex::{wait, wake_all};

/// Memory a thread may be sitting on. crossbeam-epoch queues deferred frees in a bag per
/// thread, handed to the other threads only once it holds 64 or the thread flushes. A thread that
/// dropped a breadcrumb has queued there the release of every trie node only its snapshot held;
/// the processing thread has queued the nodes its last writes replaced and the breadcrumb it
/// made stale. A thread that then sleeps (a follower until the next breadcrumb, the processing
/// thread until the next input) would keep all that alive meanwhile, so it hands the bag over
/// first. In the fan-out demo with 64 follower threads this halved the peak memory.
pub(crate) mod garbage {
    #[cfg(not(snapcache_loom))]
    std::thread_local! {
        static HELD: core::cell::Cell<bool> = const { core::cell::Cell::new(false) };
    }

    /// This thread just dropped a breadcrumb.
    pub(crate) fn note_dropped() {
        #[cfg(not(snapcache_loom))]
        let _ = HELD.try_with(|h| h.set(true));
    }

    /// Before a follower sleeps: hand over its deferred frees if it dropped a breadcrumb since
    /// it last did (one flush per breadcrumb dropped, not per wait).
    pub(crate) fn hand_over_if_dropped() {
        #[cfg(not(snapcache_loom))]
        if HELD.try_with(|h| h.replace(false)).unwrap_or(false) {
            hand_over();
        }
    }

    /// Hands this thread's deferred frees to the other threads and collects what has expired.
    /// A no-op under loom, whose models do not need it and would only grow.
    pub(crate) fn hand_over() {
        #[cfg(not(snapcache_loom))]
        crossbeam_epoch::pin().flush();
    }
}
