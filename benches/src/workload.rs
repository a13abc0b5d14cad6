//! Key generation, sizes, and the bustle-style operation mixes.

use std::sync::Barrier;
use std::time::{Duration, Instant};

use crate::maps::Map;

/// The number of keys of the map benchmarks: `BENCH_KEYS` or 1,000,000.
pub fn keys() -> usize {
    std::env::var("BENCH_KEYS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000)
}

/// `n` distinct pseudo-random keys (a xorshift sequence: distinct, in random order).
pub fn random_keys(n: usize, seed: u64) -> Vec<u64> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        })
        .collect()
}

/// A mix of operations, in percent (they add up to 100), after bustle's workloads.
#[derive(Clone, Copy, Debug)]
pub struct Mix {
    /// The benchmark group name.
    pub name: &'static str,
    /// Lookups of keys of the prefilled half (hits unless removed).
    pub read: u64,
    /// Inserts of keys of the other half of the key space (so the map grows).
    pub insert: u64,
    /// Removals of keys from anywhere in the key space.
    pub remove: u64,
    /// Inserts over keys of the prefilled half (value replacements).
    pub update: u64,
}

/// bustle's read-heavy mix: 98% get, 1% insert, 1% remove.
pub const READ_HEAVY: Mix = Mix {
    name: "mix_read_heavy",
    read: 98,
    insert: 1,
    remove: 1,
    update: 0,
};
/// bustle's exchange mix: 10% get, 40% insert, 40% remove, 10% update.
pub const EXCHANGE: Mix = Mix {
    name: "mix_exchange",
    read: 10,
    insert: 40,
    remove: 40,
    update: 10,
};
/// bustle's rapid-grow mix: 5% get, 80% insert, 5% remove, 10% update.
pub const RAPID_GROW: Mix = Mix {
    name: "mix_rapid_grow",
    read: 5,
    insert: 80,
    remove: 5,
    update: 10,
};
/// The original mix of this suite: 90% get, 5% insert, 5% remove.
pub const MIX_90_5_5: Mix = Mix {
    name: "mix_90_5_5",
    read: 90,
    insert: 5,
    remove: 5,
    update: 0,
};
/// Writes only (half inserts, half updates): the write cost with concurrent writers.
pub const WRITES: Mix = Mix {
    name: "write_cost",
    read: 0,
    insert: 50,
    remove: 0,
    update: 50,
};

/// The key space of a mix: `prefill` is put in the map first, `grow` is where inserts go.
pub struct KeySpace {
    /// Present before the run (reads and updates pick from these).
    pub prefill: Vec<u64>,
    /// Absent before the run (inserts pick from these).
    pub grow: Vec<u64>,
}

impl KeySpace {
    /// `n` prefilled keys and `n` more to grow into.
    pub fn new(n: usize, seed: u64) -> Self {
        let mut all = random_keys(2 * n.max(1), seed);
        let grow = all.split_off(n.max(1));
        KeySpace { prefill: all, grow }
    }
}

/// Runs `mix` on `threads` threads at once, `ops` operations each (pins batched by 64), and
/// returns the time of the slowest thread. The map only grows up to the whole key space, so
/// repeated runs stay comparable.
pub fn run_mix<M: Map>(
    m: &M,
    mix: &Mix,
    threads: usize,
    ops: usize,
    keys: &KeySpace,
    seed: u64,
) -> Duration {
    let barrier = Barrier::new(threads);
    let (r, i, d) = (
        mix.read,
        mix.read + mix.insert,
        mix.read + mix.insert + mix.remove,
    );
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads as u64)
            .map(|t| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut x = (seed * 64 + t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                    let (pre, grow) = (&keys.prefill, &keys.grow);
                    let space = (pre.len() + grow.len()) as u64;
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..ops.div_ceil(64) {
                        m.batch(|m| {
                            for _ in 0..64 {
                                x ^= x << 13;
                                x ^= x >> 7;
                                x ^= x << 17;
                                let op = x % 100;
                                let y = x >> 8;
                                if op < r {
                                    std::hint::black_box(
                                        m.get(pre[(y % pre.len() as u64) as usize]),
                                    );
                                } else if op < i {
                                    m.insert(grow[(y % grow.len() as u64) as usize], x);
                                } else if op < d {
                                    let j = (y % space) as usize;
                                    let k = if j < pre.len() {
                                        pre[j]
                                    } else {
                                        grow[j - pre.len()]
                                    };
                                    m.remove(k);
                                } else {
                                    m.insert(pre[(y % pre.len() as u64) as usize], x);
                                }
                            }
                        });
                    }
                    start.elapsed()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
    })
}
