//! Scenarios of Scala's `TrieMap` test suites, written fresh.

mod common;

use common::{collect, race_get_or_insert_with, size, ConstHash, Mod8};
use ctrie::Ctrie;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;

#[test]
fn views_are_snapshots() {
    let m: Ctrie<u64, u64> = (0..100).map(|i| (i, i)).collect();
    let r = m.pin();
    let keys = r.iter();
    let frozen = m.read_only_snapshot();
    for i in 0..100 {
        r.remove(&i);
    }
    for i in 100..200 {
        r.insert(i, i);
    }
    assert_eq!(keys.count(), 100);
    assert!(frozen.iter().all(|(k, _)| *k < 100));
    assert_eq!(frozen.len(), 100);
}

#[test]
fn custom_hash_and_equality() {
    // hash = x mod 4, equality = x mod 8: 0 and 8 are the same key; 0 and 4 collide fully.
    let m: Ctrie<Mod8, u64> = Ctrie::new();
    let r = m.pin();
    for i in 0..8 {
        assert_eq!(r.insert(Mod8(i), i), None);
    }
    assert_eq!(m.len(), 8);
    for i in 8..16 {
        assert_eq!(r.insert(Mod8(i), i), Some(&(i - 8)));
    }
    assert_eq!(m.len(), 8);
    for i in 0..8 {
        assert_eq!(r.get(&Mod8(i + 16)), Some(&(i + 8)));
    }
    for i in 0..4 {
        assert_eq!(r.remove(&Mod8(i + 24)), Some(&(i + 8)));
    }
    assert_eq!(m.len(), 4);
    for i in 4..8 {
        assert_eq!(r.get(&Mod8(i)), Some(&(i + 8)));
    }
    // The same through an L-node: every key collides.
    let c: Ctrie<Mod8, u64, ConstHash> = Ctrie::with_hasher(ConstHash);
    let r = c.pin();
    for i in 0..16 {
        r.insert(Mod8(i), i);
    }
    assert_eq!(
        c.len(),
        8,
        "an L-node must use the map's equality, never keep two equal keys"
    );
    assert_eq!(r.get(&Mod8(3)), Some(&11));
}

/// Threads toggle disjoint key ranges; snapshots taken meanwhile must be internally
/// consistent, and once the threads stop the snapshot equals the final state.
#[test]
fn snapshot_consistency_under_toggling() {
    let per = size(300, 20) as u64;
    let threads = 3u64;
    let rounds = size(20, 2);
    let m: Ctrie<u64, u64> = Ctrie::new();
    let done = AtomicUsize::new(0);
    thread::scope(|s| {
        for t in 0..threads {
            let (m, done) = (&m, &done);
            s.spawn(move || {
                let r = m.pin();
                for round in 0..rounds as u64 {
                    for k in t * per..(t + 1) * per {
                        if round % 2 == 0 {
                            r.insert(k, round);
                        } else {
                            r.remove(&k);
                        }
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        // Non-quiescent: snapshots while writers run.
        let (m, done) = (&m, &done);
        s.spawn(move || {
            while done.load(Ordering::SeqCst) < threads as usize {
                let snap = m.read_only_snapshot();
                let a = collect(&snap);
                let b = collect(&snap);
                assert_eq!(a, b, "a snapshot changed between two reads");
                assert_eq!(snap.len(), a.len());
                for (k, v) in &a {
                    assert_eq!(snap.get(k), Some(v));
                }
            }
        });
    });
    // Quiescent: the last round inserted when `rounds` is odd, removed otherwise.
    let expect = if rounds % 2 == 1 {
        (threads * per) as usize
    } else {
        0
    };
    assert_eq!(m.len(), expect);
    assert_eq!(m.read_only_snapshot().iter().count(), expect);
}

#[test]
fn two_snapshots_emptied_concurrently_in_isolation() {
    let n = size(2_000, 60) as u64;
    let m: Ctrie<u64, u64> = (0..n).map(|i| (i, i)).collect();
    let a = m.snapshot();
    let b = m.snapshot();
    thread::scope(|s| {
        for t in [&a, &b] {
            s.spawn(move || {
                let r = t.pin();
                for i in 0..n {
                    assert_eq!(r.remove(&i), Some(&i));
                }
            });
        }
    });
    assert!(a.is_empty() && b.is_empty());
    assert_eq!(m.len(), n as usize);
    assert_eq!(collect(m.pin().iter()).len(), n as usize);
}

#[test]
fn many_snapshots_emptied_concurrently() {
    let n = size(500, 30) as u64;
    let m: Ctrie<u64, u64> = (0..n).map(|i| (i, i)).collect();
    let snaps: Vec<_> = (0..4).map(|_| m.snapshot()).collect();
    thread::scope(|s| {
        for (t, snap) in snaps.iter().enumerate() {
            s.spawn(move || {
                let r = snap.pin();
                // Each removes in a different order.
                let mut keys: Vec<u64> = (0..n).collect();
                if t % 2 == 1 {
                    keys.reverse();
                }
                for i in keys {
                    assert_eq!(r.remove(&i), Some(&i));
                    if i % 7 == 0 {
                        // and takes snapshots of its own snapshot along the way
                        assert!(snap.read_only_snapshot().get(&i).is_none());
                    }
                }
            });
        }
    });
    assert!(snaps.iter().all(|s| s.is_empty()));
    assert_eq!(m.len(), n as usize);
}

#[test]
fn iterator_under_in_order_removal_sees_a_suffix() {
    let n = size(5_000, 100) as u64;
    let m: Ctrie<u64, u64> = (0..n).map(|i| (i, i)).collect();
    thread::scope(|s| {
        let m = &m;
        s.spawn(move || {
            let r = m.pin();
            for i in 0..n {
                r.remove(&i);
            }
        });
        s.spawn(move || {
            for _ in 0..size(30, 3) {
                let got = collect(m.pin().iter());
                // Removed in order: what remains is k..n for some k.
                let lo = (0..=n).find(|k| got.contains_key(k)).unwrap_or(n);
                assert_eq!(got.len() as u64, n - lo, "not a suffix");
            }
        });
    });
}

#[test]
fn iterator_under_in_order_insertion_sees_a_prefix() {
    let n = size(5_000, 100) as u64;
    let m: Ctrie<u64, u64> = Ctrie::new();
    thread::scope(|s| {
        let m = &m;
        s.spawn(move || {
            let r = m.pin();
            for i in 0..n {
                r.insert(i, i);
            }
        });
        s.spawn(move || {
            for _ in 0..size(30, 3) {
                let got = collect(m.pin().iter());
                let k = got.len() as u64;
                assert!((0..k).all(|i| got.contains_key(&i)), "not a prefix");
            }
        });
    });
}

#[test]
fn concurrent_negation_by_compare_and_replace() {
    let n = size(1_000, 40) as i64;
    let threads = 4;
    let m: Ctrie<i64, i64> = (0..n).map(|i| (i, i + 1)).collect();
    thread::scope(|s| {
        for _ in 0..threads {
            let m = &m;
            s.spawn(move || {
                let r = m.pin();
                for k in 0..n {
                    loop {
                        let v = *r.get(&k).unwrap();
                        if r.compare_and_replace(k, &v, -v) {
                            break;
                        }
                    }
                }
            });
        }
    });
    // Each value was negated exactly `threads` times: nothing was lost.
    for k in 0..n {
        assert_eq!(m.pin().get(&k), Some(&(k + 1)), "key {k}");
    }
}

#[test]
fn all_or_none_by_parity_of_togglers() {
    let n = size(500, 30) as u64;
    for threads in [2usize, 3] {
        let m: Ctrie<u64, u64> = Ctrie::new();
        thread::scope(|s| {
            for _ in 0..threads {
                let m = &m;
                s.spawn(move || {
                    let r = m.pin();
                    for k in 0..n {
                        // Atomically flip the presence of `k`.
                        loop {
                            match r.get(&k).copied() {
                                Some(v) => {
                                    if r.remove_if(&k, &v) {
                                        break;
                                    }
                                }
                                None => {
                                    if r.insert_if_absent(k, k).is_none() {
                                        break;
                                    }
                                }
                            }
                        }
                    }
                });
            }
        });
        let expect = if threads % 2 == 1 { n as usize } else { 0 };
        assert_eq!(m.len(), expect, "{threads} togglers");
    }
}

#[test]
fn get_or_insert_with_agrees_on_one_winner() {
    let n = size(300, 20) as u64;
    let (m, seen) = race_get_or_insert_with(n, 4, false);
    for k in 0..n {
        let winner = *m.pin().get(&k).unwrap();
        assert_eq!(winner % 1_000_000, k);
        for s in &seen {
            assert_eq!(s[k as usize], winner, "callers disagree on key {k}");
        }
    }
}
