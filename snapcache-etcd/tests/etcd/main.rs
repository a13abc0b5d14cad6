//! The syncer against a real etcd server (started by `snapcache_etcd::testing`), over real
//! loopback TCP. Every scenario of issue 15 is a test here; each was shown to fail on a seeded
//! bug (`SNAPCACHE_ETCD_MUTANT`, see `snapcache-etcd/mutants.sh` and VERIFICATION.md).

mod common;

mod auth;

mod differential;
mod faults;
mod initial_list;
mod lifecycle;
mod prefix_and_values;
mod statuses;
mod watch_events;
