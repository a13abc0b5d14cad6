//! A consistent list: every key of the prefix at one revision `R`, read in pages (each page at
//! `R`), fed to the cache as it arrives, then a deletion for each key the cache holds that the
//! list lacks.

use bytes::Bytes;
use etcd_client::GetOptions;
use snapcache::{SyncStatus, Update};

use std::time::Duration;

use crate::keys::{key_from_etcd, revision_bytes, KeyRange};
use crate::mutant::{self, Mutant};
use crate::state::Phase;
use crate::syncer::{Failure, Syncer};

impl Syncer {
    /// Lists the prefix at a fresh revision and feeds it; returns the revision. The cache is
    /// told `ResyncInProgress` before the first update and `InSync` after the last deletion.
    pub(crate) async fn list(&mut self) -> Result<i64, Failure> {
        let reader = self.pages.clone();
        let batch = self.config.batch_size;
        self.keys.begin_list();
        let first = reader.fetch(reader.range.start.clone(), None).await?;
        let revision = first.revision;
        // etcd has answered: from here on the cache is being replayed.
        self.set_phase(Phase::Listing);
        self.feed.set_status(SyncStatus::ResyncInProgress).await?;
        if mutant::active(Mutant::InSyncBeforeList) {
            self.feed.set_status(SyncStatus::InSync).await?;
        }
        let pin = (!mutant::active(Mutant::PagesAtLatest)).then_some(revision);
        let mut page = first;
        loop {
            let next_start = match (page.more, page.kvs.last()) {
                (true, Some((last, _, _))) => Some(after(last)),
                (true, None) => {
                    return Err(Failure::Retry(
                        "etcd said a page had more keys but sent none".into(),
                    ))
                }
                (false, _) => None,
            };
            let updates = self.listed(page.kvs);
            // Fetch the next page while the cache takes this one.
            let (fed, next) = tokio::join!(self.feed.batches(updates, batch), async {
                match next_start {
                    Some(start) => Some(reader.fetch(start, pin).await),
                    None => None,
                }
            });
            fed?;
            match next {
                Some(next) => page = next?,
                None => break,
            }
        }
        let deletions: Vec<Update> = self
            .keys
            .finish_list()
            .into_iter()
            .map(|key| Update::delete(key).with_revision(revision_bytes(revision)))
            .collect();
        if mutant::active(Mutant::InSyncBeforeDeletions) {
            self.feed.set_status(SyncStatus::InSync).await?;
        }
        self.feed.batches(deletions, batch).await?;
        Ok(revision)
    }

    /// Turns a page's entries into updates, recording the keys.
    fn listed(&mut self, kvs: Vec<(Bytes, Bytes, i64)>) -> Vec<Update> {
        kvs.into_iter()
            .map(|(key, value, mod_revision)| {
                let update_type = self.keys.listed(key.clone());
                Update::set(key, value, update_type).with_revision(revision_bytes(mod_revision))
            })
            .collect()
    }
}

/// Reads pages of the prefix's range.
#[derive(Clone)]
pub(crate) struct PageReader {
    pub(crate) kv: etcd_client::KvClient,
    pub(crate) range: KeyRange,
    pub(crate) page_size: usize,
    pub(crate) timeout: Duration,
}

impl PageReader {
    /// One page: up to `page_size` keys from `start` to the range's end, at `revision` (the
    /// newest if `None`).
    async fn fetch(&self, start: Vec<u8>, revision: Option<i64>) -> Result<Page, Failure> {
        let mut options = GetOptions::new()
            .with_range(self.range.end.clone())
            .with_limit(self.page_size as i64);
        if let Some(r) = revision {
            options = options.with_revision(r);
        }
        let mut kv = self.kv.clone();
        let got = tokio::time::timeout(self.timeout, kv.get(start, Some(options)))
            .await
            .map_err(|_| {
                Failure::Retry(format!("a page of the list took over {:?}", self.timeout))
            })?;
        let mut response = got.map_err(|e| {
            if is_compacted(&e) {
                Failure::Resync(format!("the list's revision was compacted: {e}"))
            } else {
                Failure::Retry(format!("listing: {e}"))
            }
        })?;
        let page_revision = response.header().map_or(0, |h| h.revision());
        let kvs = response
            .take_kvs()
            .into_iter()
            .map(|kv| {
                let mod_revision = kv.mod_revision();
                let (key, value) = kv.into_key_value();
                (key_from_etcd(key), Bytes::from(value), mod_revision)
            })
            .collect();
        Ok(Page {
            kvs,
            revision: revision.unwrap_or(page_revision),
            more: response.more(),
        })
    }
}

/// A page of a list: (key, value, mod revision) in key order.
struct Page {
    kvs: Vec<(Bytes, Bytes, i64)>,
    revision: i64,
    more: bool,
}

/// The first key after `key`.
fn after(key: &[u8]) -> Vec<u8> {
    let mut next = Vec::with_capacity(key.len() + 1);
    next.extend_from_slice(key);
    next.push(0);
    next
}

/// Whether etcd refused a request because its revision has been compacted.
pub(crate) fn is_compacted(e: &etcd_client::Error) -> bool {
    matches!(e, etcd_client::Error::GRpcStatus(s) if s.message().contains("required revision has been compacted"))
}
