//! One client's stream: its own task, walking the cache's breadcrumbs (through the journal's
//! [`Entry`] chain) and handing pre-encoded frames to the transport.
//!
//! Typha's rules: the snapshot of the start breadcrumb first (or nothing, on resume), then the
//! deltas of every later breadcrumb, coalesced when the client is behind, and a status message
//! only when the status changes. A client that cannot keep up is cut off, never waited for:
//! while a message waits for the transport, the task checks the client against the fall-behind
//! rule (after its grace period) and the write timeout.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use snapcache::SyncStatus;
use tokio::sync::mpsc;
use tonic::{Code, Status};

use super::conn::Kill;
use super::handshake::{self, Start};
use super::journal::Entry;
use super::snapshot::SharedSnapshot;
use super::{Registration, Served, Shared};
use crate::convert::status_to_proto;
use crate::proto::sync_response::Message as M;
use crate::proto::{self, EndReason};
use crate::wire::{deltas_frame, encode_kvs, Frame};

/// Frames queued between a stream task and the transport. Small: the queue is only there so
/// that the task can notice a client that stopped reading; the transport and TCP buffer more.
pub(crate) const QUEUE: usize = 4;

/// Why a stream task stops.
enum Stop {
    /// The client went away (the transport dropped the stream).
    Gone,
    /// The server ends the stream.
    End(EndReason, String),
}

pub(crate) struct StreamTask {
    pub(crate) shared: Arc<Shared>,
    pub(crate) served: Arc<Served>,
    pub(crate) reg: Registration,
    pub(crate) kill: Arc<Kill>,
    pub(crate) tx: mpsc::Sender<Result<Frame, Status>>,
    pub(crate) connection_id: String,
    pub(crate) client: String,
}

/// The stream's position and rules, once started.
struct Position {
    entry: Arc<Entry>,
    status: SyncStatus,
    /// `None` while the snapshot is being sent (only the write timeout applies then).
    grace_until: Option<Instant>,
    grace_counted: bool,
}

impl StreamTask {
    /// Runs the stream to its end.
    pub(crate) async fn run(mut self, start: Start) {
        let mut streaming = false;
        let result = self.stream(start, &mut streaming).await;
        match result {
            Ok(()) | Err(Stop::Gone) => {
                tracing::debug!(connection = %self.connection_id, client = %self.client, "client went away");
            }
            Err(Stop::End(reason, message)) => self.end(reason, message).await,
        }
        self.shared.stats.count_closed(streaming);
    }

    async fn stream(&mut self, start: Start, streaming: &mut bool) -> Result<(), Stop> {
        let journal = self.served.cache.journal().clone();
        let (hello_start, refused, entry, snapshot) = match start {
            Start::Snapshot {
                snapshot,
                entry,
                refused,
            } => (proto::Start::Snapshot, refused, entry, Some(snapshot)),
            Start::Resume { entry } => (proto::Start::Resume, None, entry, None),
        };
        if let Some(why) = &refused {
            tracing::info!(connection = %self.connection_id, client = %self.client, reason = %why, "resume refused; sending a snapshot");
        }
        let hello = proto::ServerHello {
            server_version: env!("CARGO_PKG_VERSION").into(),
            protocol_version: crate::PROTOCOL_VERSION,
            cache_id: journal.id.clone(),
            current_sequence_number: journal.newest_seq(),
            connection_id: self.connection_id.clone(),
            start: hello_start as i32,
            resume_refused: refused.unwrap_or_default(),
            snapshot_compression: snapshot.as_ref().map_or(0, |s| s.compression as i32),
        };
        let mut pos = Position {
            status: entry.crumb.sync_status,
            entry,
            grace_until: None,
            grace_counted: false,
        };
        self.send(Frame::message(M::Hello(hello)), None, &mut pos, false)
            .await?;
        match snapshot {
            Some(snapshot) => self.send_snapshot(&snapshot, &mut pos).await?,
            None => {
                // A resuming client may have missed the status of its resume point.
                let frame = status_frame(pos.status, pos.entry.seq());
                self.send(frame, None, &mut pos, false).await?;
            }
        }
        pos.grace_until = Some(Instant::now() + self.shared.config.fall_behind_grace);
        *streaming = true;
        self.shared.stats.count_streaming(true);
        loop {
            let next = match pos.entry.try_next() {
                Some(next) => next,
                None => {
                    let stop = &mut self.reg.stop;
                    tokio::select! {
                        biased;
                        _ = stop.changed() => return Err(stopped(stop)),
                        // Noticed even while the cache is idle.
                        _ = self.tx.closed() => return Err(Stop::Gone),
                        next = pos.entry.next() => next.map_err(|_| {
                            Stop::End(EndReason::ShuttingDown, "the cache shut down".into())
                        })?,
                    }
                }
            };
            self.send_from(next, &mut pos).await?;
        }
    }

    /// Streams the shared snapshot's chunks as they are written, then its end marker.
    async fn send_snapshot(
        &mut self,
        snap: &SharedSnapshot,
        pos: &mut Position,
    ) -> Result<(), Stop> {
        let started = Instant::now();
        let mut progress = snap.progress();
        let mut sent = 0;
        let total = loop {
            let (chunks, done, failed) = {
                let p = progress.borrow_and_update();
                (p.chunks, p.done, p.failed)
            };
            if failed {
                return Err(Stop::End(
                    EndReason::ShuttingDown,
                    "the server failed to encode the snapshot".into(),
                ));
            }
            while sent < chunks {
                self.send(Frame::encoded(snap.chunk(sent)), None, pos, true)
                    .await?;
                sent += 1;
            }
            if let Some(total) = done {
                break total;
            }
            let stop = &mut self.reg.stop;
            tokio::select! {
                biased;
                _ = stop.changed() => return Err(stopped(stop)),
                _ = self.tx.closed() => return Err(Stop::Gone),
                r = progress.changed() => if r.is_err() {
                    return Err(Stop::End(EndReason::ShuttingDown, "the snapshot encoding was abandoned".into()));
                },
            }
        };
        let end = proto::SnapshotEnd {
            sequence_number: snap.seq,
            status: status_to_proto(snap.status) as i32,
            kv_count: total,
        };
        self.send(Frame::message(M::SnapshotEnd(end)), None, pos, false)
            .await?;
        self.shared.stats.count_snapshot_sent(started.elapsed());
        Ok(())
    }

    /// Sends the deltas from `first` on, coalescing the breadcrumbs already published (up to
    /// the message size, and up to a status change), then the status if it changed.
    async fn send_from(&mut self, first: Arc<Entry>, pos: &mut Position) -> Result<(), Stop> {
        let stats = self.shared.stats.clone();
        let stats = &*stats;
        let per_client = crate::seeded::active("encode_per_client");
        let encoded = |e: &Entry| {
            if per_client {
                stats.count_delta_encoding();
                encode_kvs(&e.crumb.deltas)
            } else {
                e.encoded_deltas(stats).clone()
            }
        };
        let max = self.shared.config.max_message_bytes;
        let mut parts = vec![encoded(&first)];
        let mut size = parts[0].len();
        let mut kvs = first.crumb.deltas.len();
        let mut last = first.clone();
        while last.crumb.sync_status == pos.status && size < max {
            let Some(next) = last.try_next() else { break };
            let bytes = encoded(&next);
            size += bytes.len();
            kvs += next.crumb.deltas.len();
            parts.push(bytes);
            last = next;
        }
        let status_changed = last.crumb.sync_status != pos.status;
        if parts.len() > 1 {
            // Behind (we coalesced): the fall-behind rule applies.
            self.check_behind(&first, pos)?;
        }
        // Always sent, even empty (a breadcrumb that changed only the status), so that every
        // breadcrumb is covered by a deltas message and a status always names the position:
        // the client can then tell any gap from a status-only breadcrumb.
        let frame = deltas_frame(parts, first.seq(), last.seq(), last.published_nanos());
        self.send(frame, Some(&first), pos, false).await?;
        let lag = SystemTime::now()
            .duration_since(last.crumb.timestamp)
            .unwrap_or_default();
        stats.count_deltas(kvs as u64, lag);
        pos.entry = last;
        if status_changed {
            pos.status = pos.entry.crumb.sync_status;
            let frame = status_frame(pos.status, pos.entry.seq());
            self.send(frame, None, pos, false).await?;
        }
        Ok(())
    }

    /// Hands `frame` to the transport. While it cannot (the client is not reading), checks the
    /// client every `liveness_check_interval` against the write timeout and, if `unsent` (the
    /// oldest breadcrumb not yet handed over) is given, against the fall-behind rule.
    async fn send(
        &mut self,
        frame: Frame,
        unsent: Option<&Entry>,
        pos: &mut Position,
        snapshot: bool,
    ) -> Result<(), Stop> {
        let len = frame.len();
        let permit = match self.tx.try_reserve() {
            Ok(permit) => permit,
            Err(mpsc::error::TrySendError::Closed(())) => return Err(Stop::Gone),
            Err(mpsc::error::TrySendError::Full(())) if crate::seeded::active("wait_for_slow") => {
                // Seeded bug: wait for the client, however long it takes.
                self.tx.reserve().await.map_err(|_| Stop::Gone)?
            }
            Err(mpsc::error::TrySendError::Full(())) => {
                let deadline = Instant::now() + self.shared.config.write_timeout;
                let every = self.shared.config.liveness_check_interval;
                loop {
                    let stop = &mut self.reg.stop;
                    tokio::select! {
                        biased;
                        _ = stop.changed() => return Err(stopped(stop)),
                        permit = self.tx.reserve() => break permit.map_err(|_| Stop::Gone)?,
                        _ = tokio::time::sleep(every) => {}
                    }
                    if Instant::now() >= deadline {
                        return Err(Stop::End(
                            EndReason::WriteTimeout,
                            format!(
                                "the client took no message for {:?} (write timeout)",
                                self.shared.config.write_timeout
                            ),
                        ));
                    }
                    if let Some(unsent) = unsent {
                        self.check_behind(unsent, pos)?;
                    }
                }
            }
        };
        permit.send(Ok(frame));
        self.shared.stats.count_sent(len, snapshot);
        Ok(())
    }

    /// The fall-behind rule: `unsent` (the oldest breadcrumb not handed over yet) is older than
    /// `max_fall_behind`, or more than `max_fall_behind_breadcrumbs` breadcrumbs are unsent.
    /// Applies only after the grace period (which counts its first use).
    fn check_behind(&self, unsent: &Entry, pos: &mut Position) -> Result<(), Stop> {
        let Some(grace_until) = pos.grace_until else {
            return Ok(());
        };
        let config = &self.shared.config;
        let age = SystemTime::now()
            .duration_since(unsent.crumb.timestamp)
            .unwrap_or_default();
        let unsent_crumbs = self
            .served
            .cache
            .journal()
            .newest_seq()
            .saturating_sub(unsent.seq())
            + 1;
        let behind = age > config.max_fall_behind
            || config
                .max_fall_behind_breadcrumbs
                .is_some_and(|max| unsent_crumbs > max);
        if !behind {
            return Ok(());
        }
        if Instant::now() < grace_until {
            if !pos.grace_counted {
                pos.grace_counted = true;
                self.shared.stats.count_grace_used();
            }
            return Ok(());
        }
        Err(Stop::End(
            EndReason::FellBehind,
            format!(
                "fell behind: {unsent_crumbs} breadcrumbs ({:.1} s) behind the newest",
                age.as_secs_f64()
            ),
        ))
    }

    /// Ends the stream: an `End` message and a non-OK status. A client being drained is given
    /// a second to read them; one that was cut off is disconnected (its connection closed, so
    /// that whatever the transport still holds for it is released).
    async fn end(&mut self, reason: EndReason, message: String) {
        let code = match reason {
            EndReason::FellBehind => Code::Aborted,
            EndReason::WriteTimeout => Code::DeadlineExceeded,
            _ => Code::Unavailable,
        };
        let stats = &self.shared.stats;
        stats.count_dropped(reason.as_str_name(), reason == EndReason::FellBehind);
        tracing::info!(connection = %self.connection_id, client = %self.client, reason = reason.as_str_name(), %message, "ending the stream");
        let end = Frame::message(M::End(proto::End {
            reason: reason as i32,
            message: message.clone(),
        }));
        let status = handshake::status(reason, code, message);
        if reason == EndReason::ShuttingDown {
            let tx = &self.tx;
            let _ = tokio::time::timeout(Duration::from_secs(1), async {
                tx.send(Ok(end)).await.ok()?;
                tx.send(Err(status)).await.ok()
            })
            .await;
        } else {
            let _ = self.tx.try_send(Ok(end));
            let _ = self.tx.try_send(Err(status));
            let kill = self.kill.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                kill.kill();
            });
        }
    }
}

fn status_frame(status: SyncStatus, seq: u64) -> Frame {
    Frame::message(M::Status(proto::StatusChange {
        status: status_to_proto(status) as i32,
        sequence_number: seq,
    }))
}

/// The stop the server asked for.
fn stopped(stop: &tokio::sync::watch::Receiver<Option<EndReason>>) -> Stop {
    let reason = (*stop.borrow()).unwrap_or(EndReason::ShuttingDown);
    Stop::End(
        reason,
        "the server is shutting down; reconnect to another server".into(),
    )
}
