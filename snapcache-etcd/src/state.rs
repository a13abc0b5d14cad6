//! What a running syncer reports about itself.

/// Where the syncer is in its state machine (see [`EtcdSyncer`](crate::EtcdSyncer)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Phase {
    /// No answer from etcd yet (the cache says `WaitForDatastore`).
    #[default]
    Connecting,
    /// Listing the prefix at one revision and feeding it to the cache (the cache says
    /// `ResyncInProgress`).
    Listing,
    /// Watching on from [`SyncerState::revision`] (the cache says `InSync`).
    Watching,
    /// Waiting before trying again after a failure ([`SyncerState::last_error`] says which).
    Retrying,
    /// Stopped: asked to, or the cache was shut down.
    Stopped,
}

/// A syncer's state, as [`EtcdSyncer::state`](crate::EtcdSyncer::state) shows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncerState {
    /// The current phase.
    pub phase: Phase,
    /// The last etcd revision whose changes the cache has been given: every change to the
    /// prefix up to it and none after (0 before the first list is complete).
    pub revision: i64,
    /// The revision of the last complete list.
    pub list_revision: i64,
    /// Complete lists: 1 after the initial sync, one more per resync.
    pub lists: u64,
    /// Watches opened after the first one of each list (re-watches after a lost connection).
    pub rewatches: u64,
    /// Keys the cache holds, as the syncer counts them.
    pub keys: usize,
    /// The last failure (a lost connection, a refused request) or the reason for the last
    /// resync, if any.
    pub last_error: Option<String>,
}

impl SyncerState {
    /// Resyncs so far: complete lists after the first.
    pub fn resyncs(&self) -> u64 {
        self.lists.saturating_sub(1)
    }
}
