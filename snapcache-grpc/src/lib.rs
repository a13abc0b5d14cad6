//! The snapshot cache over the network: Calico Typha's syncserver and syncclient on gRPC
//! (tonic), with resume.
//!
//! * [`server`]: serves one or more named [`snapcache::Cache`]s to any number of clients. Each
//!   client stream is a task walking the breadcrumbs; each breadcrumb's deltas are encoded once
//!   for all clients; snapshots are encoded once (zstd) per breadcrumb and shared; clients that
//!   fall too far behind are cut off, never waited for; recent breadcrumbs are kept so that a
//!   reconnecting client resumes with deltas only.
//! * [`client`]: [`SyncClient`](client::SyncClient) connects to one of several servers,
//!   streams the snapshot and the deltas to a [`SyncHandler`](client::SyncHandler), keeps a
//!   local map if asked, reconnects with jittered backoff, resumes when it can and reconciles
//!   a fresh snapshot into deletions.
//! * [`synthetic`]: the synthetic syncer of the fan-out demo, as a cache source for the
//!   `snapcache-server` binary, the loopback demo and the tests.
//!
//! The protocol is `proto/snapcache.proto` (in [`proto`]); the README describes it, its
//! defaults and how it compares with Typha's.
//!
//! # Example: a server and a client in one process
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use snapcache::{Cache, Config, SyncStatus, Update, UpdateType};
//! use snapcache_grpc::client::SyncClient;
//! use snapcache_grpc::server::{Server, ServerConfig};
//! use std::time::Duration;
//!
//! let cache = Cache::new(Config::default());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = Server::new(ServerConfig::default()).cache("default", cache.clone()).start(listener)?;
//!
//! let client = SyncClient::builder()
//!     .server(server.local_addr().to_string())
//!     .cache_name("default")
//!     .keep_map(true)
//!     .spawn(());
//! cache.on_updates(vec![Update::set("a", "1", UpdateType::New)])?;
//! cache.on_status_updated(SyncStatus::InSync)?;
//! client.wait_until(|s| s.in_sync, Duration::from_secs(10)).await?;
//! assert_eq!(client.map().unwrap().len(), 1);
//! client.stop().await;
//! server.shutdown().await;
//! # Ok(()) }
//! ```
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

pub mod client;
mod codec;
mod convert;
pub mod dump;
pub mod proto;
mod seeded;
pub mod server;
pub mod synthetic;
mod wire;

pub use crate::codec::ServerCodec;
pub use crate::wire::Frame;

/// The protocol version this crate speaks (`SyncRequest.protocol_version`,
/// `ServerHello.protocol_version`). A server refuses clients of another version.
pub const PROTOCOL_VERSION: u32 = 1;

/// The gRPC metadata key under which the server names the [`proto::EndReason`] of a refused or
/// ended stream (for example `END_REASON_TOO_MANY_CONNECTIONS`).
pub const END_REASON_METADATA_KEY: &str = "snapcache-end-reason";

/// The default port (Typha's).
pub const DEFAULT_PORT: u16 = 5473;

/// Errors of this crate's setup functions.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An invalid configuration (the message says what).
    Config(String),
    /// An I/O error (binding, reading a file).
    Io(std::io::Error),
    /// A wait ran out of time (the message says what for).
    Timeout(String),
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Config(m) => write!(f, "invalid configuration: {m}"),
            Error::Io(e) => write!(f, "{e}"),
            Error::Timeout(m) => write!(f, "timed out: {m}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Io(e)
    }
}
