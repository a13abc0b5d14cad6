//! An etcd v3 syncer for the snapshot cache (work in progress, issue 15).
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
