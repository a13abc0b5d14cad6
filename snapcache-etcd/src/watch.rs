//! One watch: the changes after the last revision seen, with progress notifications, until
//! the connection is lost or the history is.

use bytes::Bytes;
use etcd_client::{EventType, WatchOptions};
use snapcache::Update;

use crate::keys::{key_from_etcd, revision_bytes};
use crate::mutant::{self, Mutant};
use crate::revision::{Position, ResponseView, Verdict};
use crate::syncer::{Failure, Syncer};

impl Syncer {
    /// Watches from the last revision seen (skipping its replay: see `revision.rs` for why
    /// not from the one after) and feeds every event, moving `position` past what the cache
    /// has been given. Returns only on a failure: `Retry` for a lost connection
    /// (re-watch from the new position), `Resync` when the history is gone or does not follow.
    pub(crate) async fn watch(&mut self, position: &mut Position) -> Failure {
        let start = position.start_watch();
        let options = WatchOptions::new()
            .with_range(self.range.end.clone())
            .with_start_revision(start)
            .with_progress_notify();
        let mut stream = match self
            .watch
            .watch(self.range.start.clone(), Some(options))
            .await
        {
            Ok(stream) => stream,
            Err(e) => return Failure::Retry(format!("opening a watch: {e}")),
        };
        loop {
            let response = match stream.message().await {
                Ok(Some(r)) => r,
                Ok(None) => return Failure::Retry("etcd ended the watch stream".into()),
                Err(e) => return Failure::Retry(format!("watching: {e}")),
            };
            match position.judge(&ResponseView::of(&response)) {
                Verdict::Created => self.watch_opened(),
                Verdict::Progress => self.seen(position.last_seen()),
                Verdict::Apply { skip } => {
                    let updates = self.updates(&response.events()[skip..]);
                    if let Err(closed) = self.feed.updates(updates).await {
                        return closed.into();
                    }
                    self.seen(position.last_seen());
                }
                Verdict::Compacted(at) => {
                    return Failure::Resync(format!(
                        "revision {start} was compacted (etcd keeps history from {at})"
                    ))
                }
                Verdict::Canceled => {
                    return Failure::Retry(format!(
                        "etcd cancelled the watch: {}",
                        response.cancel_reason()
                    ))
                }
                Verdict::Gap(why) => return Failure::Resync(format!("the watch skipped: {why}")),
            }
        }
    }

    /// A response's events as updates: a put of a key the cache does not hold is `New`, of
    /// one it holds `Updated`; a delete is a deletion. The revision is the mod revision.
    fn updates(&mut self, events: &[etcd_client::Event]) -> Vec<Update> {
        let mut updates = Vec::with_capacity(events.len());
        for event in events {
            let Some(kv) = event.kv() else { continue };
            let key = key_from_etcd(kv.key().to_vec());
            let revision = revision_bytes(kv.mod_revision());
            match event.event_type() {
                EventType::Put => {
                    let update_type = self.keys.put(key.clone());
                    let value = Bytes::copy_from_slice(kv.value());
                    updates.push(Update::set(key, value, update_type).with_revision(revision));
                }
                EventType::Delete => {
                    if mutant::active(Mutant::DropDeletes) {
                        continue;
                    }
                    self.keys.remove(&key);
                    updates.push(Update::delete(key).with_revision(revision));
                }
            }
        }
        updates
    }
}
