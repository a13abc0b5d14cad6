//! The client's connection loop and one stream's state machine.
//!
//! ```text
//!  connect ──► hello ──► snapshot chunks ──► snapshot end ──┐
//!                 │                                          ├──► deltas / status ...
//!                 └──────────► (resume) status ──────────────┘
//! ```
//! Any error, or the server ending the stream, goes back to connecting (after a jittered
//! backoff, to the servers in shuffled order), resuming from the last breadcrumb applied when
//! the state is whole. Sequence numbers are checked: a gap (a server bug) drops the resume point
//! so the next stream starts with a snapshot, which the store reconciles.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use prost::Message as _;
use rand::seq::SliceRandom;
use snapcache::{SyncStatus, Update};
use tokio::sync::watch;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::Status;

use super::backoff::Backoff;
use super::store::Store;
use super::{BatchInfo, BatchKind, ClientState, SyncClientBuilder, SyncHandler};
use crate::convert::{status_from_proto, update_from_kv};
use crate::proto::sync_response::Message as M;
use crate::proto::{self, Compression, EndReason};
use crate::wire::decode_snapshot_chunk;
use crate::{END_REASON_METADATA_KEY, PROTOCOL_VERSION};

/// A position in a cache instance: where to resume from.
#[derive(Clone, Debug)]
pub(crate) struct Position {
    cache_id: String,
    seq: u64,
}

pub(crate) struct Runner {
    pub(crate) config: SyncClientBuilder,
    pub(crate) handler: Box<dyn SyncHandler>,
    pub(crate) store: Arc<Mutex<Store>>,
    pub(crate) state: watch::Sender<ClientState>,
    pub(crate) stop: watch::Receiver<bool>,
    pub(crate) reconnect: watch::Receiver<u64>,
    /// Set only while the local state is whole (not in the middle of a snapshot).
    pub(crate) position: Option<Position>,
}

/// How a stream ended.
#[derive(Debug)]
enum SessionEnd {
    /// Stopped by the user.
    Stopped,
    /// Could not connect, or the stream failed.
    Failed(String),
}

impl Runner {
    pub(crate) async fn run(mut self) {
        if self.config.servers.is_empty() {
            self.state
                .send_modify(|s| s.last_error = Some("no server addresses".into()));
            return;
        }
        let mut backoff = Backoff::new(self.config.backoff.0, self.config.backoff.1);
        loop {
            let mut servers = self.config.servers.clone();
            servers.shuffle(&mut rand::rng());
            for server in servers {
                let mut got_going = false;
                let end = self.session(&server, &mut got_going).await;
                self.state.send_modify(|s| {
                    s.connected = false;
                    s.in_sync = false;
                    if let SessionEnd::Failed(why) = &end {
                        s.last_error = Some(why.clone());
                    }
                });
                match end {
                    SessionEnd::Stopped => return,
                    SessionEnd::Failed(why) => {
                        tracing::info!(%server, reason = %why, "stream ended; reconnecting");
                    }
                }
                if got_going {
                    backoff.reset();
                }
                let delay = backoff.delay();
                let mut stop = self.stop.clone();
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => return,
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }

    async fn connect(c: &SyncClientBuilder, server: &str) -> Result<Channel, String> {
        let scheme = if c.tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{server}"))
            .map_err(|e| format!("bad server address {server:?}: {e}"))?
            .connect_timeout(c.connect_timeout)
            .http2_keep_alive_interval(c.keepalive_interval)
            .keep_alive_timeout(c.keepalive_timeout)
            .keep_alive_while_idle(true)
            .initial_stream_window_size(c.window_bytes)
            .initial_connection_window_size(c.window_bytes.saturating_mul(2))
            .tcp_nodelay(true);
        if let Some(tls) = &c.tls {
            let mut config =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            if let Some(name) = &tls.server_name {
                config = config.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| format!("TLS configuration: {e}"))?;
        }
        endpoint
            .connect()
            .await
            .map_err(|e| format!("cannot connect to {server}: {}", error_chain(&e)))
    }

    fn request(&self) -> proto::SyncRequest {
        let c = &self.config;
        proto::SyncRequest {
            client_name: c.client_name.clone(),
            client_version: env!("CARGO_PKG_VERSION").into(),
            protocol_version: PROTOCOL_VERSION,
            cache_name: c.cache_name.clone(),
            accepted_compressions: if c.snapshot_compression {
                vec![Compression::Zstd as i32]
            } else {
                vec![]
            },
            resume: self
                .position
                .as_ref()
                .filter(|_| c.resume)
                .map(|p| proto::ResumePoint {
                    cache_id: p.cache_id.clone(),
                    sequence_number: p.seq,
                }),
        }
    }

    /// One connection and stream, until it ends.
    async fn session(&mut self, server: &str, got_going: &mut bool) -> SessionEnd {
        let mut stop = self.stop.clone();
        if *stop.borrow() {
            return SessionEnd::Stopped;
        }
        let mut reconnect = self.reconnect.clone();
        reconnect.mark_unchanged();
        tokio::select! {
            _ = stop.wait_for(|s| *s) => SessionEnd::Stopped,
            _ = reconnect.changed() => SessionEnd::Failed("reconnection asked for".into()),
            r = self.stream(server, got_going) => match r {
                Ok(()) => SessionEnd::Failed("the server closed the stream without a reason".into()),
                Err(why) => SessionEnd::Failed(why),
            },
        }
    }

    async fn stream(&mut self, server: &str, got_going: &mut bool) -> Result<(), String> {
        let channel = Self::connect(&self.config, server).await?;
        let mut grpc = proto::sync_client::SyncClient::new(channel)
            .max_decoding_message_size(self.config.max_message_bytes);
        if let Some(c) = self.config.transport_compression {
            grpc = grpc.accept_compressed(c).send_compressed(c);
        }
        let request = self.request();
        let asked_resume = request.resume.is_some();
        let handshake = async {
            let mut stream = grpc.sync(request).await?.into_inner();
            let first = stream.message().await?;
            Ok::<_, Status>((stream, first))
        };
        let (mut stream, first) = tokio::time::timeout(self.config.handshake_timeout, handshake)
            .await
            .map_err(|_| {
                format!(
                    "no hello from {server} within {:?}",
                    self.config.handshake_timeout
                )
            })?
            .map_err(|s| {
                let mut why = describe(&s);
                if self.config.tls.is_some() && s.metadata().get(END_REASON_METADATA_KEY).is_none()
                {
                    // With TLS 1.3 a refused client certificate shows up as a failed request.
                    why.push_str(" (with TLS: the server may have refused the client certificate)");
                }
                why
            })?;
        let Some(proto::SyncResponse {
            message: Some(M::Hello(hello)),
        }) = first
        else {
            return Err(format!("{server} did not start with a hello: {first:?}"));
        };
        if hello.protocol_version != PROTOCOL_VERSION {
            return Err(format!(
                "{server} speaks protocol version {}, not {PROTOCOL_VERSION}",
                hello.protocol_version
            ));
        }
        let compression = Compression::try_from(hello.snapshot_compression).map_err(|_| {
            format!(
                "unknown snapshot compression {}",
                hello.snapshot_compression
            )
        })?;
        let resumed = hello.start == proto::Start::Resume as i32;
        if resumed {
            let ours = self.position.as_ref().map(|p| p.cache_id.as_str());
            if ours != Some(hello.cache_id.as_str()) {
                return Err("the server resumed a stream we did not ask to resume".into());
            }
        } else {
            if asked_resume {
                tracing::info!(%server, reason = %hello.resume_refused, "resume refused; receiving a fresh snapshot");
                let why = hello.resume_refused.clone();
                self.state
                    .send_modify(|s| s.last_resume_refused = Some(why));
            }
            // The local state is not whole again until the snapshot ends.
            self.position = None;
            self.store().begin_snapshot();
            self.handler.on_snapshot_start();
        }
        let cache_id = hello.cache_id.clone();
        self.state.send_modify(|s| {
            s.connected = true;
            s.server = Some(server.to_owned());
            s.cache_id = Some(cache_id.clone());
            s.connections += 1;
            s.resumes += u64::from(resumed);
            s.bytes_received += hello.encoded_len() as u64;
        });
        tracing::debug!(%server, connection = %hello.connection_id, resumed, "streaming");
        let mut in_snapshot = !resumed;
        let mut end: Option<(i32, String)> = None;
        let mut out = Vec::new();
        loop {
            let message = match stream.message().await {
                Ok(Some(m)) => m,
                Ok(None) => return Ok(()),
                Err(status) => {
                    return Err(match end {
                        Some((reason, message)) => format!(
                            "the server ended the stream: {} ({message})",
                            EndReason::try_from(reason)
                                .map_or("unknown reason", |r| r.as_str_name())
                        ),
                        None => describe(&status),
                    })
                }
            };
            let len = message.encoded_len() as u64;
            let Some(message) = message.message else {
                return Err("an empty message".into());
            };
            match message {
                M::SnapshotChunk(chunk) if in_snapshot => {
                    let list = decode_snapshot_chunk(
                        &chunk.data,
                        compression,
                        self.config.max_message_bytes,
                    )?;
                    let kvs: Vec<Update> = list.kvs.into_iter().map(update_from_kv).collect();
                    self.store().snapshot_kvs(kvs, &mut out);
                    self.deliver(&mut out, BatchKind::Snapshot, 0, None);
                    self.state.send_modify(|s| {
                        s.bytes_received += len;
                        s.snapshot_bytes_received += len;
                    });
                }
                M::SnapshotEnd(snap_end) if in_snapshot => {
                    in_snapshot = false;
                    self.store().end_snapshot(&mut out);
                    self.deliver(
                        &mut out,
                        BatchKind::Reconcile,
                        snap_end.sequence_number,
                        None,
                    );
                    self.handler.on_snapshot_end();
                    let status = status_from_proto(snap_end.status).ok_or("unknown status")?;
                    self.position = Some(Position {
                        cache_id: cache_id.clone(),
                        seq: snap_end.sequence_number,
                    });
                    self.state.send_modify(|s| s.snapshots += 1);
                    self.set_status(status, snap_end.sequence_number, len, true);
                    *got_going = true;
                }
                M::Deltas(deltas) if !in_snapshot => {
                    let pos = self.position.as_ref().map_or(0, |p| p.seq);
                    if deltas.first_sequence_number != pos + 1
                        || deltas.last_sequence_number < deltas.first_sequence_number
                    {
                        self.position = None;
                        return Err(format!(
                            "deltas for breadcrumbs {}..={} after breadcrumb {pos}: a gap; resyncing",
                            deltas.first_sequence_number, deltas.last_sequence_number
                        ));
                    }
                    let last = deltas.last_sequence_number;
                    let published = (deltas.published_unix_nanos != 0).then(|| {
                        SystemTime::UNIX_EPOCH + Duration::from_nanos(deltas.published_unix_nanos)
                    });
                    out.extend(deltas.kvs.into_iter().map(update_from_kv));
                    self.store().deltas(&out);
                    self.deliver(&mut out, BatchKind::Deltas, last, published);
                    if let Some(p) = &mut self.position {
                        p.seq = last;
                    }
                    self.state.send_modify(|s| {
                        s.last_sequence_number = Some(last);
                        s.bytes_received += len;
                    });
                }
                M::Status(change) if !in_snapshot => {
                    let pos = self.position.as_ref().map_or(0, |p| p.seq);
                    let seq = change.sequence_number;
                    if seq != pos {
                        self.position = None;
                        return Err(format!(
                            "a status for breadcrumb {seq} at breadcrumb {pos}: a gap; resyncing"
                        ));
                    }
                    let status = status_from_proto(change.status).ok_or("unknown status")?;
                    self.set_status(status, seq, len, resumed);
                    *got_going = true;
                }
                M::End(e) => end = Some((e.reason, e.message)),
                other => {
                    self.position = None;
                    return Err(format!("unexpected message {other:?}"));
                }
            }
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn deliver(
        &mut self,
        out: &mut Vec<Update>,
        kind: BatchKind,
        seq: u64,
        published: Option<SystemTime>,
    ) {
        if out.is_empty() {
            return;
        }
        let info = BatchInfo {
            kind,
            sequence_number: seq,
            published,
        };
        self.handler.on_updates(out, &info);
        out.clear();
    }

    /// Records a status, telling the handler if it changed (or if `force`).
    fn set_status(&mut self, status: SyncStatus, seq: u64, len: u64, force: bool) {
        let mut changed = force;
        self.state.send_modify(|s| {
            changed |= s.status != Some(status);
            s.status = Some(status);
            s.in_sync = status == SyncStatus::InSync;
            s.last_sequence_number = Some(seq);
            s.bytes_received += len;
        });
        if changed {
            self.handler.on_status(status);
        }
    }
}

/// A gRPC status as a log line, with the server's end reason if it gave one.
fn describe(status: &Status) -> String {
    match status.metadata().get(END_REASON_METADATA_KEY) {
        Some(reason) => format!(
            "{} ({:?}: {})",
            reason.to_str().unwrap_or("?"),
            status.code(),
            status.message()
        ),
        None => format!("{:?}: {}", status.code(), status.message()),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}
