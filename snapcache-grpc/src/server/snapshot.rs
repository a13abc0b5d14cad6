//! Shared, pre-encoded snapshots: the first client to start at a breadcrumb triggers one
//! encoding (compressed) of its snapshot into an append-only list of chunks; every client that
//! starts while that encoding is fresh streams the same bytes, even while it is still being
//! written. Typha's fix for the thundering herd.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use snapcache::SyncStatus;
use tokio::sync::watch;

use super::journal::{Entry, Journal};
use super::stats::ServerStats;
use crate::convert::kv_from_update;
use crate::proto;
use crate::wire::snapshot_chunk_bytes;

/// How a snapshot is encoded.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SnapshotSettings {
    /// Raw (uncompressed) bytes of key/values per chunk.
    pub(crate) chunk_bytes: usize,
    /// How long an encoding may be reused by clients starting after it began.
    pub(crate) reuse_for: Duration,
    /// zstd level.
    pub(crate) zstd_level: i32,
}

/// How far an encoding has got.
#[derive(Clone, Debug, Default)]
pub(crate) struct Progress {
    /// Chunks written so far.
    pub(crate) chunks: usize,
    /// Set when the encoding is complete: the number of key/values.
    pub(crate) done: Option<u64>,
    /// Set if the encoding panicked (a bug): its clients are disconnected.
    pub(crate) failed: bool,
}

/// One encoding of one breadcrumb's snapshot, in one compression.
pub(crate) struct SharedSnapshot {
    pub(crate) seq: u64,
    pub(crate) status: SyncStatus,
    pub(crate) compression: proto::Compression,
    started: Instant,
    /// Weak: the encoding does not keep the history alive; each client holds its own entry.
    entry: Weak<Entry>,
    chunks: Mutex<Vec<Bytes>>,
    progress: watch::Sender<Progress>,
}

impl SharedSnapshot {
    /// Chunk `i`, once written.
    pub(crate) fn chunk(&self, i: usize) -> Bytes {
        self.chunks.lock().unwrap_or_else(|e| e.into_inner())[i].clone()
    }

    /// Watches the progress of the encoding.
    pub(crate) fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    fn push(&self, chunk: Bytes) {
        let n = {
            let mut chunks = self.chunks.lock().unwrap_or_else(|e| e.into_inner());
            chunks.push(chunk);
            chunks.len()
        };
        self.progress.send_modify(|p| p.chunks = n);
    }
}

/// The newest encoding of a cache's snapshot, per compression.
#[derive(Default)]
pub(crate) struct SnapshotSlot {
    slots: Mutex<[Option<Arc<SharedSnapshot>>; 2]>,
}

impl SnapshotSlot {
    /// A snapshot for a client starting now: the current encoding if its breadcrumb is still
    /// the newest or it began less than `reuse_for` ago (a reuse), else a new encoding of the
    /// journal's newest entry, started in the background. Returns the encoding and the entry the client starts at.
    pub(crate) fn get(
        &self,
        journal: &Journal,
        compression: proto::Compression,
        settings: SnapshotSettings,
        stats: &Arc<ServerStats>,
    ) -> (Arc<SharedSnapshot>, Arc<Entry>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut slots[compression as usize];
        // Seeded bug: no sharing, one encoding per client.
        let share = !crate::seeded::active("snapshot_per_client");
        let newest = journal.newest();
        if let Some(snap) = slot.as_ref().filter(|_| share) {
            // Reused while its breadcrumb is the newest (an idle cache: one encoding however
            // long the herd takes to arrive), or for `reuse_for` after it began (the clients
            // then catch up with deltas).
            if snap.seq == newest.seq() || snap.started.elapsed() <= settings.reuse_for {
                if let Some(entry) = snap.entry.upgrade() {
                    stats.count_snapshot_reused();
                    return (snap.clone(), entry);
                }
            }
        }
        let entry = newest;
        let snap = Arc::new(SharedSnapshot {
            seq: entry.seq(),
            status: entry.crumb.sync_status,
            compression,
            started: Instant::now(),
            entry: Arc::downgrade(&entry),
            chunks: Mutex::new(Vec::new()),
            progress: watch::channel(Progress::default()).0,
        });
        *slot = Some(snap.clone());
        stats.count_snapshot_generated();
        let (job, held) = (snap.clone(), entry.clone());
        let stats = stats.clone();
        tokio::task::spawn_blocking(move || {
            let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                encode(&job, &held, settings, &stats)
            }));
            if encoded.is_err() {
                tracing::error!(seq = job.seq, "the snapshot encoding panicked");
                job.progress.send_modify(|p| p.failed = true);
            }
        });
        (snap, entry)
    }
}

/// Encodes `entry`'s snapshot into `snap`'s chunks.
fn encode(snap: &SharedSnapshot, entry: &Entry, settings: SnapshotSettings, stats: &ServerStats) {
    let mut list = BytesMut::new();
    let (mut in_chunk, mut total) = (0u32, 0u64);
    let flush = |list: &mut BytesMut, in_chunk: &mut u32| {
        let data = match snap.compression {
            proto::Compression::None => list.split().freeze(),
            proto::Compression::Zstd => {
                let raw = list.split();
                zstd::bulk::compress(&raw, settings.zstd_level)
                    .expect("zstd compression of an in-memory buffer")
                    .into()
            }
        };
        stats.count_snapshot_bytes(data.len() as u64);
        snap.push(snapshot_chunk_bytes(&data, *in_chunk));
        *in_chunk = 0;
    };
    for (_, update) in &entry.crumb.kvs {
        prost::encoding::message::encode(1, &kv_from_update(update), &mut list);
        in_chunk += 1;
        total += 1;
        if list.len() >= settings.chunk_bytes {
            flush(&mut list, &mut in_chunk);
        }
    }
    if in_chunk > 0 {
        flush(&mut list, &mut in_chunk);
    }
    snap.progress.send_modify(|p| p.done = Some(total));
}
