//! The data the cache carries: updates and sync statuses.

use std::time::Duration;

use bytes::Bytes;

/// Where the syncer feeding the cache stands with respect to the datastore.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SyncStatus {
    /// Not connected to the datastore yet (the initial status).
    #[default]
    WaitForDatastore,
    /// Connected, replaying the datastore.
    ResyncInProgress,
    /// Caught up: every update up to now has been delivered.
    InSync,
}

/// The kind of an update, as the syncer reported it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum UpdateType {
    /// Unknown or not given.
    #[default]
    Unknown,
    /// A key seen for the first time. Every entry stored in the cache's snapshots has this type.
    New,
    /// A new value for a known key.
    Updated,
    /// A deletion.
    Deleted,
}

/// One key/value update, in serialized form (cheap to clone: `Bytes` are reference-counted).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Update {
    /// The key.
    pub key: Bytes,
    /// The new value; `None` deletes the key.
    pub value: Option<Bytes>,
    /// The datastore revision (opaque; ignored when deciding whether an update changes
    /// anything).
    pub revision: Bytes,
    /// Time to live, if any.
    pub ttl: Option<Duration>,
    /// What the syncer says this update is.
    pub update_type: UpdateType,
}

impl Update {
    /// An update setting `key` to `value`.
    ///
    /// ```
    /// use snapcache::{Update, UpdateType};
    /// let u = Update::set("k", "v", UpdateType::New);
    /// assert_eq!(u.value.as_deref(), Some(&b"v"[..]));
    /// ```
    pub fn set(key: impl Into<Bytes>, value: impl Into<Bytes>, update_type: UpdateType) -> Self {
        Update {
            key: key.into(),
            value: Some(value.into()),
            update_type,
            ..Default::default()
        }
    }

    /// An update deleting `key`.
    pub fn delete(key: impl Into<Bytes>) -> Self {
        Update {
            key: key.into(),
            value: None,
            update_type: UpdateType::Deleted,
            ..Default::default()
        }
    }

    /// Sets the revision.
    pub fn with_revision(mut self, revision: impl Into<Bytes>) -> Self {
        self.revision = revision.into();
        self
    }

    /// Sets the time to live.
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Whether this update is a deletion.
    pub fn is_deletion(&self) -> bool {
        self.value.is_none()
    }

    /// Whether applying this update to a key currently stored as `stored` would change nothing:
    /// the revision is ignored, a stored entry (type `New`) compares as `Updated`, and key, value
    /// bytes, TTL and type must all be equal. So an identical value resent as `Updated` is a
    /// no-op, while the same value resent as `New` is not (Typha's rule).
    pub(crate) fn is_noop_for(&self, stored: &Update) -> bool {
        self.update_type == UpdateType::Updated
            && self.key == stored.key
            && self.value == stored.value
            && self.ttl == stored.ttl
    }
}
