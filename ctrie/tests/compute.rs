//! `compute`, `update`, `update_or_insert_with` and `retain`: quickcheck against a `HashMap`
//! model (each result compared, then the contents), and under real threads: counters updated
//! by racing `compute`s lose no increment, and `retain` racing writers never removes an entry
//! written after it decided.

mod common;

use common::{collect, ConstHash, FewBits};
use ctrie::{Compute, Ctrie, Operation};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::collections::HashMap;
use std::hash::BuildHasher;

#[derive(Clone, Debug)]
enum Op {
    /// `compute`: insert `v` if absent; if present with a value below 3, add 1; if present with
    /// 3, remove; abort with the value otherwise.
    Compute(u8, u8),
    /// `compute` that removes whatever is there.
    ComputeRemove(u8),
    Update(u8),
    UpdateOrInsert(u8, u8),
    Insert(u8, u8),
    Remove(u8),
    /// `retain` keeping entries whose key plus value is odd.
    RetainOdd,
    Snapshot,
}

const KEYS: u8 = 24;

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let key = |g: &mut Gen| u8::arbitrary(g) % KEYS;
        let val = |g: &mut Gen| u8::arbitrary(g) % 6;
        match u8::arbitrary(g) % 20 {
            0..=5 => Op::Compute(key(g), val(g)),
            6 => Op::ComputeRemove(key(g)),
            7..=8 => Op::Update(key(g)),
            9..=10 => Op::UpdateOrInsert(key(g), val(g)),
            11..=14 => Op::Insert(key(g), val(g)),
            15..=16 => Op::Remove(key(g)),
            17 => Op::RetainOdd,
            _ => Op::Snapshot,
        }
    }
}

fn run<S: BuildHasher + Default + 'static>(ops: Vec<Op>) -> bool {
    let mut map: Ctrie<u8, u8, S> = Ctrie::default();
    let mut model: HashMap<u8, u8> = HashMap::new();
    let mut kept = Vec::new();
    for op in ops {
        let m = map.pin();
        match op {
            Op::Compute(k, v) => {
                let got = m.compute(k, |e| match e {
                    None => Operation::Insert(v),
                    Some((_, &c)) if c < 3 => Operation::Insert(c + 1),
                    Some((_, &3)) => Operation::Remove,
                    Some((_, &c)) => Operation::Abort(c),
                });
                let got = match got {
                    Compute::Inserted(&gk, &gv) => ("inserted", gk, None, Some(gv)),
                    Compute::Updated { old, new } => {
                        assert_eq!(old.0, new.0);
                        ("updated", *new.0, Some(*old.1), Some(*new.1))
                    }
                    Compute::Removed(&gk, &gv) => ("removed", gk, Some(gv), None),
                    Compute::Absent => ("absent", k, None, None),
                    Compute::Aborted(c) => ("aborted", k, Some(c), None),
                };
                let expect = match model.get(&k).copied() {
                    None => {
                        model.insert(k, v);
                        ("inserted", k, None, Some(v))
                    }
                    Some(c) if c < 3 => {
                        model.insert(k, c + 1);
                        ("updated", k, Some(c), Some(c + 1))
                    }
                    Some(3) => {
                        model.remove(&k);
                        ("removed", k, Some(3), None)
                    }
                    Some(c) => ("aborted", k, Some(c), None),
                };
                assert_eq!(got, expect);
            }
            Op::ComputeRemove(k) => {
                let got = m.compute(k, |_| Operation::<u8, ()>::Remove);
                match model.remove(&k) {
                    Some(v) => assert_eq!(got, Compute::Removed(&k, &v)),
                    None => assert_eq!(got, Compute::Absent),
                }
            }
            Op::Update(k) => {
                let expect = model.get_mut(&k).map(|v| {
                    *v = v.wrapping_mul(3);
                    *v
                });
                assert_eq!(m.update(k, |v| v.wrapping_mul(3)).copied(), expect);
            }
            Op::UpdateOrInsert(k, v) => {
                let e = model
                    .entry(k)
                    .and_modify(|c| *c = c.wrapping_add(1))
                    .or_insert(v);
                assert_eq!(*m.update_or_insert_with(k, |c| c.wrapping_add(1), || v), *e);
            }
            Op::Insert(k, v) => assert_eq!(m.insert(k, v).copied(), model.insert(k, v)),
            Op::Remove(k) => assert_eq!(m.remove(&k).copied(), model.remove(&k)),
            Op::RetainOdd => {
                let mut seen = 0;
                m.retain(|k, v| {
                    seen += 1;
                    (u16::from(*k) + u16::from(*v)) % 2 == 1
                });
                assert_eq!(seen, model.len(), "the predicate runs once per entry");
                model.retain(|k, v| (u16::from(*k) + u16::from(*v)) % 2 == 1);
            }
            Op::Snapshot => {
                drop(m);
                kept.push((map.read_only_snapshot(), model.clone()));
                map = map.snapshot();
                continue;
            }
        }
        assert_eq!(&collect(m.iter()), &model);
    }
    for (snap, model) in &kept {
        assert_eq!(&collect(snap), model, "a snapshot changed");
    }
    true
}

fn check(f: fn(Vec<Op>) -> bool) {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(miri) { 1 } else { 300 });
    QuickCheck::new()
        .tests(tests)
        .rng(Gen::new(if cfg!(miri) { 20 } else { 200 }))
        .quickcheck(f);
}

#[test]
fn compute_model_random_state() {
    check(run::<std::collections::hash_map::RandomState>);
}

#[test]
fn compute_model_constant_hash() {
    check(run::<ConstHash>);
}

#[derive(Default)]
struct ThreeBits;
impl BuildHasher for ThreeBits {
    type Hasher = common::FewBitsHasher;
    fn build_hasher(&self) -> Self::Hasher {
        FewBits(3).build_hasher()
    }
}

#[test]
#[cfg_attr(
    miri,
    ignore = "the random-state and constant-hash models run under Miri"
)]
fn compute_model_three_hash_bits() {
    check(run::<ThreeBits>);
}

/// Threads increment shared counters with `compute`, `update_or_insert_with` and `update`,
/// racing on a few keys (in one C-node, and with a constant hash in one L-node): every
/// increment is applied exactly once. A `compute` that replaced whatever it found instead of
/// the entry it had seen would lose increments here.
fn counters<S: BuildHasher + Default + Send + Sync + 'static>() {
    let threads = 4u64;
    let per = common::size(5_000, 20) as u64;
    let keys = 4u64;
    let map: Ctrie<u64, u64, S> = Ctrie::default();
    std::thread::scope(|s| {
        let hs: Vec<_> = (0..threads)
            .map(|t| {
                let map = &map;
                s.spawn(move || {
                    let m = map.pin();
                    for i in 0..per {
                        let k = (i + t) % keys;
                        match i % 3 {
                            0 => {
                                m.compute(k, |e| {
                                    Operation::<u64, ()>::Insert(e.map_or(1, |(_, v)| v + 1))
                                });
                            }
                            1 => {
                                m.update_or_insert_with(k, |v| v + 1, || 1);
                            }
                            _ => {
                                if m.update(k, |v| v + 1).is_none() {
                                    m.update_or_insert_with(k, |v| v + 1, || 1);
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        common::join_all(hs);
    });
    let total: u64 = map.pin().values().sum();
    assert_eq!(total, threads * per, "increments were lost");
}

#[test]
fn racing_computes_lose_no_update() {
    counters::<std::collections::hash_map::RandomState>();
}

#[test]
fn racing_computes_lose_no_update_in_collision_lists() {
    counters::<ConstHash>();
}

/// A `compute` that removes races one that increments, in lock-step: the remover reads 0 and,
/// while its closure runs, the other thread increments the key; the removal must then not
/// happen (the closure runs again, sees 1 and aborts). Every wait is bounded.
#[test]
fn racing_compute_removals_are_conditional() {
    use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
    use std::time::{Duration, Instant};
    let rounds = common::size(1_000, 8) as u64;
    let map: Ctrie<u64, u64> = (0..rounds).map(|r| (r, 0)).collect();
    let (inside, done) = (AtomicU64::new(0), AtomicU64::new(0));
    let wait_for = |a: &AtomicU64, at_least: u64| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while a.load(SeqCst) < at_least && Instant::now() < deadline {
            std::thread::yield_now();
        }
    };
    let (removed, incremented) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            let m = map.pin();
            let mut removed = 0u64;
            for r in 0..rounds {
                let mut first = true;
                let got = m.compute(r, |e| {
                    if std::mem::take(&mut first) {
                        // Let the other thread write the key between our read and our write.
                        inside.store(r + 1, SeqCst);
                        wait_for(&done, r + 1);
                    }
                    match e {
                        Some((_, 0)) => Operation::Remove,
                        _ => Operation::Abort(()),
                    }
                });
                if let Compute::Removed(_, v) = got {
                    assert_eq!(*v, 0);
                    removed += 1;
                }
            }
            removed
        });
        let b = s.spawn(|| {
            let m = map.pin();
            let mut incremented = 0;
            for r in 0..rounds {
                wait_for(&inside, r + 1);
                incremented += m.update(r, |v| v + 1).is_some() as u64;
                done.store(r + 1, SeqCst);
            }
            incremented
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    let m = map.pin();
    let ones = m.values().filter(|v| **v == 1).count() as u64;
    assert_eq!(m.len() as u64, ones, "only incremented keys remain");
    assert_eq!(
        ones, incremented,
        "an incremented key was removed by a stale decision"
    );
    assert_eq!(ones + removed, rounds);
}

/// `retain` races a writer that rewrites every key with a value to keep: no rewritten entry is
/// removed by `retain`'s earlier decision (the Scala `TrieMap` rule: conditional bulk
/// operations compare and remove). A `retain` that removed by key alone loses most of them.
#[test]
fn retain_racing_a_writer_keeps_every_rewritten_entry() {
    let n = common::size(50_000, 60) as u64;
    let map: Ctrie<u64, bool> = (0..n).map(|k| (k, false)).collect();
    let start = std::sync::Barrier::new(2);
    std::thread::scope(|s| {
        let a = s.spawn(|| {
            start.wait();
            map.pin().retain(|_, keep| *keep);
        });
        let b = s.spawn(|| {
            let m = map.pin();
            start.wait();
            for k in 0..n {
                m.insert(k, true);
            }
        });
        common::join_all([a, b]);
    });
    let m = map.pin();
    let missing: Vec<u64> = (0..n).filter(|k| m.get(k) != Some(&true)).take(5).collect();
    assert!(
        missing.is_empty(),
        "rewritten entries removed: {missing:?}..."
    );
    assert_eq!(m.len() as u64, n);
}

/// `retain` racing a writer that inserts new keys (with values it would reject): exactly the
/// ones its snapshot saw, and so tested, are removed; those inserted after it are kept untested.
#[test]
fn retain_keeps_entries_inserted_while_it_runs() {
    let n = common::size(20_000, 60) as u64;
    let map: Ctrie<u64, u64> = (0..n).map(|k| (k, 0)).collect();
    let rejected = std::thread::scope(|s| {
        let a = s.spawn(|| {
            let mut rejected = std::collections::HashSet::new();
            map.pin().retain(|k, v| {
                let keep = *v != 0;
                if !keep {
                    rejected.insert(*k);
                }
                keep
            });
            rejected
        });
        let b = s.spawn(|| {
            let m = map.pin();
            for k in n..2 * n {
                m.insert(k, 0);
            }
        });
        b.join().unwrap();
        a.join().unwrap()
    });
    let m = map.pin();
    assert!((0..n).all(|k| rejected.contains(&k) && !m.contains_key(&k)));
    for k in n..2 * n {
        assert_eq!(m.contains_key(&k), !rejected.contains(&k), "key {k}");
    }
}

/// The documented examples of `Compute`, and that `compute` drops the key and values of
/// attempts that were not stored.
#[test]
fn compute_drops_what_it_does_not_store() {
    let _serial = common::serial();
    let tracker = common::Tracker::new();
    {
        let map: Ctrie<u8, common::Tracked> = Ctrie::new();
        let m = map.pin();
        let got = m.compute(1, |_| Operation::<_, ()>::Insert(tracker.make(1)));
        assert!(matches!(got, Compute::Inserted(..)));
        assert_eq!(
            m.compute(1, |_| Operation::<_, u8>::Abort(7)),
            Compute::Aborted(7)
        );
        let got = m.compute(1, |_| Operation::<_, ()>::Remove);
        assert!(matches!(got, Compute::Removed(1, _)));
        assert_eq!(
            m.compute(2, |_| Operation::<_, ()>::Remove),
            Compute::Absent
        );
        m.insert(3, tracker.make(3));
        assert!(m.update(3, |v| tracker.make(v.get() + 1)).is_some());
        assert_eq!(m.get(&3).map(|v| v.get()), Some(4));
    }
    common::flush_until(|| tracker.alive() == 0);
    assert_eq!(tracker.alive(), 0, "values leaked");
}
