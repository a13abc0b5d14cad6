//! The fan-out server (Typha's syncserver): serves one or more named caches to any number of
//! clients over gRPC.
//!
//! Each client stream is its own task that walks the cache's breadcrumbs: the syncer and the
//! cache do no per-client work and keep no per-client queue. Each breadcrumb's deltas are
//! encoded to wire bytes once and the same bytes go to every client; clients that are behind get
//! several breadcrumbs coalesced into one message; a client starting fresh streams a shared,
//! pre-encoded, compressed snapshot. Slow clients are cut off, never waited for.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use snapcache_grpc::server::{Server, ServerConfig};
//!
//! let cache = snapcache::Cache::new(snapcache::Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:5473").await?;
//! let server = Server::new(ServerConfig::default())
//!     .cache("default", cache.clone())
//!     .start(listener)?;
//! // ... feed `cache` from a syncer; then:
//! server.shutdown().await; // drains clients gradually over `shutdown_timeout`
//! # Ok(()) }
//! ```

mod config;
mod conn;
mod handshake;
mod journal;
mod served;
mod service;
mod snapshot;
mod stats;
mod stream;
mod tls;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tonic::codec::CompressionEncoding;

pub use self::config::{ClientNames, ServerConfig, ServerTls};
pub use self::served::ServedCache;

pub(crate) use self::handshake::status as end_status;
pub use self::stats::ServerStatsSnapshot;

use self::conn::{Incoming, Kill};
use self::stats::ServerStats;
use crate::proto::server::sync_server::SyncServer;
use crate::proto::EndReason;

/// A server under construction: its configuration and the caches it serves.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    caches: Vec<(String, CacheToServe)>,
}

#[derive(Debug)]
enum CacheToServe {
    Plain(snapcache::Cache),
    Served(ServedCache),
}

/// One cache as this server serves it.
pub(crate) struct Served {
    pub(crate) name: String,
    pub(crate) cache: ServedCache,
}

/// A running stream's controls, for shutdown and draining.
struct StreamCtl {
    stop: watch::Sender<Option<EndReason>>,
    kill: Arc<Kill>,
}

/// State shared by the service, the stream tasks and the handle.
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) caches: HashMap<String, Arc<Served>>,
    pub(crate) stats: Arc<ServerStats>,
    streams: Mutex<HashMap<u64, StreamCtl>>,
    next_stream: AtomicU64,
    shutting_down: AtomicBool,
}

/// A registered stream: unregisters itself on drop.
pub(crate) struct Registration {
    shared: Arc<Shared>,
    pub(crate) id: u64,
    pub(crate) stop: watch::Receiver<Option<EndReason>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shared.lock_streams().remove(&self.id);
    }
}

/// Why a stream could not be registered.
pub(crate) enum Refusal {
    TooMany(usize),
    ShuttingDown,
}

impl Shared {
    fn lock_streams(&self) -> std::sync::MutexGuard<'_, HashMap<u64, StreamCtl>> {
        self.streams.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn is_shutting_down(&self) -> bool {
        // Acquire: pairs with the Release store in `shutdown`.
        self.shutting_down.load(Ordering::Acquire)
    }

    /// Registers a new stream, unless the server is full or shutting down.
    pub(crate) fn register(self: &Arc<Self>, kill: Arc<Kill>) -> Result<Registration, Refusal> {
        let mut streams = self.lock_streams();
        // Checked under the lock that `shutdown` takes to collect the streams to drain, so a
        // stream either is refused or is drained.
        if self.is_shutting_down() {
            return Err(Refusal::ShuttingDown);
        }
        // Seeded bug: the limit is ignored.
        let limit = self
            .config
            .max_connections
            .filter(|_| !crate::seeded::active("no_connection_limit"));
        if let Some(max) = limit {
            if streams.len() >= max {
                return Err(Refusal::TooMany(max));
            }
        }
        // Relaxed: a unique number, nothing else.
        let id = self.next_stream.fetch_add(1, Ordering::Relaxed);
        let (stop, rx) = watch::channel(None);
        streams.insert(id, StreamCtl { stop, kill });
        Ok(Registration {
            shared: self.clone(),
            id,
            stop: rx,
        })
    }
}

impl Server {
    /// A server with `config` and no caches yet.
    pub fn new(config: ServerConfig) -> Self {
        Server {
            config,
            caches: Vec::new(),
        }
    }

    /// Serves `cache` under `name` (Typha's syncer type), as a new instance (with the resume
    /// window of the configuration). A later cache of the same name replaces an earlier one.
    pub fn cache(self, name: impl Into<String>, cache: snapcache::Cache) -> Self {
        self.add(name.into(), CacheToServe::Plain(cache))
    }

    /// Serves an instance that other servers may serve too (clients resume across them).
    pub fn served_cache(self, name: impl Into<String>, cache: ServedCache) -> Self {
        self.add(name.into(), CacheToServe::Served(cache))
    }

    fn add(mut self, name: String, cache: CacheToServe) -> Self {
        self.caches.retain(|(n, _)| *n != name);
        self.caches.push((name, cache));
        self
    }

    /// Starts serving on `listener` (on the current tokio runtime) and returns at once.
    ///
    /// Fails if the TLS configuration is invalid or no cache was added.
    pub fn start(self, listener: TcpListener) -> Result<ServerHandle, crate::Error> {
        let Server { config, caches } = self;
        if caches.is_empty() {
            return Err(crate::Error::Config(
                "a server needs at least one cache".into(),
            ));
        }
        let local_addr = listener.local_addr()?;
        let stats = Arc::new(ServerStats::default());
        let mut served = HashMap::new();
        for (name, cache) in caches {
            let cache = match cache {
                CacheToServe::Served(c) => c,
                CacheToServe::Plain(c) => {
                    ServedCache::new(c, config.resume_window, config.resume_window_breadcrumbs)
                }
            };
            served.insert(name.clone(), Arc::new(Served { name, cache }));
        }
        // Seeded bug: no pings, so a black-holed client is never noticed.
        let keepalive =
            Some(config.keepalive_interval).filter(|_| !crate::seeded::active("no_keepalive"));
        let mut builder = tonic::transport::Server::builder()
            .timeout(config.handshake_timeout)
            .http2_keepalive_interval(keepalive)
            .http2_keepalive_timeout(Some(config.keepalive_timeout))
            .tcp_nodelay(true);
        if let Some(tls) = &config.tls {
            builder = builder
                .tls_config(tls.tonic_config()?)
                .map_err(|e| crate::Error::Config(format!("TLS: {e}")))?;
        }
        let shared = Arc::new(Shared {
            config,
            caches: served,
            stats: stats.clone(),
            streams: Mutex::new(HashMap::new()),
            next_stream: AtomicU64::new(1),
            shutting_down: AtomicBool::new(false),
        });
        let service = SyncServer::new(service::SyncService::new(shared.clone()))
            .max_decoding_message_size(shared.config.max_request_bytes)
            .max_encoding_message_size(usize::MAX)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .send_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Zstd);
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let incoming = Incoming::new(listener, stats);
        let serve = tokio::spawn(async move {
            let signal = async {
                let _ = stop_rx.await;
            };
            if let Err(e) = builder
                .add_service(service)
                .serve_with_incoming_shutdown(incoming, signal)
                .await
            {
                tracing::error!(error = %e, "the server stopped with an error");
            }
        });
        tracing::info!(%local_addr, caches = ?shared.caches.keys().collect::<Vec<_>>(), "serving");
        Ok(ServerHandle {
            local_addr,
            shared,
            stop: Some(stop_tx),
            serve: Some(serve),
        })
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    local_addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    serve: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("caches", &self.caches.keys().collect::<Vec<_>>())
            .field("stats", &self.stats.snapshot())
            .finish_non_exhaustive()
    }
}

impl ServerHandle {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server's counters.
    pub fn stats(&self) -> ServerStatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The unique ID of the instance of the cache served as `name`.
    pub fn cache_id(&self, name: &str) -> Option<String> {
        self.shared
            .caches
            .get(name)
            .map(|c| c.cache.id().to_owned())
    }

    /// Graceful shutdown (Typha's): refuses new streams, then ends the open ones one at a time
    /// (each client is told `SHUTTING_DOWN` and moves to another server) over 95% of
    /// [`ServerConfig::shutdown_timeout`], at most 1 s apart; then stops serving.
    pub async fn shutdown(mut self) {
        self.drain(self.shared.config.shutdown_timeout).await;
        self.stop_serving().await;
    }

    /// Stops at once: every connection is cut, no goodbyes (a crash, as far as clients can
    /// tell, except that the port is released).
    pub async fn kill(mut self) {
        // Release: pairs with the Acquire in `is_shutting_down`.
        self.shared.shutting_down.store(true, Ordering::Release);
        for ctl in self.shared.lock_streams().values() {
            ctl.kill.kill();
        }
        self.stop_serving().await;
    }

    async fn drain(&self, timeout: Duration) {
        let ctls: Vec<(watch::Sender<Option<EndReason>>, Arc<Kill>)> = {
            let streams = self.shared.lock_streams();
            // Release: pairs with the Acquire in `is_shutting_down` (set under the lock that
            // `register` checks it under).
            self.shared.shutting_down.store(true, Ordering::Release);
            let mut v: Vec<_> = streams
                .values()
                .map(|c| (c.stop.clone(), c.kill.clone()))
                .collect();
            rand::seq::SliceRandom::shuffle(&mut v[..], &mut rand::rng());
            v
        };
        if ctls.is_empty() {
            return;
        }
        let mut spacing = (timeout.mul_f64(0.95) / ctls.len() as u32).min(Duration::from_secs(1));
        if crate::seeded::active("drain_at_once") {
            spacing = Duration::ZERO;
        }
        tracing::info!(streams = ctls.len(), ?spacing, "draining");
        for (i, (stop, _)) in ctls.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(spacing).await;
            }
            stop.send_replace(Some(EndReason::ShuttingDown));
        }
        // Whoever has not gone within a second of being told is cut off.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(1);
        while !self.shared.lock_streams().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        for (_, kill) in &ctls {
            kill.kill();
        }
    }

    async fn stop_serving(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(serve) = self.serve.take() {
            // Connections without streams are closed by tonic's graceful shutdown (GOAWAY);
            // give it a bounded time.
            if tokio::time::timeout(Duration::from_secs(5), serve)
                .await
                .is_err()
            {
                tracing::warn!("connections still open 5 s after shutdown; abandoning them");
            }
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Dropped without `shutdown` or `kill`: stop as `kill` does, without waiting.
        if let Some(stop) = self.stop.take() {
            self.shared.shutting_down.store(true, Ordering::Release);
            for ctl in self.shared.lock_streams().values() {
                ctl.kill.kill();
            }
            let _ = stop.send(());
        }
    }
}
