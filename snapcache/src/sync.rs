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
