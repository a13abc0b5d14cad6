//! The syncer's state machine and its handle.
//!
//! ```text
//!            ┌────────────────────────────── back-off ◄─┐ etcd unreachable / refused
//!            ▼                                          │
//!  Connecting ── first page ──► Listing at R ──► InSync, Watching R+1..
//!  (WaitForDatastore)          (ResyncInProgress)        │        ▲
//!                                   ▲                    │        │ lost connection:
//!                                   │                    │        │ back-off, re-watch S+1..
//!                                   │                    └────────┘ (S = last revision seen)
//!                                   └── compacted, or a gap ─┘
//!                                       (ResyncInProgress, relist; deletions for what it lacks)
//! ```

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use snapcache::SyncStatus;
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;

use crate::config::EtcdConfig;
use crate::error::Error;
use crate::keys::{KeyRange, KnownKeys};
use crate::list::PageReader;
use crate::mutant::{self, Mutant};
use crate::revision::Position;
use crate::sink::{Feed, Sink, SinkClosed};
use crate::state::{Phase, SyncerState};

/// A running etcd syncer: lists and watches a key prefix and feeds it into a
/// [`snapcache::Cache`] (or any [`Sink`]), from a task on the tokio runtime it was spawned on.
///
/// * Start: status `WaitForDatastore`; once etcd answers, `ResyncInProgress`; the prefix is
///   listed at one revision `R` in pages of [`page_size`](EtcdConfig::page_size) (every page
///   at `R`) and fed as it arrives; then `InSync`, and a watch for the changes after `R`,
///   with progress notifications. (The watch is opened at `R` itself and skips `R`'s replayed
///   events: see `revision.rs` for the etcd bug that makes a watch from `R + 1` lose a
///   deletion.) A put of a key the cache does not hold is sent as `New`, of one it holds
///   as `Updated`, a delete as a deletion; the update's revision is the key's mod revision in
///   decimal.
/// * A lost connection: back off, re-watch for the changes after the last revision seen (see
///   `revision.rs` for what "seen" means). No resync, no status change.
/// * A compacted start revision, or events that do not follow the last one seen: status
///   `ResyncInProgress`, list again at a new revision, send every listed key (the cache skips
///   unchanged ones) and a deletion for each key the cache holds that the list lacks, then
///   `InSync` and watch on.
///
/// Failures talking to etcd are retried with back-off for as long as the syncer runs; its
/// [`state`](Self::state) shows the last one. It stops when [`stop`](Self::stop) is called or
/// the handle dropped, or when the cache is shut down.
///
/// ```no_run
/// # async fn demo() -> Result<(), snapcache_etcd::Error> {
/// use snapcache_etcd::{EtcdConfig, EtcdSyncer, Phase};
/// use std::time::Duration;
///
/// let cache = snapcache::Cache::new(snapcache::Config::default());
/// let config = EtcdConfig::new(["http://127.0.0.1:2379"], "/registry/");
/// let syncer = EtcdSyncer::spawn(config, cache.clone())?;
/// let state = syncer.wait_for(Duration::from_secs(10), |s| s.phase == Phase::Watching).await;
/// println!("{state:?}; {} keys", cache.current_breadcrumb().kvs.len());
/// syncer.stop().await
/// # }
/// ```
pub struct EtcdSyncer {
    state: watch::Receiver<SyncerState>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), Error>>,
}

impl EtcdSyncer {
    /// Starts syncing `config`'s prefix into `sink`, on the current tokio runtime.
    ///
    /// Fails at once (without contacting etcd) if the configuration is invalid or there is no
    /// runtime; everything else is retried in the background.
    pub fn spawn(config: EtcdConfig, sink: impl Sink) -> Result<Self, Error> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Config("EtcdSyncer::spawn must be called from within a tokio runtime".into())
        })?;
        let (state_tx, state) = watch::channel(SyncerState::default());
        let (stop, stopped) = oneshot::channel::<()>();
        let sink: Arc<dyn Sink> = Arc::new(sink);
        let task = runtime.spawn(async move {
            // Says `Stopped` however the task ends, a panic included.
            let _stopped = StoppedOnDrop(state_tx.clone());
            tokio::select! {
                // Asked to stop, or the handle was dropped.
                _ = stopped => Ok(()),
                r = run(config, sink, state_tx) => r,
            }
        });
        Ok(EtcdSyncer {
            state,
            stop: Some(stop),
            task,
        })
    }

    /// The current state.
    pub fn state(&self) -> SyncerState {
        self.state.borrow().clone()
    }

    /// A receiver of state changes (each change marks it as changed; intermediate states can
    /// be skipped by a slow reader).
    pub fn subscribe(&self) -> watch::Receiver<SyncerState> {
        self.state.clone()
    }

    /// Waits until the state satisfies `until`, for at most `timeout`; returns the state that
    /// did, or the last one seen in `Err` if time ran out or the syncer stopped first.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        mut until: impl FnMut(&SyncerState) -> bool,
    ) -> Result<SyncerState, SyncerState> {
        let mut rx = self.state.clone();
        let waited = tokio::time::timeout(timeout, async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if until(&s) {
                        return Ok(s.clone());
                    }
                    if s.phase == Phase::Stopped {
                        return Err(s.clone());
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(rx.borrow().clone());
                }
            }
        })
        .await;
        waited.unwrap_or_else(|_| Err(self.state()))
    }

    /// Whether the syncer has stopped (on its own, or asked to).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the syncer and waits for it. Returns why it had stopped on its own, if it had
    /// (the cache was shut down), and `Ok` otherwise.
    pub async fn stop(mut self) -> Result<(), Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match (&mut self.task).await {
            Ok(result) => result,
            Err(e) if e.is_panic() => Err(Error::Panicked(panic_message(e.into_panic()))),
            Err(_) => Ok(()), // the runtime is shutting down
        }
    }
}

impl fmt::Debug for EtcdSyncer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdSyncer")
            .field("state", &*self.state.borrow())
            .finish()
    }
}

/// Sets the phase to `Stopped` when dropped (noting a panic if the task is unwinding).
struct StoppedOnDrop(watch::Sender<SyncerState>);

impl Drop for StoppedOnDrop {
    fn drop(&mut self) {
        let panicking = std::thread::panicking();
        self.0.send_modify(|s| {
            s.phase = Phase::Stopped;
            if panicking {
                s.last_error = Some("the syncer panicked".into());
            }
        });
    }
}

fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a non-string panic".into())
}

/// Why a list or a watch ended.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Something to retry after a back-off: a lost connection, a refused request.
    Retry(String),
    /// The cache can no longer be brought up to date by watching: list again.
    Resync(String),
    /// The sink is closed.
    Closed,
}

impl From<SinkClosed> for Failure {
    fn from(_: SinkClosed) -> Self {
        Failure::Closed
    }
}

/// The syncer's working state (one task owns it).
pub(crate) struct Syncer {
    pub(crate) config: EtcdConfig,
    pub(crate) range: KeyRange,
    pub(crate) pages: PageReader,
    pub(crate) watch: etcd_client::WatchClient,
    pub(crate) keys: KnownKeys,
    pub(crate) feed: Feed,
    state: watch::Sender<SyncerState>,
    /// The next back-off.
    delay: Duration,
    /// Watches opened since the last complete list.
    watches: u64,
}

/// Connects, then runs the state machine until the sink closes.
async fn run(
    config: EtcdConfig,
    sink: Arc<dyn Sink>,
    state: watch::Sender<SyncerState>,
) -> Result<(), Error> {
    let mut feed = Feed::new(sink);
    feed.set_status(SyncStatus::WaitForDatastore)
        .await
        .map_err(|_| Error::CacheClosed)?;
    let mut delay = config.backoff.min;
    let client = loop {
        match connect(&config).await {
            Ok(client) => break client,
            Err(e) if is_permanent(&e) => return Err(Error::Client(e)),
            Err(e) => {
                state.send_modify(|s| {
                    s.phase = Phase::Retrying;
                    s.last_error = Some(format!("connecting: {e}"));
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(config.backoff.max);
            }
        }
    };
    let limit = if mutant::active(Mutant::DefaultMessageLimit) {
        4 << 20
    } else {
        config.max_message_size
    };
    let range = KeyRange::prefix(&config.prefix);
    let syncer = Syncer {
        pages: PageReader {
            kv: client.kv_client().max_decoding_message_size(limit),
            range: range.clone(),
            page_size: config.page_size,
            timeout: config.request_timeout,
        },
        watch: client.watch_client().max_decoding_message_size(limit),
        range,
        keys: KnownKeys::default(),
        feed,
        state,
        delay,
        watches: 0,
        config,
    };
    syncer.run().await
}

async fn connect(config: &EtcdConfig) -> Result<etcd_client::Client, etcd_client::Error> {
    // A watch on a member cut off from its cluster's leader would stall silently; with
    // "require leader" etcd cancels it instead, and the syncer re-watches elsewhere.
    let options = config
        .connect_options()
        .map_err(|e| etcd_client::Error::InvalidArgs(e.to_string()))?
        .with_require_leader(true);
    etcd_client::Client::connect(&config.endpoints, Some(options)).await
}

/// Errors that retrying cannot fix: the configuration is unusable.
fn is_permanent(e: &etcd_client::Error) -> bool {
    matches!(
        e,
        etcd_client::Error::InvalidArgs(_)
            | etcd_client::Error::InvalidUri(_)
            | etcd_client::Error::EndpointError(_)
            | etcd_client::Error::InvalidMetadataValue(_)
    )
}

impl Syncer {
    async fn run(mut self) -> Result<(), Error> {
        loop {
            // List (the initial sync, or a resync) until one completes.
            let revision = loop {
                match self.list().await {
                    Ok(revision) => break revision,
                    Err(Failure::Closed) => return Err(Error::CacheClosed),
                    // The list's revision was compacted while paging, or etcd failed: list
                    // again (keys already sent stay known, so the next list's deletions
                    // cover them).
                    Err(Failure::Resync(why) | Failure::Retry(why)) => self.back_off(why).await,
                }
            };
            self.listed_at(revision);
            self.feed
                .set_status(SyncStatus::InSync)
                .await
                .map_err(|_| Error::CacheClosed)?;
            let mut position = Position::listed_at(revision);
            let why = loop {
                match self.watch(&mut position).await {
                    Failure::Closed => return Err(Error::CacheClosed),
                    Failure::Resync(why) => break why,
                    Failure::Retry(why) => self.back_off(why).await,
                }
            };
            tracing::warn!(prefix = ?self.config.prefix, "etcd syncer resyncing: {why}");
            self.state.send_modify(|s| s.last_error = Some(why));
            self.feed
                .set_status(SyncStatus::ResyncInProgress)
                .await
                .map_err(|_| Error::CacheClosed)?;
        }
    }

    pub(crate) fn set_phase(&self, phase: Phase) {
        self.state.send_if_modified(|s| {
            let changed = s.phase != phase;
            s.phase = phase;
            changed
        });
    }

    /// A list at `revision` is complete: the cache has all of etcd's prefix at it.
    fn listed_at(&mut self, revision: i64) {
        self.delay = self.config.backoff.min;
        self.watches = 0;
        let keys = self.keys.len();
        self.state.send_modify(|s| {
            s.lists += 1;
            s.list_revision = revision;
            s.revision = revision;
            s.keys = keys;
        });
    }

    /// A watch has been opened (etcd confirmed it).
    pub(crate) fn watch_opened(&mut self) {
        self.delay = self.config.backoff.min;
        let rewatch = self.watches > 0;
        self.watches += 1;
        self.state.send_modify(|s| {
            s.phase = Phase::Watching;
            s.rewatches += u64::from(rewatch);
        });
    }

    /// The cache now has every change up to `revision`.
    pub(crate) fn seen(&self, revision: i64) {
        let keys = self.keys.len();
        self.state.send_if_modified(|s| {
            let changed = s.revision != revision || s.keys != keys;
            s.revision = revision;
            s.keys = keys;
            changed
        });
    }

    /// Records a failure and waits before the next attempt.
    async fn back_off(&mut self, why: String) {
        tracing::warn!(prefix = ?self.config.prefix, "etcd syncer retrying in {:?}: {why}", self.delay);
        self.state.send_modify(|s| {
            s.phase = Phase::Retrying;
            s.last_error = Some(why);
        });
        tokio::time::sleep(self.delay).await;
        self.delay = (self.delay * 2).min(self.config.backoff.max);
    }
}
