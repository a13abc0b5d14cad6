//! The snapshot cache over the network (work in progress, issue 14).
#![deny(missing_docs, unsafe_op_in_unsafe_fn)]
