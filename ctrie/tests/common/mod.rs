//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// `full` normally, `miri` under Miri (which is ~1000x slower).
pub const fn size(full: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        full
    }
}

/// A hasher that gives every key the same hash: every second key collides fully, so the trie
/// builds chains of single-slot C-nodes down to an L-node.
#[derive(Clone, Copy, Default, Debug)]
pub struct ConstHash;

pub struct ConstHasher;

impl Hasher for ConstHasher {
    fn finish(&self) -> u64 {
        0xDEAD_BEEF
    }
    fn write(&mut self, _: &[u8]) {}
}

impl BuildHasher for ConstHash {
    type Hasher = ConstHasher;
    fn build_hasher(&self) -> ConstHasher {
        ConstHasher
    }
}

/// A hasher that keeps only `bits` low bits of a good hash: keys collide on their full hash
/// often (L-nodes) while still spreading over the top levels.
#[derive(Clone, Copy, Debug)]
pub struct FewBits(pub u32);

pub struct FewBitsHasher(std::collections::hash_map::DefaultHasher, u32);

impl Hasher for FewBitsHasher {
    fn finish(&self) -> u64 {
        self.0.finish() & u64::MAX.checked_shr(64 - self.1).unwrap_or(0)
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
}

impl BuildHasher for FewBits {
    type Hasher = FewBitsHasher;
    fn build_hasher(&self) -> FewBitsHasher {
        FewBitsHasher(Default::default(), self.0)
    }
}

/// A hasher whose hashes agree on their low 60 bits, so keys differ only at the last level.
#[derive(Clone, Copy, Default, Debug)]
pub struct High4;

pub struct High4Hasher(std::collections::hash_map::DefaultHasher);

impl Hasher for High4Hasher {
    fn finish(&self) -> u64 {
        (self.0.finish() & 0xF000_0000_0000_0000) | 0x0123_4567_89AB_CDEF
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
}

impl BuildHasher for High4 {
    type Hasher = High4Hasher;
    fn build_hasher(&self) -> High4Hasher {
        High4Hasher(Default::default())
    }
}

/// A small deterministic PRNG (xorshift64*).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Runs enough epoch collections that every deferred destruction queued so far that can run has
/// run. Each level of a released subtree waits for its own grace period (about two epoch
/// advances), and a constant-hash trie is 14 levels deep, so release builds run 300. Debug builds
/// stop early, once the debug oracle counts no deferred function of ctrie's left (under Miri each
/// collection is expensive). While snapshots are alive some deferred functions wait for them, so
/// this never waits for zero: use [`flush_until`] at the end of a test.
pub fn flush() {
    for _i in 0..300 {
        ctrie::pin().flush();
        #[cfg(debug_assertions)]
        if _i >= 2 && ctrie::__deferred() == 0 {
            return;
        }
    }
}

/// [`flush`] for the end of a test: runs collections until `done` holds (checked before each),
/// yielding after the first 300, and gives up after 20,000 so that the test's own assert of the
/// same condition reports a leak. Tests running beside this one in the same binary may hold pins
/// (a `CtrieRef` kept across a loop of writes), and no epoch advances past a pinned thread: a
/// clean-clone CI run failed `compute_drops_what_it_does_not_store` with all three values alive
/// after 300 collections. The condition is the test's own because the debug oracle's count of
/// deferred functions is global: other tests' live snapshots keep some of it queued.
pub fn flush_until(mut done: impl FnMut() -> bool) {
    for i in 0..20_000 {
        if done() {
            return;
        }
        if i >= 300 {
            std::thread::yield_now();
        }
        ctrie::pin().flush();
    }
}

/// Tracks the lives of values: each `Tracked` has an id; dropping it twice, or an id that was
/// never created, panics; `alive` tells which are still alive.
#[derive(Default)]
pub struct Tracker {
    state: Mutex<HashMap<usize, bool>>,
    next: AtomicUsize,
}

impl Tracker {
    pub fn new() -> Arc<Self> {
        Arc::new(Tracker::default())
    }
    pub fn make(self: &Arc<Self>, payload: u64) -> Tracked {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.state.lock().unwrap().insert(id, true);
        Tracked {
            id,
            payload,
            tracker: self.clone(),
        }
    }
    pub fn alive(&self) -> usize {
        self.state.lock().unwrap().values().filter(|a| **a).count()
    }
    pub fn created(&self) -> usize {
        self.next.load(Ordering::Relaxed)
    }
    pub fn is_alive(&self, id: usize) -> bool {
        self.state.lock().unwrap()[&id]
    }
}

/// A value whose drop is recorded by its [`Tracker`]; reading a dropped one panics.
pub struct Tracked {
    pub id: usize,
    payload: u64,
    tracker: Arc<Tracker>,
}

impl Tracked {
    /// The payload; panics if the value was already dropped (a use after an early drop).
    pub fn get(&self) -> u64 {
        assert!(
            self.tracker.is_alive(self.id),
            "value {} read after being dropped",
            self.id
        );
        self.payload
    }
}

impl PartialEq for Tracked {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tracked({}, {})", self.id, self.payload)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        let mut st = self.tracker.state.lock().unwrap();
        let alive = st.get_mut(&self.id).expect("unknown id");
        assert!(*alive, "value {} dropped twice", self.id);
        *alive = false;
    }
}

/// A key with a custom `Hash`/`Eq` (the Scala test: hash mod 4, equality mod 8).
#[derive(Clone, Copy, Debug)]
pub struct Mod8(pub u64);

impl PartialEq for Mod8 {
    fn eq(&self, o: &Self) -> bool {
        self.0 % 8 == o.0 % 8
    }
}
impl Eq for Mod8 {}
impl Hash for Mod8 {
    fn hash<H: Hasher>(&self, h: &mut H) {
        (self.0 % 4).hash(h)
    }
}

/// Collects a snapshot's (or iterator's) entries into a map, asserting no key is yielded twice.
pub fn collect<'a, K, V, I>(it: I) -> HashMap<K, V>
where
    K: Hash + Eq + Clone + std::fmt::Debug + 'a,
    V: Clone + 'a,
    I: IntoIterator<Item = (&'a K, &'a V)>,
{
    let mut out = HashMap::new();
    for (k, v) in it {
        assert!(
            out.insert(k.clone(), v.clone()).is_none(),
            "key {k:?} yielded twice"
        );
    }
    out
}

/// Serialises the tests of one binary that count drops: a test running alongside in the same
/// process and holding an epoch pin would keep the epoch from advancing, so garbage would stay
/// queued past the final count.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Joins scoped threads explicitly. Unlike the implicit join at the end of `thread::scope`, an
/// explicit join waits for the threads' thread-local destructors, which is when crossbeam-epoch
/// hands an exiting thread's queued garbage to the global queue; drop counts taken after an
/// implicit join can miss that garbage.
pub fn join_all<'s, T>(threads: impl IntoIterator<Item = std::thread::ScopedJoinHandle<'s, T>>) {
    for t in threads {
        t.join().unwrap();
    }
}

/// `threads` threads call `get_or_insert_with(k, || t * 1_000_000 + k)` (`t` the thread's
/// number) for every key `k` in `0..n`, each through one pinned handle; with `lockstep` they
/// wait for each other (a barrier) before every key, so that they race on the same fresh key.
/// Returns the trie and, per thread, the value it got for each key (indexed by key).
pub fn race_get_or_insert_with(
    n: u64,
    threads: u64,
    lockstep: bool,
) -> (ctrie::Ctrie<u64, u64>, Vec<Vec<u64>>) {
    let m: ctrie::Ctrie<u64, u64> = ctrie::Ctrie::new();
    let start = std::sync::Barrier::new(threads as usize);
    let seen = std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let (m, start) = (&m, &start);
                s.spawn(move || {
                    let r = m.pin();
                    (0..n)
                        .map(|k| {
                            if lockstep {
                                start.wait();
                            }
                            *r.get_or_insert_with(k, || t * 1_000_000 + k)
                        })
                        .collect()
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    (m, seen)
}
