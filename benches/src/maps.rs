//! A common interface over ctrie and the peer maps (`u64` keys and values), generic over the
//! hasher where the map takes one.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Mutex, RwLock};

use arc_swap::ArcSwap;

/// A hasher the benchmarks run with, and its label in benchmark IDs and reports.
pub trait Hasher: BuildHasher + Default + Clone + Send + Sync + 'static {
    /// `std` or `foldhash`.
    const LABEL: &'static str;
}

/// The standard library's SipHash-1-3 with random keys (every map's default).
pub type Std = std::collections::hash_map::RandomState;
/// foldhash's fast, randomly seeded hasher.
pub type Fold = foldhash::fast::RandomState;

impl Hasher for Std {
    const LABEL: &'static str = "std";
}

impl Hasher for Fold {
    const LABEL: &'static str = "foldhash";
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
pub struct Ctrie<S = Std>(pub ctrie::Ctrie<u64, u64, S>);

impl<S: Hasher> Ops for ctrie::CtrieRef<'_, u64, u64, S> {
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

impl<S: Hasher> Map for Ctrie<S> {
    const NAME: &'static str = "ctrie";
    fn new() -> Self {
        Ctrie(ctrie::Ctrie::with_hasher(S::default()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0.pin())
    }
}

/// papaya, through a pinned handle.
pub struct Papaya<S = Std>(pub papaya::HashMap<u64, u64, S>);

impl<S: Hasher, G: papaya::Guard> Ops for papaya::HashMapRef<'_, u64, u64, S, G> {
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

impl<S: Hasher> Map for Papaya<S> {
    const NAME: &'static str = "papaya";
    fn new() -> Self {
        Papaya(papaya::HashMap::with_hasher(S::default()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0.pin())
    }
}

/// dashmap (sharded `RwLock`s).
pub struct DashMap<S = Std>(pub dashmap::DashMap<u64, u64, S>);

impl<S: Hasher> Ops for dashmap::DashMap<u64, u64, S> {
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

impl<S: Hasher> Map for DashMap<S> {
    const NAME: &'static str = "dashmap";
    fn new() -> Self {
        DashMap(dashmap::DashMap::with_hasher(S::default()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0)
    }
}

/// scc's `HashMap` (bucket locks).
pub struct Scc<S: BuildHasher = Std>(pub scc::HashMap<u64, u64, S>);

impl<S: Hasher> Ops for scc::HashMap<u64, u64, S> {
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

impl<S: Hasher> Map for Scc<S> {
    const NAME: &'static str = "scc";
    fn new() -> Self {
        Scc(scc::HashMap::with_hasher(S::default()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0)
    }
}

/// contrie's `ConMap` (the other Rust hash trie; no snapshots).
pub struct Contrie<S = Std>(pub contrie::ConMap<u64, u64, S>);

impl<S: Hasher> Ops for contrie::ConMap<u64, u64, S> {
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

impl<S: Hasher> Map for Contrie<S> {
    const NAME: &'static str = "contrie";
    fn new() -> Self {
        Contrie(contrie::ConMap::with_hasher(S::default()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0)
    }
}

/// flurry (a port of Java's `ConcurrentHashMap`), through a pinned handle.
pub struct Flurry<S = Std>(pub flurry::HashMap<u64, u64, S>);

impl<S: Hasher> Ops for flurry::HashMapRef<'_, u64, u64, S> {
    fn insert(&self, k: u64, v: u64) {
        flurry::HashMapRef::insert(self, k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        flurry::HashMapRef::get(self, &k).copied()
    }
    fn remove(&self, k: u64) {
        flurry::HashMapRef::remove(self, &k);
    }
}

impl<S: Hasher> Map for Flurry<S> {
    const NAME: &'static str = "flurry";
    fn new() -> Self {
        Flurry(flurry::HashMap::with_hasher(S::default()))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0.pin())
    }
}

/// The standard `HashMap` behind one `RwLock` (locked per operation).
pub struct RwLockMap<S = Std>(pub RwLock<HashMap<u64, u64, S>>);

impl<S: Hasher> Ops for RwLock<HashMap<u64, u64, S>> {
    fn insert(&self, k: u64, v: u64) {
        self.write().unwrap().insert(k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.read().unwrap().get(&k).copied()
    }
    fn remove(&self, k: u64) {
        self.write().unwrap().remove(&k);
    }
}

impl<S: Hasher> Map for RwLockMap<S> {
    const NAME: &'static str = "rwlock_std";
    fn new() -> Self {
        RwLockMap(RwLock::new(HashMap::with_hasher(S::default())))
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&self.0)
    }
}

/// The persistent map of imbl.
pub type ImblMap<S> = imbl::GenericHashMap<u64, u64, S, imbl::shared_ptr::DefaultSharedPtr>;

/// A persistent `imbl` hash map published through an `ArcSwap`: readers load the current
/// version lock-free (one `load` per batch), writers are serialised by a `Mutex` and each
/// publishes a new version (clone in O(1), update, store). Snapshots are O(1) `load_full`s.
pub struct ArcSwapImbl<S: Hasher = Std> {
    /// The current version.
    pub current: ArcSwap<ImblMap<S>>,
    /// Serialises writers, so no update is lost.
    pub writers: Mutex<()>,
}

impl<S: Hasher> ArcSwapImbl<S> {
    /// Applies `f` to a copy of the current version and publishes the result.
    pub fn write(&self, f: impl FnOnce(&mut ImblMap<S>)) {
        let _w = self.writers.lock().unwrap();
        let mut next = ImblMap::clone(&self.current.load());
        f(&mut next);
        self.current.store(std::sync::Arc::new(next));
    }
}

/// A read handle on one version plus the writer side, for [`Map::batch`].
struct ImblOps<'a, S: Hasher> {
    map: &'a ArcSwapImbl<S>,
}

impl<S: Hasher> Ops for ImblOps<'_, S> {
    fn insert(&self, k: u64, v: u64) {
        self.map.write(|m| {
            m.insert(k, v);
        });
    }
    fn get(&self, k: u64) -> Option<u64> {
        self.map.current.load().get(&k).copied()
    }
    fn remove(&self, k: u64) {
        self.map.write(|m| {
            m.remove(&k);
        });
    }
}

impl<S: Hasher> Map for ArcSwapImbl<S> {
    const NAME: &'static str = "arcswap_imbl";
    fn new() -> Self {
        ArcSwapImbl {
            current: ArcSwap::from_pointee(ImblMap::with_hasher(S::default())),
            writers: Mutex::new(()),
        }
    }
    fn batch<R>(&self, f: impl FnOnce(&dyn Ops) -> R) -> R {
        f(&ImblOps { map: self })
    }
}

/// crossbeam's lock-free ordered `SkipMap` (no hasher).
pub struct SkipMap(pub crossbeam_skiplist::SkipMap<u64, u64>);

impl Ops for crossbeam_skiplist::SkipMap<u64, u64> {
    fn insert(&self, k: u64, v: u64) {
        crossbeam_skiplist::SkipMap::insert(self, k, v);
    }
    fn get(&self, k: u64) -> Option<u64> {
        crossbeam_skiplist::SkipMap::get(self, &k).map(|e| *e.value())
    }
    fn remove(&self, k: u64) {
        crossbeam_skiplist::SkipMap::remove(self, &k);
    }
}

impl Map for SkipMap {
    const NAME: &'static str = "skiplist";
    fn new() -> Self {
        SkipMap(crossbeam_skiplist::SkipMap::new())
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

/// Calls `$f::<Map, $h>($args)` for every map, with hasher `$h` (the skip list, which does
/// not hash, only with [`Std`]).
#[macro_export]
macro_rules! for_each_map {
    ($h:ty, $f:ident ( $($arg:expr),* )) => {{
        use $crate::maps::*;
        $f::<Ctrie<$h>, $h>($($arg),*);
        $f::<Papaya<$h>, $h>($($arg),*);
        $f::<DashMap<$h>, $h>($($arg),*);
        $f::<Scc<$h>, $h>($($arg),*);
        $f::<Contrie<$h>, $h>($($arg),*);
        $f::<Flurry<$h>, $h>($($arg),*);
        $f::<RwLockMap<$h>, $h>($($arg),*);
        $f::<ArcSwapImbl<$h>, $h>($($arg),*);
        if <$h as Hasher>::LABEL == Std::LABEL {
            $f::<SkipMap, $h>($($arg),*);
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    fn semantics<M: Map, H: Hasher>() {
        let m = M::new();
        fill(&m, &[1, 2, 3]);
        m.batch(|o| {
            assert_eq!(o.get(2), Some(2), "{}/{}", M::NAME, H::LABEL);
            o.insert(2, 20);
            assert_eq!(o.get(2), Some(20), "{}/{}", M::NAME, H::LABEL);
            o.remove(2);
            assert_eq!(o.get(2), None, "{}/{}", M::NAME, H::LABEL);
            assert_eq!(o.get(4), None, "{}/{}", M::NAME, H::LABEL);
        });
    }

    /// Every adapter inserts, replaces, reads and removes.
    #[test]
    fn adapters_behave_as_maps() {
        crate::for_each_map!(Std, semantics());
        crate::for_each_map!(Fold, semantics());
    }
}
