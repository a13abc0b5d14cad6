//! The client (Typha's syncclient): streams a cache from one of several servers, resumes
//! after a reconnect when it can, and otherwise reconciles the fresh snapshot with what it had.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use snapcache_grpc::client::{BatchInfo, SyncClient, SyncHandler};
//! use snapcache::{SyncStatus, Update};
//!
//! struct Printer;
//! impl SyncHandler for Printer {
//!     fn on_updates(&mut self, updates: &[Update], info: &BatchInfo) {
//!         println!("{} updates up to breadcrumb {}", updates.len(), info.sequence_number);
//!     }
//!     fn on_status(&mut self, status: SyncStatus) {
//!         println!("status: {status:?}");
//!     }
//! }
//!
//! let client = SyncClient::builder()
//!     .servers(["10.0.0.1:5473", "10.0.0.2:5473"])
//!     .cache_name("default")
//!     .spawn(Printer);
//! client.wait_until(|s| s.in_sync, std::time::Duration::from_secs(60)).await?;
//! # Ok(()) }
//! ```

mod backoff;
mod session;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use snapcache::{SyncStatus, Update};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;

use self::store::Store;

/// Receives what the client streams. Called from the client's task, in order.
///
/// With [`keep_map`](SyncClientBuilder::keep_map) on (the default), updates are a consistent
/// change stream: a fresh snapshot after a reconnect reports only what changed, and keys that
/// disappeared as deletions. With it off, the client keeps nothing: snapshots are reported
/// whole between [`on_snapshot_start`](Self::on_snapshot_start) and
/// [`on_snapshot_end`](Self::on_snapshot_end), and a handler that keeps state must itself drop
/// the keys a snapshot did not report (a snapshot may also start again, unfinished, after a
/// disconnection).
pub trait SyncHandler: Send + 'static {
    /// Updates to apply, in order.
    fn on_updates(&mut self, updates: &[Update], info: &BatchInfo) {
        let _ = (updates, info);
    }

    /// The syncer's status changed (`InSync`: everything up to now has been delivered).
    fn on_status(&mut self, status: SyncStatus) {
        let _ = status;
    }

    /// A full snapshot starts.
    fn on_snapshot_start(&mut self) {}

    /// The snapshot is complete (after its last updates, before its status).
    fn on_snapshot_end(&mut self) {}
}

/// The handler that does nothing (use [`SyncClient::map`] or [`SyncClient::state`]).
impl SyncHandler for () {}

/// What a batch of updates is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchKind {
    /// Part of a snapshot.
    Snapshot,
    /// Deletions of keys a fresh snapshot did not have (with `keep_map` only).
    Reconcile,
    /// Deltas.
    Deltas,
}

/// About a batch of updates.
#[derive(Clone, Copy, Debug)]
pub struct BatchInfo {
    /// Snapshot, reconciliation or deltas.
    pub kind: BatchKind,
    /// For deltas, the last breadcrumb they cover; for a snapshot, its breadcrumb.
    pub sequence_number: u64,
    /// For deltas, when the server's cache published their last breadcrumb.
    pub published: Option<SystemTime>,
}

/// The client's state, as [`SyncClient::state`] reports it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientState {
    /// Streaming from a server now.
    pub connected: bool,
    /// Connected, and the syncer's status is `InSync`: the local state is the server's.
    pub in_sync: bool,
    /// The syncer's last status, if any was received.
    pub status: Option<SyncStatus>,
    /// The server streamed from (now or last).
    pub server: Option<String>,
    /// The cache instance streamed (now or last).
    pub cache_id: Option<String>,
    /// The last breadcrumb applied.
    pub last_sequence_number: Option<u64>,
    /// Streams started.
    pub connections: u64,
    /// Full snapshots received.
    pub snapshots: u64,
    /// Streams resumed without a snapshot.
    pub resumes: u64,
    /// Message bytes received (before transport decompression).
    pub bytes_received: u64,
    /// Of which snapshot chunks.
    pub snapshot_bytes_received: u64,
    /// Why the last stream ended or the last connection attempt failed.
    pub last_error: Option<String>,
    /// Why the server last refused to resume (and sent a snapshot instead).
    pub last_resume_refused: Option<String>,
}

/// The client's TLS settings.
#[derive(Clone, Default)]
pub struct ClientTls {
    /// The CA that signed the server's certificate (PEM).
    pub ca_pem: Vec<u8>,
    /// The client's certificate chain and key (PEM), for mutual TLS.
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The name to check the server's certificate against (default: the host of the address).
    pub server_name: Option<String>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`SyncClient`], with the defaults documented on each builder method.
#[derive(Clone, Debug)]
pub struct SyncClientBuilder {
    pub(crate) servers: Vec<String>,
    pub(crate) cache_name: String,
    pub(crate) client_name: String,
    pub(crate) keep_map: bool,
    pub(crate) resume: bool,
    pub(crate) tls: Option<ClientTls>,
    pub(crate) connect_timeout: Duration,
    pub(crate) handshake_timeout: Duration,
    pub(crate) keepalive_interval: Duration,
    pub(crate) keepalive_timeout: Duration,
    pub(crate) backoff: (Duration, Duration),
    pub(crate) max_message_bytes: usize,
    pub(crate) window_bytes: u32,
    pub(crate) snapshot_compression: bool,
    pub(crate) transport_compression: Option<CompressionEncoding>,
}

impl Default for SyncClientBuilder {
    fn default() -> Self {
        SyncClientBuilder {
            servers: Vec::new(),
            cache_name: "default".into(),
            client_name: hostname(),
            keep_map: true,
            resume: true,
            tls: None,
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(30),
            backoff: (Duration::from_millis(100), Duration::from_secs(5)),
            max_message_bytes: 64 << 20,
            window_bytes: 65_535,
            snapshot_compression: true,
            transport_compression: None,
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "snapcache-client".into())
}

impl SyncClientBuilder {
    /// Adds a server address (`host:port`). Servers are tried in shuffled order.
    pub fn server(mut self, addr: impl Into<String>) -> Self {
        self.servers.push(addr.into());
        self
    }

    /// Adds several server addresses.
    pub fn servers<S: Into<String>>(mut self, addrs: impl IntoIterator<Item = S>) -> Self {
        self.servers.extend(addrs.into_iter().map(Into::into));
        self
    }

    /// The cache to stream (default `"default"`).
    pub fn cache_name(mut self, name: impl Into<String>) -> Self {
        self.cache_name = name.into();
        self
    }

    /// The name the server logs this client under (default: the hostname).
    pub fn client_name(mut self, name: impl Into<String>) -> Self {
        self.client_name = name.into();
        self
    }

    /// Keep a local map ([`SyncClient::map`]) and reconcile fresh snapshots into deletions
    /// (default on). Off, the handler sees raw snapshots and reconciles itself.
    pub fn keep_map(mut self, on: bool) -> Self {
        self.keep_map = on;
        self
    }

    /// Ask to resume after a reconnect (default on). Off, every connection starts with a
    /// snapshot, as Typha's clients do.
    pub fn resume(mut self, on: bool) -> Self {
        self.resume = on;
        self
    }

    /// Connect with TLS (default: plain TCP).
    pub fn tls(mut self, tls: ClientTls) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Timeout of one connection attempt (default 10 s).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.connect_timeout = d;
        self
    }

    /// Timeout for the server's hello after the request (default 10 s).
    pub fn handshake_timeout(mut self, d: Duration) -> Self {
        self.handshake_timeout = d;
        self
    }

    /// HTTP/2 ping interval and the time to wait for the answer before giving the connection
    /// up (defaults 10 s and 30 s: a black-holed server is noticed within ~40 s).
    pub fn keepalive(mut self, interval: Duration, timeout: Duration) -> Self {
        self.keepalive_interval = interval;
        self.keepalive_timeout = timeout;
        self
    }

    /// Reconnection backoff: the first delay and the cap; each delay is jittered by ±50%
    /// (defaults 100 ms and 5 s).
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = (first, max.max(first));
        self
    }

    /// The largest message accepted, and the largest a snapshot chunk may inflate to (default
    /// 64 MiB).
    pub fn max_message_bytes(mut self, n: usize) -> Self {
        self.max_message_bytes = n;
        self
    }

    /// The HTTP/2 flow-control window: how much the server may send ahead of what this client
    /// has read (default HTTP/2's 64 KiB; the connection's window is twice this). Larger
    /// windows mean fewer round trips for big snapshots, and more buffered per client.
    pub fn flow_control_window(mut self, bytes: u32) -> Self {
        self.window_bytes = bytes.max(65_535);
        self
    }

    /// Accept zstd-compressed snapshot chunks (default on: the server compresses each snapshot
    /// once for all clients).
    pub fn snapshot_compression(mut self, on: bool) -> Self {
        self.snapshot_compression = on;
        self
    }

    /// Ask for gRPC transport compression of every message (default none: it costs the server
    /// CPU per client, while snapshots are already compressed once for all).
    pub fn transport_compression(mut self, c: Option<CompressionEncoding>) -> Self {
        self.transport_compression = c;
        self
    }

    /// Starts the client on the current tokio runtime, delivering to `handler`.
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn spawn(self, handler: impl SyncHandler) -> SyncClient {
        let (state_tx, state) = watch::channel(ClientState::default());
        let store = Arc::new(Mutex::new(Store::new(self.keep_map)));
        let (stop_tx, stop) = watch::channel(false);
        let (reconnect_tx, reconnect) = watch::channel(0);
        let runner = session::Runner {
            config: self,
            handler: Box::new(handler),
            store: store.clone(),
            state: state_tx,
            stop,
            reconnect,
            position: None,
        };
        let task = tokio::spawn(runner.run());
        SyncClient {
            state,
            store,
            stop: stop_tx,
            reconnect: reconnect_tx,
            task: Mutex::new(Some(task)),
        }
    }
}

/// Asks a client to reconnect (see [`SyncClient::reconnect`]). Cheap to clone.
#[derive(Clone, Debug)]
pub struct Reconnecter(watch::Sender<u64>);

impl Reconnecter {
    /// Ends the client's current stream; it reconnects and resumes.
    pub fn reconnect(&self) {
        self.0.send_modify(|n| *n += 1);
    }
}

/// A running client. Dropping it stops the client.
#[derive(Debug)]
pub struct SyncClient {
    state: watch::Receiver<ClientState>,
    store: Arc<Mutex<Store>>,
    stop: watch::Sender<bool>,
    reconnect: watch::Sender<u64>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl SyncClient {
    /// A builder with the defaults.
    pub fn builder() -> SyncClientBuilder {
        SyncClientBuilder::default()
    }

    /// The state now.
    pub fn state(&self) -> ClientState {
        self.state.borrow().clone()
    }

    /// A receiver of state changes.
    pub fn watch(&self) -> watch::Receiver<ClientState> {
        self.state.clone()
    }

    /// Waits until `pred` holds for the state, or `timeout` passes (then `Err`, with the last
    /// error seen in the message).
    pub async fn wait_until(
        &self,
        pred: impl Fn(&ClientState) -> bool,
        timeout: Duration,
    ) -> Result<ClientState, crate::Error> {
        let mut rx = self.state.clone();
        let waited = tokio::time::timeout(timeout, async {
            rx.wait_for(|s| pred(s)).await.map(|s| s.clone())
        })
        .await;
        match waited {
            Ok(Ok(state)) => Ok(state),
            _ => {
                let state = self.state();
                Err(crate::Error::Timeout(format!(
                    "client state after {timeout:?}: {state:?}"
                )))
            }
        }
    }

    /// A copy of the local map (key to value), if the client keeps one.
    pub fn map(&self) -> Option<HashMap<Bytes, Bytes>> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).map()
    }

    /// Ends the current stream: the client reconnects (to a server of its list, after its
    /// backoff), resuming where it was. For rebalancing across servers, and for tests.
    pub fn reconnect(&self) {
        self.reconnect.send_modify(|n| *n += 1);
    }

    /// A handle that can ask this client to [`reconnect`](Self::reconnect) from elsewhere.
    pub fn reconnecter(&self) -> Reconnecter {
        Reconnecter(self.reconnect.clone())
    }

    /// Stops the client and waits for its task.
    pub async fn stop(&self) {
        let _ = self.stop.send(true);
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for SyncClient {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}
