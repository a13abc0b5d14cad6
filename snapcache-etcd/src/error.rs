//! Why a syncer stopped.

use std::fmt;

/// Why an [`EtcdSyncer`](crate::EtcdSyncer) stopped on its own. Failures talking to etcd are
/// not errors of this kind: the syncer retries them with back-off for as long as it runs, and
/// shows the last one in its [`SyncerState`](crate::SyncerState).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The configuration cannot work (the message says why).
    Config(String),
    /// etcd-client refused to build a client from the configuration (a malformed endpoint URL,
    /// TLS files it cannot use).
    Client(etcd_client::Error),
    /// The cache was shut down, so there is nothing left to feed.
    CacheClosed,
    /// The syncer's task panicked (a bug); the message is the panic's.
    Panicked(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Config(why) => write!(f, "bad etcd syncer configuration: {why}"),
            Error::Client(e) => write!(f, "cannot build an etcd client: {e}"),
            Error::CacheClosed => write!(f, "the cache was shut down"),
            Error::Panicked(why) => write!(f, "the etcd syncer panicked: {why}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Client(e) => Some(e),
            _ => None,
        }
    }
}
