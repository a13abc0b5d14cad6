//! The input queue: bounded, shared by update lists and statuses so their order is kept;
//! producers block while it is full.

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

impl Queue {
    pub(crate) fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::with_capacity(capacity),
                closed: false,
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
            st = self.not_full.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        if st.closed {
            return Err(item);
        }
        st.items.push_back(item);
        drop(st);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Takes the oldest item, waiting until `deadline` at most. Items accepted before `close`
    /// are still delivered after it.
    pub(crate) fn recv_until(&self, deadline: Instant) -> Recv {
        let mut st = self.lock();
        loop {
            if let Some(item) = st.items.pop_front() {
                drop(st);
                self.not_full.notify_one();
                return Recv::Item(item);
            }
            if st.closed {
                return Recv::Closed;
            }
            let now = Instant::now();
            if now >= deadline {
                return Recv::Timeout;
            }
            st = self.wait_timeout(st, deadline - now);
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
        let item = self.lock().items.pop_front();
        if item.is_some() {
            self.not_full.notify_one();
        }
        item
    }

    /// Refuses further items and wakes blocked producers (which get their items back) and the
    /// consumer (which drains what was accepted).
    pub(crate) fn close(&self) {
        self.lock().closed = true;
        self.not_full.notify_all();
        self.not_empty.notify_all();
    }
}
