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

/// Blocks while `word` holds `expected`, as one of the waiters `mask` names (a non-zero set of
/// bits): [`wake_masked`] with an intersecting mask wakes it, and so does [`wake_all`]. Lets a
/// cancellation wake only the followers whose tokens share its bit instead of every follower of
/// the cache. On Linux this is `FUTEX_WAIT_BITSET`; elsewhere (and under loom) a plain wait,
/// which [`wake_masked`] then wakes with everyone else. May wake spuriously.
#[cfg(all(target_os = "linux", not(snapcache_loom)))]
pub(crate) fn wait_masked(word: &AtomicU32, expected: u32, mask: u32) {
    debug_assert_ne!(mask, 0);
    // SAFETY: FUTEX_WAIT_BITSET reads the 32-bit word at a valid, aligned address (an
    // `AtomicU32` we borrow for the call) and takes a null timeout (wait forever); the private
    // flag is right because the word is not shared with another process. Any result (woken,
    // EAGAIN when the word already differs, EINTR) means "re-check", which every caller does.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT_BITSET | libc::FUTEX_PRIVATE_FLAG,
            expected,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            mask,
        );
    }
}

/// Wakes every thread blocked in [`wait_masked`] on `word` whose mask intersects `mask`.
#[cfg(all(target_os = "linux", not(snapcache_loom)))]
pub(crate) fn wake_masked(word: &AtomicU32, mask: u32) {
    // SAFETY: FUTEX_WAKE_BITSET only uses the word's address as a key; `i32::MAX` means "all
    // matching waiters".
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE_BITSET | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
            core::ptr::null::<libc::timespec>(),
            core::ptr::null::<u32>(),
            mask,
        );
    }
}

#[cfg(not(all(target_os = "linux", not(snapcache_loom))))]
pub(crate) fn wait_masked(word: &AtomicU32, expected: u32, _mask: u32) {
    wait(word, expected)
}

#[cfg(not(all(target_os = "linux", not(snapcache_loom))))]
pub(crate) fn wake_masked(word: &AtomicU32, _mask: u32) {
    wake_all(word)
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
