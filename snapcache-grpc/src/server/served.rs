//! A cache prepared for serving: its instance ID, its journal of recent breadcrumbs (for
//! resuming clients) and its shared snapshot encodings. Several servers may serve one
//! [`ServedCache`] (a restart in the same process, or one server per interface): clients then
//! resume across them, since the instance is the same.

use std::sync::Arc;
use std::time::Duration;

use snapcache::Cache;
use tokio::task::JoinHandle;

use super::journal::{Journal, Window};
use super::snapshot::SnapshotSlot;

/// A [`Cache`] with what serving it needs. Cheap to clone.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use snapcache_grpc::server::ServedCache;
/// use std::time::Duration;
///
/// let cache = snapcache::Cache::new(snapcache::Config::default());
/// let served = ServedCache::new(cache, Duration::from_secs(30), 100_000);
/// assert_eq!(served.id().len(), 32);
/// # }
/// ```
#[derive(Clone)]
pub struct ServedCache {
    inner: Arc<Inner>,
}

struct Inner {
    journal: Arc<Journal>,
    snapshots: SnapshotSlot,
    follow: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.follow.abort();
    }
}

impl ServedCache {
    /// Prepares `cache` for serving, with a new instance ID, keeping breadcrumbs for resuming
    /// clients for `resume_window` and at most `resume_window_breadcrumbs` of them.
    ///
    /// # Panics
    /// Outside a tokio runtime (a task follows the cache to keep the window).
    pub fn new(cache: Cache, resume_window: Duration, resume_window_breadcrumbs: usize) -> Self {
        let journal = Journal::new(
            cache,
            Window {
                age: resume_window,
                breadcrumbs: resume_window_breadcrumbs,
            },
        );
        let follow = tokio::spawn(journal.clone().follow());
        ServedCache {
            inner: Arc::new(Inner {
                journal,
                snapshots: SnapshotSlot::default(),
                follow,
            }),
        }
    }

    /// The instance ID clients resume against (32 hex digits, random).
    pub fn id(&self) -> &str {
        &self.inner.journal.id
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.inner.journal.cache
    }

    pub(crate) fn journal(&self) -> &Arc<Journal> {
        &self.inner.journal
    }

    pub(crate) fn snapshots(&self) -> &SnapshotSlot {
        &self.inner.snapshots
    }
}

impl std::fmt::Debug for ServedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServedCache")
            .field("id", &self.id())
            .field("newest", &self.inner.journal.newest_seq())
            .finish()
    }
}
