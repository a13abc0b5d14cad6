//! Waiting for the next breadcrumb: one 32-bit futex word per cache, cancellation tokens, and
//! the bridge that wakes async followers.
//!
//! # No lost wake-ups
//! The publisher links the new breadcrumb (`next` store, Release), then bumps [`Hub::epoch`]
//! (Release) and wakes the threads waiting on it. A follower reads the epoch (Acquire), *then*
//! checks for a successor, and sleeps only while the epoch still holds the value it read (the
//! futex compares atomically). If it read the epoch before the bump, the bump makes the futex
//! refuse to sleep (or wakes it); if after, the Acquire read makes the link visible to its check.
//! This re-check is exactly what Typha added after losing wake-ups; [`set_skip_recheck`] turns it
//! off for the loom model that shows the bug.
//!
//! The wake system call is skipped when no thread sleeps: a follower announces itself in
//! `sleepers` before sleeping, and the publisher reads `sleepers` after bumping the epoch. Each
//! side's write is separated from its read by a SeqCst fence (F_NOTIFY, F_SLEEP), so at least
//! one side sees the other's write: the publisher wakes, or the sleeper finds the epoch moved.
//!
//! The publisher's cost does not grow with followers: one store, one increment, a load, at most
//! one wake for all blocked threads and one for the bridge. Async followers register wakers; the
//! *bridge* thread, not the publisher, wakes them.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use std::fmt;

use crate::stats::Stats;
use crate::sync::{self, fence, thread, Arc, AtomicBool, AtomicU32, Mutex, Ordering};

/// Per-cache state shared by its breadcrumbs, followers and processing thread.
pub(crate) struct Hub {
    /// Bumped after every publication, cancellation, periodic wake-up and at shutdown.
    epoch: AtomicU32,
    /// Threads currently sleeping (or about to) on `epoch`.
    sleepers: AtomicU32,
    /// Set once the cache has shut down: no breadcrumb will ever be published again.
    closed: AtomicBool,
    /// Wakers of async followers waiting for the epoch to move, and whether there are any.
    wakers: Mutex<Wakers>,
    wakers_pending: AtomicBool,
    /// The bridge thread sleeps on this word until the publisher has wakers for it to wake.
    bridge: AtomicU32,
    pub(crate) stats: Stats,
    /// Returns from the futex wait (test builds only), to count who a wake-up reached.
    #[cfg(test)]
    wake_ups: AtomicU32,
}

impl Hub {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Hub {
            epoch: AtomicU32::new(0),
            sleepers: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            wakers: Mutex::new(Wakers {
                list: Vec::new(),
                drains: 0,
            }),
            wakers_pending: AtomicBool::new(false),
            bridge: AtomicU32::new(0),
            stats: Stats::default(),
            #[cfg(test)]
            wake_ups: AtomicU32::new(0),
        })
    }

    /// The current epoch.
    pub(crate) fn epoch(&self) -> u32 {
        // Acquire: pairs with the Release bump in `notify`, so whatever was linked before the
        // bump is visible after reading it.
        self.epoch.load(Ordering::Acquire)
    }

    /// Moves the epoch and wakes every blocked follower, and the bridge if async followers wait.
    pub(crate) fn notify(&self) {
        // Release: publishes the link made before this bump to followers that read the epoch.
        self.epoch.fetch_add(1, Ordering::Release);
        // F_NOTIFY: orders the bump before the reads of `sleepers` and `wakers_pending`. Pairs
        // with F_SLEEP in `wait` and F_REGISTER in `register`.
        fence(Ordering::SeqCst);
        // Relaxed (both): the fence above orders them; a stale zero is impossible for a
        // sleeper whose F_SLEEP precedes F_NOTIFY, and one whose F_SLEEP follows sees the bump.
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            sync::wake_all(&self.epoch);
        }
        if self.wakers_pending.load(Ordering::Relaxed) {
            // Relaxed: the bridge only needs the word to differ from what it slept on.
            self.bridge.fetch_add(1, Ordering::Relaxed);
            sync::wake_all(&self.bridge);
        }
    }

    /// Sleeps while the epoch is still `seen` (may return spuriously), as a waiter of the
    /// cancellation bit `mask`: publications wake every sleeper, a cancellation only those whose
    /// tokens share its bit (see [`Hub::notify_cancelled`]).
    pub(crate) fn wait(&self, seen: u32, mask: u32) {
        // Relaxed: the fence below orders it before the futex's read of the epoch.
        self.sleepers.fetch_add(1, Ordering::Relaxed);
        // F_SLEEP: orders our announcement before the futex compares the epoch. Pairs with
        // F_NOTIFY (in `notify` and `notify_cancelled`).
        fence(Ordering::SeqCst);
        sync::wait_masked(&self.epoch, seen, mask);
        #[cfg(test)]
        self.wake_ups.fetch_add(1, Ordering::Relaxed);
        // Relaxed: a late decrement only costs the publisher a needless wake.
        self.sleepers.fetch_sub(1, Ordering::Relaxed);
    }

    /// A token with cancellation bit `mask` was cancelled: moves the epoch (so that a follower
    /// between its check of the token and its sleep does not sleep) and wakes only the
    /// sleepers of that bit, about 1/32 of them. Waking every blocked follower instead cost
    /// 60-140 ms of latency and 100-155 ms of CPU per cancellation with 10,000 blocked
    /// followers (`benches/src/bin/cancel_cost.rs`).
    pub(crate) fn notify_cancelled(&self, mask: u32) {
        // Release: as in `notify`; here it publishes the token's `cancelled` store.
        self.epoch.fetch_add(1, Ordering::Release);
        // F_NOTIFY: as in `notify`; pairs with F_SLEEP in `wait`.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fence, as in `notify`.
        if self.sleepers.load(Ordering::Relaxed) > 0 {
            sync::wake_masked(&self.epoch, mask);
        }
    }

    /// Marks the cache closed and wakes everyone.
    pub(crate) fn close(&self) {
        // Release: ordered before the bump that wakes followers, who read it after the epoch.
        self.closed.store(true, Ordering::Release);
        self.notify();
        // Relaxed/wake: the bridge exits once it sees `closed`.
        self.bridge.fetch_add(1, Ordering::Relaxed);
        sync::wake_all(&self.bridge);
    }

    pub(crate) fn is_closed(&self) -> bool {
        // Acquire: pairs with the Release store in `close`.
        self.closed.load(Ordering::Acquire)
    }

    /// Registers an async follower's waker for the next epoch change. Returns `false` if the
    /// epoch already moved past `seen` (the caller then polls again at once; a waker it may
    /// have left behind is harmless).
    ///
    /// `registered` is the future's record of its last registration: if the list has not been
    /// drained since and the waker is the same, it is still listed and is not pushed again. So
    /// a future polled many times between two publications (in a `select!`, say) is listed
    /// once, and registering costs O(1) whatever the number of followers.
    fn register(&self, seen: u32, waker: &Waker, registered: &mut Option<(u64, Waker)>) -> bool {
        {
            let mut wakers = self.wakers.lock().unwrap_or_else(|e| e.into_inner());
            let listed = matches!(registered, Some((drains, w))
                if *drains == wakers.drains && w.will_wake(waker));
            if !listed {
                wakers.list.push(waker.clone());
                *registered = Some((wakers.drains, waker.clone()));
            }
            // Relaxed: ordered by F_REGISTER below; cleared by the bridge under the same lock.
            self.wakers_pending.store(true, Ordering::Relaxed);
        }
        // F_REGISTER: orders `wakers_pending` before our re-read of the epoch. Pairs with
        // F_NOTIFY: either the publisher sees the flag and wakes the bridge, or we see the bump.
        fence(Ordering::SeqCst);
        self.epoch() == seen
    }

    /// Starts the bridge thread that wakes async followers when the publisher asks; it exits
    /// once the hub is closed.
    pub(crate) fn spawn_bridge(hub: &Arc<Self>) -> thread::JoinHandle<()> {
        let hub = hub.clone();
        let bridge = move || loop {
            // Relaxed: only compared with the current value by the futex.
            let seen = hub.bridge.load(Ordering::Relaxed);
            let woken = {
                let mut wakers = hub.wakers.lock().unwrap_or_else(|e| e.into_inner());
                // Relaxed: under the lock that registrations take.
                hub.wakers_pending.store(false, Ordering::Relaxed);
                wakers.drains += 1;
                std::mem::take(&mut wakers.list)
            };
            for w in woken {
                w.wake();
            }
            if hub.is_closed() {
                return;
            }
            sync::wait(&hub.bridge, seen);
        };
        thread::Builder::new()
            .name("snapcache-wakers".into())
            .spawn(bridge)
            .expect("spawn the cache's waker thread")
    }
}

/// The wakers of async followers, and how many times the bridge has taken them all.
struct Wakers {
    list: Vec<Waker>,
    drains: u64,
}

/// Test-only switch for the loom model of the lost wake-up: followers skip the re-check of the
/// successor after reading the epoch (Typha's original bug). Never set it outside that model.
#[doc(hidden)]
pub fn set_skip_recheck(skip: bool) {
    SKIP_RECHECK.store(skip, std::sync::atomic::Ordering::Relaxed);
}

static SKIP_RECHECK: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn skip_recheck() -> bool {
    // Relaxed: a test switch set before the model runs.
    SKIP_RECHECK.load(std::sync::atomic::Ordering::Relaxed)
}

/// Cancels a follower's blocking [`Breadcrumb::next`](crate::Breadcrumb::next): clone it, hand
/// a clone to the follower, call [`cancel`](CancelToken::cancel) from anywhere. The follower
/// wakes at once.
///
/// All followers of a cache sleep on one futex word, so that a publication wakes them with one
/// system call. A cancellation wakes only the followers whose tokens share its token's
/// cancellation bit (one of 32, assigned round-robin as tokens are created): on Linux, about
/// 1/32 of the blocked followers, who find they are not cancelled and sleep again; elsewhere
/// every blocked follower of the cache. A token refers to the caches it waits on only while a
/// wait is in progress, so a long-lived token keeps no shut-down cache alive.
///
/// ```
/// let token = snapcache::CancelToken::new();
/// assert!(!token.is_cancelled());
/// token.clone().cancel();
/// assert!(token.is_cancelled());
/// ```
#[derive(Clone, Default)]
pub struct CancelToken {
    inner: Arc<CancelInner>,
}

struct CancelInner {
    cancelled: AtomicBool,
    /// The one bit of the futex mask that this token's followers sleep with.
    mask: u32,
    /// The hubs whose epoch a follower with this token is waiting on now, once per wait in
    /// progress, to wake it on cancel. A wait removes its entry when it ends.
    waiting_on: Mutex<Vec<Arc<Hub>>>,
}

impl Default for CancelInner {
    fn default() -> Self {
        /// Hands out cancellation bits round-robin. Only the spread matters, never an ordering
        /// with other memory, so a `std` atomic even under loom (a loom atomic cannot be a
        /// `static`).
        static NEXT_BIT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        // Relaxed: see above.
        let bit = NEXT_BIT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 32;
        CancelInner {
            cancelled: AtomicBool::new(false),
            mask: 1 << bit,
            waiting_on: Mutex::new(Vec::new()),
        }
    }
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels: a follower blocked in `next` with this token returns `Err(Cancelled)` promptly
    /// (unless a successor is already there, which it then returns).
    pub fn cancel(&self) {
        // Release: a follower that registers after our look at `waiting_on` below takes the same
        // lock afterwards, and so sees this store.
        self.inner.cancelled.store(true, Ordering::Release);
        let hubs = self.lock_waiting_on().clone();
        for hub in hubs {
            hub.notify_cancelled(self.inner.mask);
        }
    }

    /// Whether [`cancel`](CancelToken::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        // Acquire: pairs with the Release store in `cancel`.
        self.inner.cancelled.load(Ordering::Acquire)
    }

    /// The futex mask a follower waiting with this token sleeps with.
    pub(crate) fn mask(&self) -> u32 {
        self.inner.mask
    }

    /// Records that a follower with this token waits on `hub` until the returned guard drops.
    pub(crate) fn register<'t>(&'t self, hub: &Arc<Hub>) -> Registration<'t> {
        self.lock_waiting_on().push(hub.clone());
        Registration {
            token: self,
            hub: Arc::as_ptr(hub),
        }
    }

    fn lock_waiting_on(&self) -> crate::sync::MutexGuard<'_, Vec<Arc<Hub>>> {
        self.inner
            .waiting_on
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }
}

/// A wait in progress on a hub, registered with its token; dropping it ends the registration.
pub(crate) struct Registration<'t> {
    token: &'t CancelToken,
    hub: *const Hub,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut hubs = self.token.lock_waiting_on();
        if let Some(k) = hubs.iter().position(|h| Arc::as_ptr(h) == self.hub) {
            hubs.swap_remove(k);
        }
    }
}

impl fmt::Debug for CancelToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CancelToken")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

/// Returned by [`Breadcrumb::next`](crate::Breadcrumb::next) when its token was cancelled, or
/// the cache shut down, before a successor was published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cancelled;

impl fmt::Display for Cancelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cancelled (or the cache shut down) before the next breadcrumb")
    }
}

impl std::error::Error for Cancelled {}

/// The future of [`Breadcrumb::next_async`](crate::Breadcrumb::next_async).
#[must_use = "futures do nothing unless polled"]
pub struct NextFuture<'a> {
    pub(crate) current: &'a crate::Breadcrumb,
    pub(crate) blocked: bool,
    /// The drain count and waker of this future's last registration (see `Hub::register`).
    pub(crate) registered: Option<(u64, Waker)>,
}

impl Future for NextFuture<'_> {
    type Output = Result<Arc<crate::Breadcrumb>, Cancelled>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let hub = &self.current.hub;
        loop {
            let seen = hub.epoch();
            if let Some(next) = self.current.try_next() {
                hub.stats.count_next(self.blocked);
                return Poll::Ready(Ok(next));
            }
            if hub.is_closed() {
                return Poll::Ready(Err(Cancelled));
            }
            let this = &mut *self;
            if this
                .current
                .hub
                .register(seen, cx.waker(), &mut this.registered)
            {
                self.blocked = true;
                return Poll::Pending;
            }
        }
    }
}

impl fmt::Debug for NextFuture<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NextFuture")
            .field("after", &self.current.sequence_number)
            .finish()
    }
}

#[cfg(all(test, not(snapcache_loom)))]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn listed(hub: &Hub) -> usize {
        hub.wakers.lock().unwrap().list.len()
    }

    #[test]
    fn a_future_is_listed_once_per_drain() {
        let hub = Hub::new();
        let count = std::sync::Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut registered = None;
        let seen = hub.epoch();
        // Polled three times between publications: listed once. (`Waker::will_wake` is
        // best-effort: under Miri vtables have no unique address and it says false, which only
        // costs duplicate wake-ups; so this part is not checked there.)
        for _ in 0..3 {
            assert!(hub.register(seen, &waker, &mut registered));
        }
        if !cfg!(miri) {
            assert_eq!(listed(&hub), 1);
        }
        hub.wakers.lock().unwrap().list.truncate(1);
        // Another follower's waker is listed beside it.
        let other = Waker::from(std::sync::Arc::new(Count(AtomicUsize::new(0))));
        assert!(hub.register(seen, &other, &mut None));
        assert_eq!(listed(&hub), 2);
        // The bridge drains the list (as after a publication whose bump this follower has not
        // seen yet): the next registration must list the waker again, or it would never wake.
        {
            let mut wakers = hub.wakers.lock().unwrap();
            wakers.drains += 1;
            wakers.list.clear();
        }
        assert!(hub.register(seen, &waker, &mut registered));
        assert_eq!(listed(&hub), 1);
        // A new waker for the same future (it moved to another task) is listed too.
        let moved = Waker::from(std::sync::Arc::new(Count(AtomicUsize::new(0))));
        assert!(hub.register(seen, &moved, &mut registered));
        assert_eq!(listed(&hub), 2);
        // A registration after the epoch moved reports it, so the caller polls again.
        hub.notify();
        assert!(!hub.register(seen, &waker, &mut registered));
    }
}

#[cfg(all(test, not(snapcache_loom)))]
mod cancel_tests {
    use super::*;
    use crate::{Breadcrumb, SyncStatus};
    use std::time::{Duration, Instant};

    fn first_breadcrumb(hub: &Arc<Hub>) -> Arc<Breadcrumb> {
        let kvs = ctrie::Ctrie::new().read_only_snapshot();
        Arc::new(Breadcrumb::new(
            0,
            kvs,
            Vec::new(),
            SyncStatus::default(),
            hub.clone(),
        ))
    }

    /// Waits (bounded) until `n` followers sleep on `hub`, and a little more so that they are
    /// inside the futex wait, not just announced.
    fn until_asleep(hub: &Hub, n: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while hub.sleepers.load(Ordering::Relaxed) < n {
            assert!(Instant::now() < deadline, "followers never went to sleep");
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(100));
    }

    /// A token refers to the hub it waits on only while the wait lasts: afterwards it keeps no
    /// cache alive (it used to keep an `Arc<Hub>` forever).
    #[test]
    fn a_token_lets_go_of_the_hub_when_the_wait_ends() {
        let hub = Hub::new();
        let first = first_breadcrumb(&hub);
        let token = CancelToken::new();
        std::thread::scope(|s| {
            let follower = s.spawn(|| first.next(&token));
            until_asleep(&hub, 1);
            assert_eq!(token.lock_waiting_on().len(), 1, "registered while waiting");
            token.cancel();
            assert!(matches!(follower.join().unwrap(), Err(Cancelled)));
        });
        assert!(
            token.lock_waiting_on().is_empty(),
            "the token still holds the hub"
        );
        drop(first);
        assert_eq!(Arc::strong_count(&hub), 1, "something else holds the hub");
    }

    /// Cancelling one token wakes only the followers whose tokens share its bit, not every
    /// follower of the cache (Linux: `FUTEX_WAKE_BITSET`).
    #[cfg(target_os = "linux")]
    #[test]
    fn cancel_wakes_only_the_followers_of_its_bit() {
        let n = if cfg!(miri) { 8 } else { 64 };
        let hub = Hub::new();
        let first = first_breadcrumb(&hub);
        let tokens: Vec<CancelToken> = (0..n).map(|_| CancelToken::new()).collect();
        std::thread::scope(|s| {
            let followers: Vec<_> = tokens
                .iter()
                .map(|t| {
                    let first = &first;
                    s.spawn(move || first.next(t))
                })
                .collect();
            until_asleep(&hub, n as u32);
            let before = hub.wake_ups.load(Ordering::Relaxed);
            tokens[0].cancel();
            let mut followers = followers.into_iter();
            let cancelled = followers.next().unwrap();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !cancelled.is_finished() {
                if Instant::now() > deadline {
                    hub.close(); // wakes everyone, so the scope can end
                    panic!("the cancelled follower did not return");
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            assert!(matches!(cancelled.join().unwrap(), Err(Cancelled)));
            // Let whoever was woken by mistake be counted.
            std::thread::sleep(Duration::from_millis(200));
            let woken = hub.wake_ups.load(Ordering::Relaxed) - before;
            // Release everyone before judging, so that a failed assertion cannot leave the
            // scope waiting for followers that nobody will wake.
            for t in &tokens {
                t.cancel();
            }
            for f in followers {
                assert!(matches!(f.join().unwrap(), Err(Cancelled)));
            }
            let same_bit = tokens
                .iter()
                .filter(|t| t.mask() == tokens[0].mask())
                .count();
            // Spurious futex returns are allowed, hence the slack of one.
            assert!(
                woken as usize <= same_bit + 1,
                "{woken} of {n} followers woke for one cancellation ({same_bit} share its bit)"
            );
        });
    }
}
