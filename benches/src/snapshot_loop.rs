//! `read_only_snapshot()` in a loop while one writer runs, for the two allocator binaries
//! `snapshot_system` and `snapshot_mimalloc` (the allocator is a compile-time choice, so one
//! binary each). Criterion's `snapshot_cost` measures the same with the system allocator; this
//! loop also separates the cost of taking a snapshot from the reclamation its drop causes.
//!
//! ```sh
//! cargo run --release -p benches --bin snapshot_system -- [keys, default 1000000] [writes/s]
//! cargo run --release -p benches --bin snapshot_mimalloc -- [keys] [writes/s]
//! ```
//!
//! The writer runs flat out unless a rate is given. Flat out, the result depends on the writer's
//! speed as much as on the snapshot: every write right after a snapshot copies its whole path,
//! and reclaiming those copies is part of dropping the snapshot, so a faster writer makes
//! snapshots look slower. A fixed rate makes runs comparable:
//!
//! ```sh
//! cargo run --release -p benches --bin snapshot_system -- 1000000 100000
//! ```

use std::time::{Duration, Instant};

use crate::maps::{fill, Ctrie, Map, Std};
use crate::whole::{with_writer_at, WRITES};
use crate::workload::random_keys;

/// Fills a trie with `n` random keys, starts a writer overwriting them (64 per pin), and
/// prints the mean time per `read_only_snapshot()` over rounds of 200,000: snapshots dropped at
/// once (their garbage is reclaimed inside later calls, as in criterion's benchmark) and kept
/// until the round ends (no reclamation inside the timing). Returns the medians of both.
pub fn run(label: &str, n: usize, rate: Option<u64>) -> (f64, f64) {
    let ks = random_keys(n, 2);
    let m = Ctrie::<Std>::new();
    fill(&m, &ks);
    let (dropped, kept) = with_writer_at(&m, &ks, rate, || {
        std::thread::sleep(Duration::from_millis(200));
        let round = |keep: bool| {
            let iters = 200_000;
            let mut held = Vec::with_capacity(if keep { iters } else { 0 });
            let w0 = WRITES.load(std::sync::atomic::Ordering::Relaxed);
            let t = Instant::now();
            for _ in 0..iters {
                let snap = m.0.read_only_snapshot();
                if keep {
                    held.push(snap);
                }
            }
            let ns = t.elapsed().as_nanos() as f64 / iters as f64;
            let writes = WRITES.load(std::sync::atomic::Ordering::Relaxed) - w0;
            drop(held);
            eprintln!(
                "  {}: {ns:.0} ns per snapshot, {:.2} writes per snapshot",
                if keep { "kept" } else { "dropped" },
                writes as f64 / iters as f64
            );
            ns
        };
        let mut dropped: Vec<f64> = (0..5).map(|_| round(false)).collect();
        let mut kept: Vec<f64> = (0..5).map(|_| round(true)).collect();
        dropped.sort_by(f64::total_cmp);
        kept.sort_by(f64::total_cmp);
        (dropped[2], kept[2])
    });
    let writer = rate.map_or("flat out".to_string(), |r| format!("at {r} writes/s"));
    println!(
        "{label}: {n} keys, 1 writer {writer}: {dropped:.0} ns per read_only_snapshot() dropped \
         at once, {kept:.0} ns kept (median of 5 rounds of 200,000)"
    );
    (dropped, kept)
}

/// The key count from the first argument, or 1,000,000.
pub fn keys_arg() -> usize {
    std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// The writer's rate in writes per second from the second argument (none: flat out).
pub fn rate_arg() -> Option<u64> {
    std::env::args().nth(2).and_then(|s| s.parse().ok())
}
