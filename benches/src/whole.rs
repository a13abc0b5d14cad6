//! Whole-map operations, each peer's best: a point-in-time copy ("snapshot"), a full
//! iteration, and `len()`. For ctrie and `ArcSwap<imbl>` a snapshot is O(1); every other peer
//! has to copy its entries (O(n)), which is what a user needing a consistent view would do.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::maps::{
    ArcSwapImbl, Contrie, Ctrie, DashMap, Flurry, Hasher, Map, Papaya, RwLockMap, Scc, SkipMap,
};

/// A map's whole-map operations.
pub trait Whole: Map {
    /// How the snapshot is taken, for the report (e.g. `O(1) read_only_snapshot`).
    const SNAPSHOT: &'static str;
    /// The snapshot, as an opaque value (dropped by the caller, outside or inside the timing as
    /// the benchmark says).
    fn snapshot(&self) -> Box<dyn Send>;
    /// Sums the values of a full iteration (over a snapshot where the map has them).
    fn iterate(&self) -> u64;
    /// The number of entries, if the map can tell it.
    fn exact_len(&self) -> Option<usize>;
}

/// A copy of entries into a vector (what a copying snapshot is).
type Copy = Vec<(u64, u64)>;

impl<S: Hasher> Whole for Ctrie<S> {
    const SNAPSHOT: &'static str = "O(1) read_only_snapshot()";
    fn snapshot(&self) -> Box<dyn Send> {
        Box::new(self.0.read_only_snapshot())
    }
    fn iterate(&self) -> u64 {
        let s = self.0.read_only_snapshot();
        s.iter().map(|(_, v)| *v).fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<S: Hasher> Whole for Papaya<S> {
    const SNAPSHOT: &'static str = "O(n) collect into a Vec";
    fn snapshot(&self) -> Box<dyn Send> {
        Box::new(self.0.pin().iter().map(|(k, v)| (*k, *v)).collect::<Copy>())
    }
    fn iterate(&self) -> u64 {
        self.0
            .pin()
            .iter()
            .map(|(_, v)| *v)
            .fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<S: Hasher> Whole for DashMap<S> {
    const SNAPSHOT: &'static str = "O(n) collect into a HashMap";
    fn snapshot(&self) -> Box<dyn Send> {
        let mut h = HashMap::with_capacity_and_hasher(self.0.len(), S::default());
        h.extend(self.0.iter().map(|e| (*e.key(), *e.value())));
        Box::new(h)
    }
    fn iterate(&self) -> u64 {
        self.0.iter().map(|e| *e.value()).fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<S: Hasher> Whole for Scc<S> {
    const SNAPSHOT: &'static str = "O(n) scan into a Vec";
    fn snapshot(&self) -> Box<dyn Send> {
        let mut v = Copy::with_capacity(self.0.len());
        self.0.scan(|k, x| v.push((*k, *x)));
        Box::new(v)
    }
    fn iterate(&self) -> u64 {
        let mut sum = 0u64;
        self.0.scan(|_, v| sum = sum.wrapping_add(*v));
        sum
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<S: Hasher> Whole for Contrie<S> {
    const SNAPSHOT: &'static str = "O(n) collect into a Vec";
    fn snapshot(&self) -> Box<dyn Send> {
        Box::new(
            self.0
                .iter()
                .map(|e| (*e.key(), *e.value()))
                .collect::<Copy>(),
        )
    }
    fn iterate(&self) -> u64 {
        self.0.iter().map(|e| *e.value()).fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        None
    }
}

impl<S: Hasher> Whole for Flurry<S> {
    const SNAPSHOT: &'static str = "O(n) collect into a Vec";
    fn snapshot(&self) -> Box<dyn Send> {
        Box::new(self.0.pin().iter().map(|(k, v)| (*k, *v)).collect::<Copy>())
    }
    fn iterate(&self) -> u64 {
        self.0
            .pin()
            .iter()
            .map(|(_, v)| *v)
            .fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

impl<S: Hasher> Whole for RwLockMap<S> {
    const SNAPSHOT: &'static str = "O(n) clone under the read lock";
    fn snapshot(&self) -> Box<dyn Send> {
        Box::new(self.0.read().unwrap().clone())
    }
    fn iterate(&self) -> u64 {
        let m = self.0.read().unwrap();
        m.values().copied().fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.0.read().unwrap().len())
    }
}

impl<S: Hasher> Whole for ArcSwapImbl<S> {
    const SNAPSHOT: &'static str = "O(1) load_full() of the persistent map";
    fn snapshot(&self) -> Box<dyn Send> {
        Box::new(self.current.load_full())
    }
    fn iterate(&self) -> u64 {
        let m = self.current.load_full();
        m.values().copied().fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.current.load().len())
    }
}

impl Whole for SkipMap {
    const SNAPSHOT: &'static str = "O(n) collect into a Vec";
    fn snapshot(&self) -> Box<dyn Send> {
        Box::new(
            self.0
                .iter()
                .map(|e| (*e.key(), *e.value()))
                .collect::<Copy>(),
        )
    }
    fn iterate(&self) -> u64 {
        self.0.iter().map(|e| *e.value()).fold(0, u64::wrapping_add)
    }
    fn exact_len(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

/// Writes done by [`with_writer`]'s writers so far (counted per batch of 64), so that a
/// measurement can report how much writing it competed with.
pub static WRITES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Runs `f` while one thread overwrites values of `ks` in `m`, 64 per pin, as fast as it can.
pub fn with_writer<M: Map, R>(m: &M, ks: &[u64], f: impl FnOnce() -> R) -> R {
    with_writer_at(m, ks, None, f)
}

/// Runs `f` while one thread overwrites values of `ks` in `m`, 64 per pin, at most
/// `rate` writes per second (`None`: as fast as it can). A paced writer sleeps between
/// batches, so measurements of other operations are not confounded by how fast the writer
/// happens to be (a faster writer leaves more garbage per snapshot, for instance).
pub fn with_writer_at<M: Map, R>(m: &M, ks: &[u64], rate: Option<u64>, f: impl FnOnce() -> R) -> R {
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut x = 1u64;
            let start = std::time::Instant::now();
            let mut done = 0u64;
            while !stop.load(Ordering::Relaxed) {
                m.batch(|m| {
                    for _ in 0..64 {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        m.insert(ks[(x % ks.len() as u64) as usize], x);
                    }
                });
                done += 64;
                // Relaxed: a statistic, read after the measurement.
                WRITES.fetch_add(64, Ordering::Relaxed);
                if let Some(rate) = rate {
                    let due = std::time::Duration::from_secs_f64(done as f64 / rate as f64);
                    if let Some(wait) = due.checked_sub(start.elapsed()) {
                        std::thread::sleep(wait);
                    }
                }
            }
        });
        let r = f();
        stop.store(true, Ordering::Relaxed);
        r
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::maps::{fill, Std};

    fn check<M: Whole>() {
        let m = M::new();
        fill(&m, &[1, 2, 3, 40]);
        assert_eq!(m.iterate(), 46, "{}", M::NAME);
        if let Some(n) = m.exact_len() {
            assert_eq!(n, 4, "{}", M::NAME);
        }
        drop(m.snapshot());
    }

    #[test]
    fn whole_map_operations_see_every_entry() {
        check::<Ctrie<Std>>();
        check::<Papaya<Std>>();
        check::<DashMap<Std>>();
        check::<Scc<Std>>();
        check::<Contrie<Std>>();
        check::<Flurry<Std>>();
        check::<RwLockMap<Std>>();
        check::<ArcSwapImbl<Std>>();
        check::<SkipMap>();
    }
}
