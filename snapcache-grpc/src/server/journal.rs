//! Per-cache history on the server: a chain of [`Entry`]s that mirrors the cache's breadcrumbs
//! and carries each breadcrumb's deltas encoded once, and the [`Journal`] that keeps the recent
//! ones for resuming clients.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use snapcache::{Breadcrumb, Cache, Cancelled};

use super::stats::ServerStats;
use crate::wire::encode_kvs;

/// A breadcrumb as the server sends it: the breadcrumb, its deltas encoded once (on first use,
/// by whichever client task needs them first), and the next entry.
///
/// Entries link forward like breadcrumbs, so a client task holding one keeps it and every
/// later one alive, and nothing earlier. Every client reaches entry `n + 1` through entry `n`,
/// so there is exactly one entry (and at most one encoding) per breadcrumb.
pub(crate) struct Entry {
    pub(crate) crumb: Arc<Breadcrumb>,
    kvs: OnceLock<Bytes>,
    next: OnceLock<Arc<Entry>>,
}

impl Entry {
    pub(crate) fn new(crumb: Arc<Breadcrumb>) -> Arc<Self> {
        Arc::new(Entry {
            crumb,
            kvs: OnceLock::new(),
            next: OnceLock::new(),
        })
    }

    pub(crate) fn seq(&self) -> u64 {
        self.crumb.sequence_number
    }

    /// The successor if its breadcrumb is published; never waits.
    pub(crate) fn try_next(&self) -> Option<Arc<Entry>> {
        if let Some(next) = self.next.get() {
            return Some(next.clone());
        }
        let crumb = self.crumb.try_next()?;
        Some(self.link(crumb))
    }

    /// The successor, waiting for its breadcrumb (`Err` once the cache has shut down).
    pub(crate) async fn next(&self) -> Result<Arc<Entry>, Cancelled> {
        if let Some(next) = self.next.get() {
            return Ok(next.clone());
        }
        let crumb = self.crumb.next_async().await?;
        Ok(self.link(crumb))
    }

    fn link(&self, crumb: Arc<Breadcrumb>) -> Arc<Entry> {
        self.next.get_or_init(|| Entry::new(crumb)).clone()
    }

    /// The deltas' `kvs` records, encoded on the first call (counted in `stats`).
    pub(crate) fn encoded_deltas(&self, stats: &ServerStats) -> &Bytes {
        self.kvs.get_or_init(|| {
            stats.count_delta_encoding();
            encode_kvs(&self.crumb.deltas)
        })
    }

    /// Nanoseconds since the Unix epoch at which the breadcrumb was published.
    pub(crate) fn published_nanos(&self) -> u64 {
        self.crumb
            .timestamp
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64)
    }
}

impl Drop for Entry {
    /// Releases the chain iteratively, as `Breadcrumb` does: no recursion over long chains.
    fn drop(&mut self) {
        let mut next = self.next.take();
        while let Some(arc) = next {
            match Arc::try_unwrap(arc) {
                Ok(mut entry) => next = entry.next.take(),
                Err(_) => break,
            }
        }
    }
}

/// Why a resume point was not honoured (the client then gets a snapshot, and this as the
/// reason it can log).
#[derive(Debug)]
pub(crate) enum ResumeRefused {
    OtherInstance { theirs: String },
    TooOld { oldest: u64 },
}

impl std::fmt::Display for ResumeRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResumeRefused::OtherInstance { theirs } => write!(
                f,
                "the resume point is from cache instance {theirs}, not this one (the server or its cache restarted)"
            ),
            ResumeRefused::TooOld { oldest } => write!(
                f,
                "the resume point is older than the resume window (oldest breadcrumb kept: {oldest})"
            ),
        }
    }
}

/// How long and how much history a journal keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Window {
    pub(crate) age: Duration,
    pub(crate) breadcrumbs: usize,
}

/// The recent entries of one cache, for resuming clients, and the newest entry, where new
/// clients start. A task per cache ([`Journal::follow`]) walks the chain and trims the window.
pub(crate) struct Journal {
    pub(crate) cache: Cache,
    /// This cache instance's unique ID (new for every server start).
    pub(crate) id: String,
    /// Oldest first, consecutive sequence numbers, never empty (the back is the newest).
    entries: Mutex<VecDeque<Arc<Entry>>>,
    window: Window,
}

impl Journal {
    pub(crate) fn new(cache: Cache, window: Window) -> Arc<Self> {
        let first = Entry::new(cache.current_breadcrumb());
        Arc::new(Journal {
            cache,
            id: new_id(),
            entries: Mutex::new(VecDeque::from([first])),
            window,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Arc<Entry>>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest entry the journal has seen.
    pub(crate) fn newest(&self) -> Arc<Entry> {
        self.lock().back().expect("never empty").clone()
    }

    /// The sequence number of the newest breadcrumb published (possibly newer than
    /// [`newest`](Self::newest), which follows it asynchronously).
    pub(crate) fn newest_seq(&self) -> u64 {
        self.cache.current_breadcrumb().sequence_number
    }

    /// The entry at `seq` of instance `id`, if the window still has it.
    pub(crate) fn find(&self, id: &str, seq: u64) -> Result<Option<Arc<Entry>>, ResumeRefused> {
        // Seeded bug: any instance's resume point is taken for ours.
        if id != self.id && !crate::seeded::active("resume_any_instance") {
            return Err(ResumeRefused::OtherInstance { theirs: id.into() });
        }
        let entries = self.lock();
        let oldest = entries.front().expect("never empty").seq();
        if seq < oldest {
            return Err(ResumeRefused::TooOld { oldest });
        }
        // `None`: newer than the newest we have seen (possibly just published, or bogus).
        Ok(entries.get((seq - oldest) as usize).cloned())
    }

    /// Follows the chain until the cache shuts down, appending each entry and trimming those
    /// older than the window (always keeping the newest).
    pub(crate) async fn follow(self: Arc<Self>) {
        let mut tail = self.newest();
        // Trimmed at every publication, and at least every second when nothing is published.
        let tick = self
            .window
            .age
            .clamp(Duration::from_millis(10), Duration::from_secs(1));
        loop {
            tokio::select! {
                next = tail.next() => match next {
                    Ok(next) => {
                        tail = next;
                        self.lock().push_back(tail.clone());
                    }
                    Err(Cancelled) => return,
                },
                _ = tokio::time::sleep(tick) => {}
            }
            let mut entries = self.lock();
            let horizon = SystemTime::now().checked_sub(self.window.age);
            while entries.len() > 1
                && (entries.len() > self.window.breadcrumbs.max(1)
                    || horizon.is_some_and(|h| entries[0].crumb.timestamp < h))
            {
                entries.pop_front();
            }
        }
    }
}

/// A random 128-bit ID in hex.
pub(crate) fn new_id() -> String {
    format!("{:032x}", rand::random::<u128>())
}
