//! The benchmarks of `maps.rs` with mimalloc as the global allocator (a separate binary, so
//! both allocators run in one `cargo bench`). IDs are `<group>/<map>/<hasher>/mimalloc[/..]`.
//!
//! Run: `cargo bench -p benches --bench maps_mimalloc` (add `-- --quick` for a short run).

use criterion::{criterion_group, criterion_main, Criterion};

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn maps(c: &mut Criterion) {
    benches::suite::all(c, "mimalloc");
}

criterion_group!(benches, maps);
criterion_main!(benches);
