//! Counters the reference cache exports, readable with [`Cache::stats`](crate::Cache::stats)
//! and, with the `metrics` feature, emitted under Typha's metric names through the `metrics`
//! facade.

use crate::sync::{AtomicU64, Ordering};

/// A copy of the cache's counters at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Updates received (`typha_updates_total`).
    pub updates_total: u64,
    /// Updates skipped as no-ops (`typha_updates_skipped`).
    pub updates_skipped: u64,
    /// Breadcrumbs published after the initial one.
    pub breadcrumbs_published: u64,
    /// `next` calls satisfied without waiting (`typha_breadcrumb_non_block`).
    pub next_non_blocking: u64,
    /// `next` calls that had to wait (`typha_breadcrumb_block`).
    pub next_blocking: u64,
    /// Sequence number of the newest breadcrumb (`typha_breadcrumb_seq_number`).
    pub latest_sequence_number: u64,
    /// Deltas in the newest breadcrumb (`typha_breadcrumb_size`).
    pub last_breadcrumb_size: u64,
    /// Keys in the cache (`typha_cache_size`).
    pub keys: u64,
}

#[derive(Default)]
pub(crate) struct Stats {
    updates_total: AtomicU64,
    updates_skipped: AtomicU64,
    breadcrumbs_published: AtomicU64,
    next_non_blocking: AtomicU64,
    next_blocking: AtomicU64,
    latest_sequence_number: AtomicU64,
    last_breadcrumb_size: AtomicU64,
    keys: AtomicU64,
}

// Relaxed throughout: counters are monitoring data with no ordering relation to anything else.
impl Stats {
    pub(crate) fn count_updates(&self, total: u64, skipped: u64) {
        self.updates_total.fetch_add(total, Ordering::Relaxed);
        self.updates_skipped.fetch_add(skipped, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::counter!("typha_updates_total").increment(total);
            metrics::counter!("typha_updates_skipped").increment(skipped);
        }
    }

    pub(crate) fn count_publish(&self, seq: u64, deltas: u64, keys: u64) {
        self.breadcrumbs_published.fetch_add(1, Ordering::Relaxed);
        self.latest_sequence_number.store(seq, Ordering::Relaxed);
        self.last_breadcrumb_size.store(deltas, Ordering::Relaxed);
        self.keys.store(keys, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        {
            metrics::gauge!("typha_breadcrumb_seq_number").set(seq as f64);
            metrics::histogram!("typha_breadcrumb_size").record(deltas as f64);
            metrics::gauge!("typha_cache_size").set(keys as f64);
        }
    }

    pub(crate) fn count_next(&self, blocked: bool) {
        if blocked {
            self.next_blocking.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("typha_breadcrumb_block").increment(1);
        } else {
            self.next_non_blocking.fetch_add(1, Ordering::Relaxed);
            #[cfg(feature = "metrics")]
            metrics::counter!("typha_breadcrumb_non_block").increment(1);
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            updates_total: self.updates_total.load(Ordering::Relaxed),
            updates_skipped: self.updates_skipped.load(Ordering::Relaxed),
            breadcrumbs_published: self.breadcrumbs_published.load(Ordering::Relaxed),
            next_non_blocking: self.next_non_blocking.load(Ordering::Relaxed),
            next_blocking: self.next_blocking.load(Ordering::Relaxed),
            latest_sequence_number: self.latest_sequence_number.load(Ordering::Relaxed),
            last_breadcrumb_size: self.last_breadcrumb_size.load(Ordering::Relaxed),
            keys: self.keys.load(Ordering::Relaxed),
        }
    }
}
