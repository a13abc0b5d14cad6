//! The `rayon` feature: parallel iteration over a snapshot yields what the sequential iterator
//! yields, in the same order when collected, for tries of every shape (deep chains, collision
//! lists, tombs), and for a snapshot taken while writers run.

mod common;

use common::{ConstHash, High4};
use ctrie::{Ctrie, CtrieSet, Snapshot};
use rayon::prelude::*;
use std::hash::BuildHasher;

fn same_as_sequential<S: BuildHasher>(snap: &Snapshot<u64, u64, S>) {
    let seq: Vec<(&u64, &u64)> = snap.iter().collect();
    let par: Vec<(&u64, &u64)> = snap.par_iter().collect();
    assert_eq!(par, seq);
    assert_eq!(snap.par_iter().count(), snap.len());
    let sum: u64 = snap.par_iter().map(|(k, v)| k ^ v).sum();
    assert_eq!(sum, seq.iter().map(|(k, v)| *k ^ *v).sum());
    // Early exit: `find_any` stops the folds.
    if let Some((k, _)) = seq.last() {
        assert_eq!(
            snap.par_iter().find_any(|(x, _)| x == k).map(|e| e.0),
            Some(*k)
        );
    }
}

fn shapes<S: BuildHasher + Default + 'static>(n: u64) {
    let map: Ctrie<u64, u64, S> = Ctrie::default();
    same_as_sequential(&map.read_only_snapshot());
    for k in 0..n {
        map.pin().insert(k, k * 3);
    }
    same_as_sequential(&map.read_only_snapshot());
    // Tombs and contraction: remove most keys.
    for k in (0..n).filter(|k| k % 5 != 0) {
        map.pin().remove(&k);
    }
    same_as_sequential(&map.read_only_snapshot());
}

#[test]
fn par_iter_equals_iter_random_state() {
    shapes::<std::collections::hash_map::RandomState>(common::size(20_000, 40) as u64);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "rayon's pool is slow under Miri: the random-state and under-writers cases run there"
)]
fn par_iter_equals_iter_constant_hash() {
    shapes::<ConstHash>(common::size(300, 12) as u64);
}

#[test]
#[cfg_attr(
    miri,
    ignore = "rayon's pool is slow under Miri: the random-state and under-writers cases run there"
)]
fn par_iter_equals_iter_last_level() {
    shapes::<High4>(common::size(2_000, 20) as u64);
}

#[test]
fn par_iter_on_a_snapshot_taken_under_writers() {
    let n = common::size(20_000, 30) as u64;
    let map: Ctrie<u64, u64> = (0..n).map(|k| (k, k)).collect();
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            let m = map.pin();
            for k in 0..n {
                m.insert(k + n, k);
                m.remove(&k);
            }
        });
        for _ in 0..common::size(10, 1) {
            same_as_sequential(&map.read_only_snapshot());
        }
        w.join().unwrap();
    });
    same_as_sequential(&map.read_only_snapshot());
}

#[test]
#[cfg_attr(
    miri,
    ignore = "rayon's pool is slow under Miri: the random-state and under-writers cases run there"
)]
fn set_par_iter_equals_iter() {
    let set: CtrieSet<u64> = (0..common::size(5_000, 50) as u64).collect();
    let snap = set.read_only_snapshot();
    let seq: Vec<&u64> = snap.iter().collect();
    assert_eq!(snap.par_iter().collect::<Vec<_>>(), seq);
}
