//! Where the syncer's updates and statuses go: a [`Sink`] (the cache), fed from async code.

use std::sync::Arc;

use snapcache::{Cache, Closed, SyncStatus, Update};

/// The receiving end of a syncer: Typha's `OnUpdates` / `OnStatusUpdated`. [`Cache`]
/// implements it; a wrapper can record or transform what passes.
///
/// Both calls may block (the cache's input queue is bounded, which is how a slow cache slows
/// the syncer down); the syncer makes them from a blocking thread, one at a time, in order.
pub trait Sink: Send + Sync + 'static {
    /// Takes a batch of updates (never empty).
    fn on_updates(&self, updates: Vec<Update>) -> Result<(), Closed<Vec<Update>>>;
    /// Takes a status change.
    fn on_status_updated(&self, status: SyncStatus) -> Result<(), Closed<SyncStatus>>;
}

impl Sink for Cache {
    fn on_updates(&self, updates: Vec<Update>) -> Result<(), Closed<Vec<Update>>> {
        Cache::on_updates(self, updates)
    }

    fn on_status_updated(&self, status: SyncStatus) -> Result<(), Closed<SyncStatus>> {
        Cache::on_status_updated(self, status)
    }
}

impl<S: Sink> Sink for Arc<S> {
    fn on_updates(&self, updates: Vec<Update>) -> Result<(), Closed<Vec<Update>>> {
        (**self).on_updates(updates)
    }

    fn on_status_updated(&self, status: SyncStatus) -> Result<(), Closed<SyncStatus>> {
        (**self).on_status_updated(status)
    }
}

/// The sink is closed: the syncer has nothing left to do.
#[derive(Debug)]
pub(crate) struct SinkClosed;

/// Feeds a sink from async code, without blocking the runtime's threads, and without sending
/// the same status twice in a row.
pub(crate) struct Feed {
    sink: Arc<dyn Sink>,
    status: Option<SyncStatus>,
}

impl Feed {
    pub(crate) fn new(sink: Arc<dyn Sink>) -> Self {
        Feed { sink, status: None }
    }

    /// Sends `updates` (nothing if empty).
    pub(crate) async fn updates(&mut self, updates: Vec<Update>) -> Result<(), SinkClosed> {
        if updates.is_empty() {
            return Ok(());
        }
        let sink = self.sink.clone();
        match tokio::task::spawn_blocking(move || sink.on_updates(updates)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(SinkClosed),
            Err(e) => resume(e),
        }
    }

    /// Sends `updates` in batches of at most `size`.
    pub(crate) async fn batches(
        &mut self,
        mut updates: Vec<Update>,
        size: usize,
    ) -> Result<(), SinkClosed> {
        while !updates.is_empty() {
            let rest = updates.split_off(size.min(updates.len()));
            self.updates(updates).await?;
            updates = rest;
        }
        Ok(())
    }

    /// Sends `status` unless it is the last one sent.
    pub(crate) async fn set_status(&mut self, status: SyncStatus) -> Result<(), SinkClosed> {
        if self.status == Some(status) {
            return Ok(());
        }
        let sink = self.sink.clone();
        match tokio::task::spawn_blocking(move || sink.on_status_updated(status)).await {
            Ok(Ok(())) => {
                self.status = Some(status);
                Ok(())
            }
            Ok(Err(_)) => Err(SinkClosed),
            Err(e) => resume(e),
        }
    }
}

/// A sink call that did not return: re-raises its panic here; a call cancelled because the
/// runtime is shutting down counts as a closed sink.
fn resume(e: tokio::task::JoinError) -> Result<(), SinkClosed> {
    if e.is_panic() {
        std::panic::resume_unwind(e.into_panic())
    }
    Err(SinkClosed)
}
