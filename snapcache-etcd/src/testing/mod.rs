//! Test fixture (feature `testing`): a real etcd server on free loopback ports, `etcdctl`, a
//! TCP proxy that can cut the syncer off, and recorders of what reaches the cache.
//!
//! Nothing here is a mock: the server is Debian's `etcd` binary (package `etcd-server`;
//! `etcdctl` is in `etcd-client`). A missing binary fails the test with a message saying how
//! to install it. Every wait is bounded.
//!
//! ```no_run
//! # #[tokio::main] async fn main() {
//! use snapcache_etcd::testing::EtcdServer;
//! let etcd = EtcdServer::start().await;
//! let mut client = etcd.client().await;
//! client.put("/a/k", "v", None).await.unwrap();
//! let out = etcd.etcdctl(&["get", "--prefix", "/a/"]);
//! assert_eq!(String::from_utf8_lossy(&out), "/a/k\nv\n");
//! # }
//! ```

mod etcd;
mod proxy;
mod recorder;

pub use etcd::{EtcdServer, ETCDCTL_INSTALL_HINT, ETCD_INSTALL_HINT};
/// The etcd client the fixture hands out, for crates that use the fixture without depending on
/// etcd-client themselves.
pub use etcd_client;
pub use proxy::Proxy;
pub use recorder::{
    describe_difference, etcd_state, etcdctl_state, snapshot_state, wait_for_state, Recorder,
    RecordingSink, Sent, State,
};
