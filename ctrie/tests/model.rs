//! Property tests: random operation sequences on tries and their snapshots, checked step by
//! step against `std::collections::HashMap` models (each snapshot against a frozen copy).

mod common;

use common::{collect, ConstHash, FewBits};
use ctrie::{Ctrie, Snapshot};
use quickcheck::{Arbitrary, Gen, QuickCheck};
use std::collections::HashMap;
use std::hash::BuildHasher;

#[derive(Clone, Debug)]
enum Op {
    Insert(u8, u8),
    /// `insert_unless` with "unless the current value is at least as large".
    InsertUnlessAtLeast(u8, u8),
    InsertIfAbsent(u8, u8),
    GetOrInsertWith(u8, u8),
    Replace(u8, u8),
    CompareAndReplace(u8, u8, u8),
    Remove(u8),
    RemoveIf(u8, u8),
    Get(u8),
    Len,
    IsEmpty,
    Iter,
    Clear,
    /// A writable snapshot of the current trie becomes a new target.
    Snapshot,
    /// A read-only snapshot is kept (and checked after every later step).
    ReadOnlySnapshot,
    /// A writable trie made from a kept read-only snapshot becomes a new target.
    ThawSnapshot(u8),
    /// Switch which writable trie later operations target.
    Target(u8),
}

const KEYS: u8 = 24;
const VALUES: u8 = 4;

impl Arbitrary for Op {
    fn arbitrary(g: &mut Gen) -> Self {
        let key = |g: &mut Gen| u8::arbitrary(g) % KEYS;
        let val = |g: &mut Gen| u8::arbitrary(g) % VALUES;
        match u8::arbitrary(g) % 40 {
            0..=7 => Op::Insert(key(g), val(g)),
            8..=9 => Op::InsertUnlessAtLeast(key(g), val(g)),
            10..=11 => Op::InsertIfAbsent(key(g), val(g)),
            12 => Op::GetOrInsertWith(key(g), val(g)),
            13 => Op::Replace(key(g), val(g)),
            14..=15 => Op::CompareAndReplace(key(g), val(g), val(g)),
            16..=22 => Op::Remove(key(g)),
            23..=24 => Op::RemoveIf(key(g), val(g)),
            25..=28 => Op::Get(key(g)),
            29 => Op::Len,
            30 => Op::IsEmpty,
            31 => Op::Iter,
            32 => Op::Clear,
            33..=34 => Op::Snapshot,
            35..=36 => Op::ReadOnlySnapshot,
            37 => Op::ThawSnapshot(u8::arbitrary(g)),
            _ => Op::Target(u8::arbitrary(g)),
        }
    }
}

type Model = HashMap<u8, u8>;

fn run<S: BuildHasher + Default + 'static>(ops: Vec<Op>) -> bool {
    let mut tries: Vec<(Ctrie<u8, u8, S>, Model)> = vec![(Ctrie::default(), Model::new())];
    let mut frozen: Vec<(Snapshot<u8, u8, S>, Model)> = Vec::new();
    let mut t = 0;
    for op in ops {
        let (trie, model) = &mut tries[t];
        let r = trie.pin();
        match op {
            Op::Insert(k, v) => assert_eq!(r.insert(k, v).copied(), model.insert(k, v)),
            Op::InsertUnlessAtLeast(k, v) => {
                let expect = match model.get(&k).copied() {
                    Some(cur) if cur >= v => Err(cur),
                    prev => Ok(prev),
                };
                let got = r.insert_unless(&k, |cur| *cur >= v, || (k, v));
                assert_eq!(got.map(Option::<&u8>::copied).map_err(|c| *c), expect);
                if expect.is_ok() {
                    model.insert(k, v);
                }
            }
            Op::InsertIfAbsent(k, v) => {
                let expect = model.get(&k).copied();
                assert_eq!(r.insert_if_absent(k, v).copied(), expect);
                model.entry(k).or_insert(v);
            }
            Op::GetOrInsertWith(k, v) => {
                assert_eq!(*r.get_or_insert_with(k, || v), *model.entry(k).or_insert(v));
            }
            Op::Replace(k, v) => {
                let expect = model.get(&k).copied();
                assert_eq!(r.replace(k, v).copied(), expect);
                if expect.is_some() {
                    model.insert(k, v);
                }
            }
            Op::CompareAndReplace(k, old, new) => {
                let hit = model.get(&k) == Some(&old);
                assert_eq!(r.compare_and_replace(k, &old, new), hit);
                if hit {
                    model.insert(k, new);
                }
            }
            Op::Remove(k) => assert_eq!(r.remove(&k).copied(), model.remove(&k)),
            Op::RemoveIf(k, v) => {
                let hit = model.get(&k) == Some(&v);
                assert_eq!(r.remove_if(&k, &v), hit);
                if hit {
                    model.remove(&k);
                }
            }
            Op::Get(k) => {
                assert_eq!(r.get(&k), model.get(&k));
                assert_eq!(r.get_key_value(&k), model.get_key_value(&k));
                assert_eq!(r.contains_key(&k), model.contains_key(&k));
            }
            Op::Len => assert_eq!(r.len(), model.len()),
            Op::IsEmpty => assert_eq!(r.is_empty(), model.is_empty()),
            Op::Iter => assert_eq!(&collect(r.iter()), model),
            Op::Clear => {
                r.clear();
                model.clear();
            }
            Op::Snapshot => {
                let copy = (trie.snapshot(), model.clone());
                drop(r);
                tries.push(copy);
                t = tries.len() - 1;
            }
            Op::ReadOnlySnapshot => frozen.push((trie.read_only_snapshot(), model.clone())),
            Op::ThawSnapshot(i) => {
                drop(r);
                if !frozen.is_empty() {
                    let (snap, model) = &frozen[i as usize % frozen.len()];
                    tries.push((snap.snapshot(), model.clone()));
                    t = tries.len() - 1;
                }
            }
            Op::Target(i) => t = i as usize % tries.len(),
        }
        // Every kept snapshot still equals its frozen model.
        for (snap, model) in &frozen {
            assert_eq!(snap.len(), model.len());
            for k in 0..KEYS {
                assert_eq!(snap.get(&k), model.get(&k));
            }
        }
    }
    for (trie, model) in &tries {
        assert_eq!(&collect(trie.pin().iter()), model);
        assert_eq!(trie.len(), model.len());
    }
    for (snap, model) in &frozen {
        assert_eq!(&collect(snap), model);
        assert_eq!(&collect(&snap.clone()), model);
    }
    true
}

/// Runs a property: 300 cases of up to ~200 operations (10 short ones under Miri);
/// `QUICKCHECK_TESTS` overrides the count.
fn check(f: fn(Vec<Op>) -> bool) {
    let tests = std::env::var("QUICKCHECK_TESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(miri) { 10 } else { 300 });
    QuickCheck::new()
        .tests(tests)
        .rng(Gen::new(if cfg!(miri) { 30 } else { 200 }))
        .quickcheck(f);
}

#[test]
fn model_random_state() {
    check(run::<std::collections::hash_map::RandomState>);
}

#[test]
fn model_constant_hash() {
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
fn model_three_hash_bits() {
    check(run::<ThreeBits>);
}
