//! The one place where the crate names its concurrency primitives.
//!
//! Under `--cfg ctrie_loom` every atomic, fence and `Arc` comes from [loom] so that its model
//! checker can explore every interleaving; otherwise they are the `std` ones. Nothing else in the
//! crate imports `std::sync` directly (`tests/shim.rs` checks that).
//!
//! Loom runs also need crossbeam-epoch's `loom` feature together with `--cfg crossbeam_loom` so
//! that the epoch's own pinning and reclamation atomics are modelled too; `loom-tests/run.sh`
//! sets both.

#[cfg(not(ctrie_loom))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering},
    Arc,
};

#[cfg(ctrie_loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU8, AtomicUsize, Ordering},
    Arc,
};

#[cfg(not(ctrie_loom))]
pub(crate) use std::thread_local;

#[cfg(ctrie_loom)]
pub(crate) use loom::thread_local;

/// Allocation goes through here so that loom can track leaks and double frees.
pub(crate) mod alloc {
    #[cfg(ctrie_loom)]
    pub(crate) use loom::alloc::{alloc, dealloc};
    #[cfg(not(ctrie_loom))]
    pub(crate) use std::alloc::{alloc, dealloc};
    pub(crate) use std::alloc::{handle_alloc_error, Layout};
}

/// A source of unique generation identities.
///
/// Generations are compared by value; a 64-bit counter that is never reset cannot repeat in
/// practice (2^64 snapshots), so identity is unique and ABA-free without keeping any object alive.
/// Uniqueness needs only the atomicity of `fetch_add`, never any ordering with other memory, so
/// this stays a `std` atomic even under loom (a loom atomic cannot live in a `static`).
pub(crate) fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    // Relaxed: only uniqueness of the returned value matters.
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
