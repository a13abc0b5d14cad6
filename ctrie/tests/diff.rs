//! `Snapshot::diff` and snapshot equality: quickcheck against `HashMap` models (the full diff
//! output compared, not a count: imbl's diff once dropped one update in eight), hashers that
//! force collisions (L-nodes), deep single-slot chains and keys that differ only on a C-node
//! boundary; snapshots taken far apart, across writable snapshots, of unrelated tries; and
//! snapshots taken while writer threads run.

mod common;

use common::{collect, ConstHash, High4, Rng};
use ctrie::{Ctrie, DiffItem, Snapshot};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// A difference as plain data: (key, old value, new value).
type Change<K> = (K, Option<u32>, Option<u32>);

fn changes<K: Hash + Eq + Ord + Clone, S: BuildHasher>(
    a: &Snapshot<K, u32, S>,
    b: &Snapshot<K, u32, S>,
) -> Vec<Change<K>> {
    let mut out: Vec<Change<K>> = a
        .diff(b)
        .map(|d| match d {
            DiffItem::Added(k, v) => (k.clone(), None, Some(*v)),
            DiffItem::Removed(k, v) => (k.clone(), Some(*v), None),
            DiffItem::Updated { key, old, new } => (key.clone(), Some(*old), Some(*new)),
        })
        .collect();
    out.sort();
    out
}

/// The expected diff of two models whose values are unique per write (so a key was written in
/// between exactly when its values differ).
fn model_changes<K: Hash + Eq + Ord + Clone>(
    a: &HashMap<K, u32>,
    b: &HashMap<K, u32>,
) -> Vec<Change<K>> {
    let mut out: Vec<Change<K>> = Vec::new();
    for (k, &v) in a {
        match b.get(k) {
            None => out.push((k.clone(), Some(v), None)),
            Some(&w) if w != v => out.push((k.clone(), Some(v), Some(w))),
            Some(_) => {}
        }
    }
    for (k, &w) in b {
        if !a.contains_key(k) {
            out.push((k.clone(), None, Some(w)));
        }
    }
    out.sort();
    out
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u8),
    Remove(u8),
    /// Several removals in a row (contraction, tombs).
    RemoveRange(u8, u8),
    Clear,
    /// A writable snapshot of the current target becomes the target.
    Fork,
    /// A read-only snapshot of the current target is kept.
    Freeze,
    /// A writable trie made from a kept snapshot becomes the target.
    Thaw(u8),
    Target(u8),
}

const KEYS: u8 = 40;

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let key = |g: &mut Gen| u8::arbitrary(g) % KEYS;
        match u8::arbitrary(g) % 32 {
            0..=13 => Op::Insert(key(g)),
            14..=20 => Op::Remove(key(g)),
            21 => Op::RemoveRange(key(g), u8::arbitrary(g) % 12),
            22 => Op::Clear,
            23..=24 => Op::Fork,
            25..=28 => Op::Freeze,
            29 => Op::Thaw(u8::arbitrary(g)),
            _ => Op::Target(u8::arbitrary(g)),
        }
    }
}

type Model = HashMap<u8, u32>;

/// Runs the operations, then checks the diff (and equality) of every pair of kept snapshots,
/// both ways, against the models.
fn run<S: BuildHasher + Default + 'static>(ops: Vec<Op>) -> bool {
    let mut tries: Vec<(Ctrie<u8, u32, S>, Model)> = vec![(Ctrie::default(), Model::new())];
    let mut frozen: Vec<(Snapshot<u8, u32, S>, Model)> = Vec::new();
    let mut t = 0;
    let mut write = 0u32;
    for op in ops {
        let (trie, model) = &mut tries[t];
        match op {
            Op::Insert(k) => {
                write += 1;
                trie.pin().insert(k, write);
                model.insert(k, write);
            }
            Op::Remove(k) => {
                trie.pin().remove(&k);
                model.remove(&k);
            }
            Op::RemoveRange(k, n) => {
                for k in k..k.saturating_add(n) {
                    trie.pin().remove(&k);
                    model.remove(&k);
                }
            }
            Op::Clear => {
                trie.clear();
                model.clear();
            }
            Op::Fork => {
                let copy = (trie.snapshot(), model.clone());
                tries.push(copy);
                t = tries.len() - 1;
            }
            Op::Freeze => frozen.push((trie.read_only_snapshot(), model.clone())),
            Op::Thaw(i) => {
                if !frozen.is_empty() {
                    let (snap, model) = &frozen[i as usize % frozen.len()];
                    tries.push((snap.snapshot(), model.clone()));
                    t = tries.len() - 1;
                }
            }
            Op::Target(i) => t = i as usize % tries.len(),
        }
    }
    for (trie, model) in &tries {
        frozen.push((trie.read_only_snapshot(), model.clone()));
    }
    for (a, ma) in &frozen {
        assert_eq!(&collect(a), ma, "a snapshot differs from its model");
        for (b, mb) in &frozen {
            assert_eq!(changes(a, b), model_changes(ma, mb));
            assert_eq!(a == b, ma == mb);
        }
    }
    true
}

fn check(f: fn(Vec<Op>) -> bool) {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(miri) { 1 } else { 150 });
    QuickCheck::new()
        .tests(tests)
        .rng(Gen::new(if cfg!(miri) { 15 } else { 150 }))
        .quickcheck(f);
}

#[test]
fn diff_model_random_state() {
    check(run::<std::collections::hash_map::RandomState>);
}

/// Every key has the same hash: one chain of single-slot C-nodes down to an L-node.
#[test]
fn diff_model_constant_hash() {
    check(run::<ConstHash>);
}

/// Eight distinct hashes for 40 keys: L-nodes everywhere, next to S-nodes.
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri runs the random-state, constant-hash, unrelated and concurrent cases; this one is minutes there"
)]
fn diff_model_three_hash_bits() {
    check(run::<ThreeBits>);
}

/// Hashes that agree on their low 60 bits: keys differ only at the last level.
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri runs the random-state, constant-hash, unrelated and concurrent cases; this one is minutes there"
)]
fn diff_model_last_level() {
    check(run::<High4>);
}

/// Hashes that agree on their low 48 bits and then differ in the bits that straddle the C-node
/// boundaries at levels 50 and 55: deep chains, contraction at several levels.
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri runs the random-state, constant-hash, unrelated and concurrent cases; this one is minutes there"
)]
fn diff_model_boundaries() {
    check(run::<Boundary>);
}

#[derive(Default)]
struct ThreeBits;
impl BuildHasher for ThreeBits {
    type Hasher = common::FewBitsHasher;
    fn build_hasher(&self) -> Self::Hasher {
        BuildHasher::build_hasher(&common::FewBits(3))
    }
}

/// The key's byte placed at bits 48..56 (so it spans the slots at levels 45, 50 and 55).
#[derive(Default)]
struct Boundary;
struct BoundaryHasher(u64);
impl Hasher for BoundaryHasher {
    fn finish(&self) -> u64 {
        (self.0 & 0xff) << 48 | 0x5555
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.wrapping_mul(31).wrapping_add(b as u64);
        }
    }
}
impl BuildHasher for Boundary {
    type Hasher = BoundaryHasher;
    fn build_hasher(&self) -> BoundaryHasher {
        BoundaryHasher(0)
    }
}

/// Two large snapshots a few random changes apart, and far apart, against the models.
#[test]
#[cfg_attr(
    miri,
    ignore = "Miri runs the random-state, constant-hash, unrelated and concurrent cases; this one is minutes there"
)]
fn diff_of_large_snapshots_equals_the_model() {
    let n = common::size(20_000, 100) as u32;
    let map: Ctrie<u32, u32> = Ctrie::new();
    let mut model = HashMap::new();
    let mut write = 0;
    let mut rng = Rng::new(7);
    for k in 0..n {
        write += 1;
        map.pin().insert(k, write);
        model.insert(k, write);
    }
    let mut kept = vec![(map.read_only_snapshot(), model.clone())];
    for round in 0..common::size(6, 3) as u32 {
        // 1, 10, 100, ... changes, then a rewrite of everything.
        let changes_now = if round == 5 {
            n as u64
        } else {
            10u64.pow(round).min(n as u64)
        };
        for _ in 0..changes_now {
            let k = rng.below(n as u64 * 11 / 10) as u32;
            if rng.below(3) == 0 {
                map.pin().remove(&k);
                model.remove(&k);
            } else {
                write += 1;
                map.pin().insert(k, write);
                model.insert(k, write);
            }
        }
        kept.push((map.read_only_snapshot(), model.clone()));
    }
    for (a, ma) in &kept {
        for (b, mb) in &kept {
            assert_eq!(changes(a, b), model_changes(ma, mb));
        }
    }
}

/// Snapshots of unrelated tries (different hashers): still the right diff, by full comparison.
#[test]
fn diff_of_unrelated_tries_is_correct() {
    let n = common::size(300, 24) as u32;
    let (lo, mid, hi) = (n / 3, 2 * n / 3, 4 * n / 3);
    let a: Ctrie<u32, u32> = (0..n).map(|i| (i, i)).collect();
    let b: Ctrie<u32, u32> = (lo..hi)
        .map(|i| (i, if i < mid { i } else { i + 1 }))
        .collect();
    let (sa, sb) = (a.read_only_snapshot(), b.read_only_snapshot());
    let ma: HashMap<u32, u32> = collect(&sa);
    let mb: HashMap<u32, u32> = collect(&sb);
    // Equal values in unrelated tries are different entries: "updated", with equal values.
    let mut expected = model_changes(&ma, &mb);
    expected.extend((lo..mid).map(|i| (i, Some(i), Some(i))));
    expected.sort();
    assert_eq!(changes(&sa, &sb), expected);
    assert!(sa != sb);
    let c: Ctrie<u32, u32> = (0..n).map(|i| (i, i)).collect();
    assert!(sa == c.read_only_snapshot());
    assert!(a == c);
}

/// Equality is by value: a key rewritten with an equal value, or a trie rebuilt from scratch,
/// compares equal; the diff still reports the rewrite.
#[test]
fn equality_is_by_value() {
    let map: Ctrie<&str, u32> = [("a", 1), ("b", 2)].into_iter().collect();
    let before = map.read_only_snapshot();
    map.pin().insert("a", 1);
    let after = map.read_only_snapshot();
    assert!(before == after);
    assert_eq!(
        before.diff(&after).collect::<Vec<_>>(),
        [DiffItem::Updated {
            key: &"a",
            old: &1,
            new: &1
        }]
    );
    assert!(before.diff(&before).next().is_none());
}

/// Writers run while snapshots are taken; the diff of every pair of snapshots equals the
/// difference of their full contents (so the walk is right on tries built under contention,
/// with renewals, pending writes rolled back and tombs).
#[test]
fn diff_under_concurrent_writers_equals_full_comparison() {
    let n = common::size(3_000, 16) as u64;
    let rounds = common::size(24, 2);
    let map: Ctrie<u64, u32> = Ctrie::new();
    let write = std::sync::atomic::AtomicU32::new(0);
    let mut snaps = Vec::new();
    std::thread::scope(|s| {
        let writers: Vec<_> = (0..2u64)
            .map(|t| {
                let (map, write) = (&map, &write);
                s.spawn(move || {
                    let mut rng = Rng::new(t + 1);
                    let m = map.pin();
                    for _ in 0..n * 4 {
                        let k = rng.below(n);
                        if rng.below(4) == 0 {
                            m.remove(&k);
                        } else {
                            let v = write.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            m.insert(k, v);
                        }
                    }
                })
            })
            .collect();
        for _ in 0..rounds {
            snaps.push(map.read_only_snapshot());
            std::thread::yield_now();
        }
        common::join_all(writers);
    });
    snaps.push(map.read_only_snapshot());
    let models: Vec<HashMap<u64, u32>> = snaps.iter().map(collect).collect();
    for (a, ma) in snaps.iter().zip(&models) {
        for (b, mb) in snaps.iter().zip(&models) {
            assert_eq!(changes(a, b), model_changes(ma, mb));
        }
    }
}
