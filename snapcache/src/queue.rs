//! The input queue: bounded, shared by update lists and statuses so their order is kept;
//! producers block while it is full.
//!
//! Wake-ups are counted, not broadcast on every operation: a producer that finds the queue full
//! and a consumer that finds it empty register under the lock before waiting, and the other side
//! signals only when someone is registered. Blocked producers are woken once the consumer has
//! drained the queue to half its capacity, so a producer that outpaces the processing thread
//! refills it in one go instead of being woken (and put back to sleep) for every item taken.
//! (`std`'s condition variable makes a system call for every notification, waiter or not.) No
//! wake-up is lost: registration and the check it depends on happen under the same lock as the
//! change that triggers the signal; `loom-tests` models it.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

use crate::sync::{Condvar, Mutex};
use crate::types::{SyncStatus, Update};

/// An item of the input queue.
#[derive(Debug)]
pub(crate) enum Item {
    Updates(Vec<Update>),
    Status(SyncStatus),
}

/// Returned by [`Cache::on_updates`](crate::Cache::on_updates) and
/// [`Cache::on_status_updated`](crate::Cache::on_status_updated) after the cache shut down; the
/// rejected input is handed back.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed<T>(pub T);

impl<T> fmt::Display for Closed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the cache has shut down")
    }
}

impl<T: fmt::Debug> std::error::Error for Closed<T> {}

struct State {
    items: VecDeque<Item>,
    closed: bool,
    /// Producers waiting for room (registered under the lock before waiting).
    blocked_senders: usize,
    /// Consumers waiting for an item (registered under the lock before waiting).
    blocked_receivers: usize,
}

/// A bounded multi-producer, single-consumer queue.
pub(crate) struct Queue {
    state: Mutex<State>,
    capacity: usize,
    not_empty: Condvar,
    not_full: Condvar,
}

/// What [`Queue::recv_until`] found.
pub(crate) enum Recv {
    Item(Item),
    Timeout,
    /// Closed and drained.
    Closed,
}

/// Most items a new queue allocates room for before any arrive.
const PREALLOCATE: usize = 1024;

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                // Not the whole capacity up front: it is a bound, and may be huge.
                items: VecDeque::with_capacity(capacity.min(PREALLOCATE)),
                closed: false,
                blocked_senders: 0,
                blocked_receivers: 0,
            }),
            capacity,
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
        }
    }

    fn lock(&self) -> crate::sync::MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the queue inconsistent (every critical
        // section is a single push or pop), so poisoning is ignored.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends `item`, waiting while the queue is full. Fails (handing the item back) once the
    /// queue is closed.
    pub(crate) fn send(&self, item: Item) -> Result<(), Item> {
        let mut st = self.lock();
        while st.items.len() >= self.capacity && !st.closed {
            let register = !unregistered_sender();
            st.blocked_senders += usize::from(register);
            st = self.not_full.wait(st).unwrap_or_else(|e| e.into_inner());
            st.blocked_senders -= usize::from(register);
        }
        if st.closed {
            return Err(item);
        }
        st.items.push_back(item);
        let wake = st.blocked_receivers > 0;
        drop(st);
        if wake {
            self.not_empty.notify_one();
        }
        Ok(())
    }

    /// Takes the oldest item, waiting until `deadline` at most. Items accepted before `close`
    /// are still delivered after it.
    pub(crate) fn recv_until(&self, deadline: Instant) -> Recv {
        let mut st = self.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                self.taken(st);
                return Recv::Item(item);
            }
            if st.closed {
                return Recv::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Recv::Timeout;
            }
            st.blocked_receivers += 1;
            st = self.wait_timeout(st, deadline - now);
            st.blocked_receivers -= 1;
        }
    }

    #[cfg(not(snapcache_loom))]
    fn wait_timeout<'a>(
        &self,
        st: crate::sync::MutexGuard<'a, State>,
        d: Duration,
    ) -> crate::sync::MutexGuard<'a, State> {
        self.not_empty
            .wait_timeout(st, d)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    #[cfg(snapcache_loom)]
    fn wait_timeout<'a>(
        &self,
        st: crate::sync::MutexGuard<'a, State>,
        _d: Duration,
    ) -> crate::sync::MutexGuard<'a, State> {
        // Loom has no time: a timed wait is a wait that may return at any moment.
        self.not_empty.wait(st).unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the oldest item if there is one.
    pub(crate) fn try_recv(&self) -> Option<Item> {
        let mut st = self.lock();
        let item = st.items.pop_front();
        if item.is_some() {
            self.taken(st);
        }
        item
    }

    /// After an item was taken (lock still held): wakes the blocked producers once the queue is
    /// down to half its capacity.
    fn taken(&self, st: crate::sync::MutexGuard<'_, State>) {
        let wake = st.blocked_senders > 0 && st.items.len() <= self.refill_at();
        drop(st);
        if wake {
            // All of them: there is room for several now, and each rechecks under the lock.
            self.not_full.notify_all();
        }
    }

    /// The length at or below which blocked producers are woken.
    fn refill_at(&self) -> usize {
        self.capacity / 2
    }

    /// Refuses further items and wakes blocked producers (which get their items back) and the
    /// consumer (which drains what was accepted).
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.not_full.notify_all();
        self.not_empty.notify_all();
    }
}

/// Seeded bug for the loom model (`loom-tests`): a producer that waits without registering
/// itself is never woken. Always off outside loom builds.
#[cfg(snapcache_loom)]
static UNREGISTERED_SENDER: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Turns the seeded bug on or off (loom builds only).
#[cfg(snapcache_loom)]
pub(crate) fn set_unregistered_sender(on: bool) {
    // Relaxed: set before the model runs, by the same thread.
    UNREGISTERED_SENDER.store(on, std::sync::atomic::Ordering::Relaxed);
}

#[cfg(snapcache_loom)]
fn unregistered_sender() -> bool {
    // Relaxed: see `set_unregistered_sender`.
    UNREGISTERED_SENDER.load(std::sync::atomic::Ordering::Relaxed)
}

#[cfg(not(snapcache_loom))]
#[inline(always)]
fn unregistered_sender() -> bool {
    false
}
