//! `CtrieSet` and `SetSnapshot`: quickcheck against a `HashSet` model (every result, the
//! contents, snapshots and their diffs), and racing inserters agreeing on one winner per element.

mod common;

use common::{collect, ConstHash};
use ctrie::{CtrieSet, SetSnapshot};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::collections::HashSet;
use std::hash::BuildHasher;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8),
    Remove(u8),
    Contains(u8),
    RetainEven,
    Clear,
    Freeze,
}

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let v = u8::arbitrary(g) % 32;
        match u8::arbitrary(g) % 10 {
            0..=3 => Op::Insert(v),
            4..=5 => Op::Remove(v),
            6..=7 => Op::Contains(v),
            8 => {
                if u8::arbitrary(g) % 4 == 0 {
                    Op::Clear
                } else {
                    Op::RetainEven
                }
            }
            _ => Op::Freeze,
        }
    }
}

fn run<S: BuildHasher + Default + 'static>(ops: Vec<Op>) -> bool {
    let set: CtrieSet<u8, S> = CtrieSet::default();
    let mut model = HashSet::new();
    let mut kept: Vec<(SetSnapshot<u8, S>, HashSet<u8>)> = Vec::new();
    for op in ops {
        let s = set.pin();
        match op {
            Op::Insert(v) => assert_eq!(s.insert(v), model.insert(v)),
            Op::Remove(v) => assert_eq!(s.remove(&v), model.remove(&v)),
            Op::Contains(v) => {
                assert_eq!(s.contains(&v), model.contains(&v));
                assert_eq!(s.get(&v), model.get(&v));
            }
            Op::RetainEven => {
                s.retain(|v| v % 2 == 0);
                model.retain(|v| v % 2 == 0);
            }
            Op::Clear => {
                s.clear();
                model.clear();
            }
            Op::Freeze => kept.push((set.read_only_snapshot(), model.clone())),
        }
        assert_eq!(s.iter().copied().collect::<HashSet<_>>(), model);
        assert_eq!(s.len(), model.len());
    }
    kept.push((set.read_only_snapshot(), model));
    for (a, ma) in &kept {
        assert_eq!(a.iter().copied().collect::<HashSet<_>>(), *ma);
        for (b, mb) in &kept {
            let mut got: Vec<Result<u8, u8>> =
                a.diff(b).map(|d| d.copied().map_err(|v| *v)).collect();
            got.sort();
            let mut expect: Vec<Result<u8, u8>> = mb
                .difference(ma)
                .map(|v| Ok(*v))
                .chain(ma.difference(mb).map(|v| Err(*v)))
                .collect();
            expect.sort();
            assert_eq!(got, expect);
            assert_eq!(a == b, ma == mb);
        }
    }
    true
}

fn check(f: fn(Vec<Op>) -> bool) {
    QuickCheck::new()
        .tests(if cfg!(miri) { 1 } else { 200 })
        .rng(Gen::new(if cfg!(miri) { 15 } else { 120 }))
        .quickcheck(f);
}

#[test]
fn set_model_random_state() {
    check(run::<std::collections::hash_map::RandomState>);
}

#[test]
#[cfg_attr(miri, ignore = "the random-state model and the race run under Miri")]
fn set_model_constant_hash() {
    check(run::<ConstHash>);
}

/// Threads insert the same elements: each element is reported new by exactly one of them.
#[test]
fn racing_inserts_have_one_winner() {
    let n = common::size(5_000, 16) as u64;
    let set: CtrieSet<u64> = CtrieSet::new();
    let wins: Vec<u64> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..3)
            .map(|_| {
                let set = &set;
                s.spawn(move || {
                    let p = set.pin();
                    (0..n).filter(|v| p.insert(*v)).count() as u64
                })
            })
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(wins.iter().sum::<u64>(), n);
    assert_eq!(set.len() as u64, n);
}

/// The rest of the surface: snapshots, `FromIterator`, `Extend`, `Clone`, `Debug`, equality.
#[test]
fn set_surface() {
    let set: CtrieSet<&str> = ["a", "b"].into_iter().collect();
    let copy = set.clone();
    (&copy).extend(["c"]);
    assert_eq!(set.len(), 2);
    assert_eq!(copy.len(), 3);
    assert!(set != copy);
    assert!(copy.read_only_snapshot().snapshot() == copy);
    let frozen = set.read_only_snapshot();
    assert_eq!(format!("{:?}", CtrieSet::<u8>::new()), "{}");
    let g = set.guard();
    assert!(set.remove("a", &g));
    assert!(!set.contains("a", &g) && frozen.contains("a"));
    assert_eq!(frozen.get("b"), Some(&"b"));
    assert_eq!(collect(frozen.iter().map(|v| (v, &()))).len(), 2);
    assert_eq!((&frozen).into_iter().count(), 2);
}
