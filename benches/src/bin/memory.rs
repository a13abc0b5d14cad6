//! Bytes per entry of each map after inserting `BENCH_KEYS` (default 1M) u64 keys/values in
//! random order: `cargo run --release -p benches --bin memory` (std's `RandomState`; the hasher
//! does not change the layout).
//!
//! Counted with a wrapping global allocator over the system allocator: "requested" is the sum
//! of the sizes asked for; "allocated" adds the allocator's own rounding and header, as reported
//! by glibc's `malloc_usable_size` plus its 8-byte chunk header (Linux/glibc only).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};

use benches::maps::Hasher;
use benches::{fill, for_each_map, keys, random_keys, Map};

struct Counting;

static REQUESTED: AtomicIsize = AtomicIsize::new(0);
static ALLOCATED: AtomicIsize = AtomicIsize::new(0);

extern "C" {
    fn malloc_usable_size(ptr: *mut u8) -> usize;
}

fn usable(p: *mut u8) -> isize {
    // SAFETY: `p` is a live pointer returned by the system allocator (glibc malloc).
    unsafe { malloc_usable_size(p) as isize + 8 }
}

// SAFETY: forwards to the system allocator; the counters have no effect on allocation.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            REQUESTED.fetch_add(l.size() as isize, Relaxed);
            ALLOCATED.fetch_add(usable(p), Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        REQUESTED.fetch_sub(l.size() as isize, Relaxed);
        ALLOCATED.fetch_sub(usable(p), Relaxed);
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Lets deferred frees of earlier work run, so they do not pollute the next measurement.
fn settle() {
    for _ in 0..2_000 {
        ctrie::pin().flush();
    }
}

fn measure<M: Map, H: Hasher>(ks: &[u64]) {
    settle();
    let (r0, a0) = (REQUESTED.load(Relaxed), ALLOCATED.load(Relaxed));
    let m = M::new();
    fill(&m, ks);
    // Retired nodes of the build phase are garbage, not part of the map.
    settle();
    let (r, a) = (REQUESTED.load(Relaxed) - r0, ALLOCATED.load(Relaxed) - a0);
    let n = ks.len() as f64;
    println!(
        "| {:12} | {:6} | {:9.1} | {:9.1} |",
        M::NAME,
        H::LABEL,
        r as f64 / n,
        a as f64 / n
    );
    drop(m);
}

fn main() {
    let n = keys();
    let ks = random_keys(n, 1);
    println!("{n} u64 keys and values, inserted in random order (bytes per entry)\n");
    println!("| map          | hasher | requested | allocated |");
    println!("|--------------|--------|-----------|-----------|");
    for_each_map!(Std, measure(&ks));
}
