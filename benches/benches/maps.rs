//! ctrie against papaya, dashmap, scc, contrie, flurry, `RwLock<HashMap>`,
//! `ArcSwap<imbl::HashMap>` and crossbeam's skip list: u64 keys and values, `BENCH_KEYS`
//! (default 1M) keys inserted in random order, each with std's `RandomState` and foldhash,
//! on the **system allocator** (`maps_mimalloc` runs the same with mimalloc).
//!
//! Groups: `insert`, `get_hit`, `get_miss` (single thread), and the bustle-style mixes
//! `mix_read_heavy`, `mix_exchange`, `mix_rapid_grow` (1 and 2 threads) and `mix_90_5_5`
//! (2 threads). IDs are `<group>/<map>/<hasher>/system[/<threads>]`.
//!
//! Run: `cargo bench -p benches --bench maps` (add `-- --quick` for a short run, and a filter
//! such as `-- 'mix_.*/ctrie/'` for a subset).

use criterion::{criterion_group, criterion_main, Criterion};

fn maps(c: &mut Criterion) {
    benches::suite::all(c, "system");
}

criterion_group!(benches, maps);
criterion_main!(benches);
