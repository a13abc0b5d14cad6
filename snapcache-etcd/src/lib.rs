//! An etcd v3 syncer for the snapshot cache: Typha's datastore side. It lists a key prefix at
//! one revision, feeds it into a [`snapcache::Cache`], then watches from the next revision,
//! re-watching after a lost connection and resyncing (with deletions) after a compaction.
//!
//! ```no_run
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use snapcache_etcd::{EtcdConfig, EtcdSyncer};
//!
//! let cache = snapcache::Cache::new(snapcache::Config::default());
//! let syncer = EtcdSyncer::spawn(
//!     EtcdConfig::new(["http://127.0.0.1:2379"], "/registry/"),
//!     cache.clone(),
//! )?;
//! // Followers read `cache` (snapcache's breadcrumbs); the syncer keeps it up to date.
//! # syncer.stop().await?;
//! # Ok(()) }
//! ```
//!
//! See [`EtcdSyncer`] for the state machine, and `revision.rs` for what "the last revision
//! seen" means for each kind of watch response. Tested against a real etcd (Debian's
//! `etcd-server`), started by the [`testing`] fixture.
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
#![warn(missing_debug_implementations)]

mod config;
mod error;
mod keys;
mod list;
mod mutant;
mod revision;
mod sink;
mod state;
mod syncer;
mod watch;

#[cfg(feature = "testing")]
pub mod testing;

pub use crate::config::{
    Backoff, Credentials, EtcdConfig, TlsConfig, DEFAULT_BATCH_SIZE, DEFAULT_MAX_MESSAGE_SIZE,
    DEFAULT_PAGE_SIZE,
};
pub use crate::error::Error;
pub use crate::sink::Sink;
pub use crate::state::{Phase, SyncerState};
pub use crate::syncer::EtcdSyncer;
