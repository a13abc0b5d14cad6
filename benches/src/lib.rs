//! Shared workload code for the benchmarks in `benches/`: a common interface over ctrie and
//! the peer maps, key generation, and sizes.
//!
//! Every map gets `u64` keys and values and the standard library's `RandomState`.

use std::collections::hash_map::RandomState;

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

/// The operations every benchmarked map offers, each pinning (or locking) as its API requires.
/// Implementations batch pins where the map's API allows, as a user would.
pub trait Map: Send + Sync + 'static {
    /// The name used in reports.
    const NAME: &'static str;
    /// An empty map.
    fn new() -> Self;
    /// Runs `f` with a handle on which a batch of operations is performed.
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R;
}

/// Single operations, through a handle from [`Map::batch`].
pub trait Ops {
    /// Inserts or replaces.
    fn insert(&self, k: u64, v: u64);
    /// Whether `k` is present (reading its value).
    fn get(&self, k: u64) -> Option<u64>;
    /// Removes `k`.
    fn remove(&self, k: u64);
}

/// ctrie, through a pinned handle.
pub struct Ctrie(pub ctrie::Ctrie<u64, u64, RandomState>);

impl Ops for ctrie::CtrieRef<'_, u64, u64, RandomState> {
    fn insert(&self, k: u64, v: u64) {
        ctrie::CtrieRef::insert(self, k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        ctrie::CtrieRef::get(self, &k).copied()
    }
    fn remove(&self, k: u64) {
        ctrie::CtrieRef::remove(self, &k);
    }
}

impl Map for Ctrie {
    const NAME: &'static str = "ctrie";
    fn new() -> Self {
        Ctrie(ctrie::Ctrie::new())
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0.pin())
    }
}

/// papaya, through a pinned handle.
pub struct Papaya(pub papaya::HashMap<u64, u64, RandomState>);

impl<G: papaya::Guard> Ops for papaya::HashMapRef<'_, u64, u64, RandomState, G> {
    fn insert(&self, k: u64, v: u64) {
        papaya::HashMapRef::insert(self, k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        papaya::HashMapRef::get(self, &k).copied()
    }
    fn remove(&self, k: u64) {
        papaya::HashMapRef::remove(self, &k);
    }
}

impl Map for Papaya {
    const NAME: &'static str = "papaya";
    fn new() -> Self {
        Papaya(papaya::HashMap::new())
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0.pin())
    }
}

/// dashmap (sharded `RwLock`s).
pub struct DashMap(pub dashmap::DashMap<u64, u64, RandomState>);

impl Ops for dashmap::DashMap<u64, u64, RandomState> {
    fn insert(&self, k: u64, v: u64) {
        dashmap::DashMap::insert(self, k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        dashmap::DashMap::get(self, &k).map(|r| *r)
    }
    fn remove(&self, k: u64) {
        dashmap::DashMap::remove(self, &k);
    }
}

impl Map for DashMap {
    const NAME: &'static str = "dashmap";
    fn new() -> Self {
        DashMap(dashmap::DashMap::with_hasher(RandomState::new()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0)
    }
}

/// scc's `HashMap` (bucket locks).
pub struct Scc(pub scc::HashMap<u64, u64, RandomState>);

impl Ops for scc::HashMap<u64, u64, RandomState> {
    fn insert(&self, k: u64, v: u64) {
        self.upsert(k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.read(&k, |_, v| *v)
    }
    fn remove(&self, k: u64) {
        scc::HashMap::remove(self, &k);
    }
}

impl Map for Scc {
    const NAME: &'static str = "scc";
    fn new() -> Self {
        Scc(scc::HashMap::with_hasher(RandomState::new()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0)
    }
}

/// contrie's `ConMap` (the other Rust hash trie; no snapshots).
pub struct Contrie(pub contrie::ConMap<u64, u64, RandomState>);

impl Ops for contrie::ConMap<u64, u64, RandomState> {
    fn insert(&self, k: u64, v: u64) {
        contrie::ConMap::insert(self, k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        contrie::ConMap::get(self, &k).map(|e| *e.value())
    }
    fn remove(&self, k: u64) {
        contrie::ConMap::remove(self, &k);
    }
}

impl Map for Contrie {
    const NAME: &'static str = "contrie";
    fn new() -> Self {
        Contrie(contrie::ConMap::with_hasher(RandomState::new()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0)
    }
}

/// Fills `map` with `keys` (value = key), in batches of 64 operations per pin.
pub fn fill<M: Map>(map: &M, keys: &[u64]) {
    for chunk in keys.chunks(64) {
        map.batch(|m| chunk.iter().for_each(|&k| m.insert(k, k)));
    }
}
