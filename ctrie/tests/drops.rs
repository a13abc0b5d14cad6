//! Every key and value is dropped exactly once, after the trie and all its snapshots are gone
//! and the epoch has been flushed, and never while something can still reach it.

mod common;

use common::{flush, flush_until, join_all, serial, size, ConstHash, Rng, Tracked, Tracker};
use ctrie::Ctrie;
use std::hash::BuildHasher;
use std::sync::{Arc, Barrier};
use std::thread;

/// Random single-threaded history over a trie, writable snapshots and read-only snapshots,
/// with tracked keys and values; the snapshots' contents are read back (which panics if a value
/// was dropped early) and everything is dropped at the end in a random order.
fn history<S: BuildHasher + Default + 'static>(seed: u64) {
    let keys = Tracker::new();
    let vals = Tracker::new();
    {
        let mut rng = Rng::new(seed);
        let mut tries: Vec<Ctrie<u64, Tracked, S>> = vec![Ctrie::default()];
        let mut snaps = Vec::new();
        for _ in 0..size(3_000, 150) {
            let t = rng.below(tries.len() as u64) as usize;
            let k = rng.below(64);
            let trie = &tries[t];
            let r = trie.pin();
            match rng.below(20) {
                0..=7 => {
                    r.insert(k, vals.make(k));
                }
                8 => {
                    r.insert_if_absent(k, vals.make(k));
                }
                9 => {
                    r.replace(k, vals.make(k));
                }
                10 => {
                    if let Some(v) = r.get(&k) {
                        let expected = vals.make(v.get());
                        r.compare_and_replace(k, &expected, vals.make(k));
                    }
                }
                11..=14 => {
                    r.remove(&k);
                }
                15 => {
                    if let Some(v) = r.get(&k) {
                        let expected = vals.make(v.get());
                        r.remove_if(&k, &expected);
                    }
                }
                16 => {
                    if rng.below(8) == 0 {
                        r.clear();
                    }
                }
                17 => {
                    drop(r);
                    let s = trie.snapshot();
                    tries.push(s);
                }
                18 => {
                    drop(r);
                    let s = trie.read_only_snapshot();
                    snaps.push(s);
                }
                _ => {
                    // Read everything a random snapshot holds: a value dropped early panics.
                    if !snaps.is_empty() {
                        let s = &snaps[rng.below(snaps.len() as u64) as usize];
                        let sum: u64 = s.iter().map(|(k, v)| v.get() + k).sum();
                        std::hint::black_box(sum);
                    }
                    if rng.below(4) == 0 && snaps.len() > 1 {
                        let i = rng.below(snaps.len() as u64) as usize;
                        snaps.swap_remove(i);
                    }
                    if rng.below(4) == 0 && tries.len() > 1 {
                        let i = rng.below(tries.len() as u64) as usize;
                        tries.swap_remove(i);
                    }
                }
            }
            // Let reclamation run while snapshots are alive: nothing reachable may go.
            if rng.below(50) == 0 {
                flush();
                for s in &snaps {
                    for (_, v) in s {
                        v.get();
                    }
                }
                for t in &tries {
                    for (_, v) in t.pin().iter() {
                        v.get();
                    }
                }
            }
        }
        // Drop in a random order.
        while !tries.is_empty() || !snaps.is_empty() {
            if rng.below(2) == 0 && !tries.is_empty() {
                let i = rng.below(tries.len() as u64) as usize;
                tries.swap_remove(i);
            } else if !snaps.is_empty() {
                let i = rng.below(snaps.len() as u64) as usize;
                snaps.swap_remove(i);
            }
        }
    }
    flush_until(|| vals.alive() == 0 && keys.alive() == 0);
    assert_eq!(
        vals.alive(),
        0,
        "of {} values, {} were never dropped",
        vals.created(),
        vals.alive()
    );
    assert_eq!(keys.alive(), 0);
}

#[test]
fn exactly_once_random_histories() {
    let _serial = serial();
    for seed in 0..size(6, 2) as u64 {
        history::<std::collections::hash_map::RandomState>(seed);
    }
}

#[test]
fn exactly_once_random_histories_with_collisions() {
    let _serial = serial();
    for seed in 0..size(6, 2) as u64 {
        history::<ConstHash>(seed);
    }
}

/// Tracked keys too: keys are dropped exactly once (also the new key of an upsert).
#[test]
fn keys_dropped_exactly_once() {
    let _serial = serial();
    let keys = Tracker::new();
    let distinct = size(50, 20) as u64;
    {
        let m: Ctrie<TrackedKey, u64> = Ctrie::new();
        let r = m.pin();
        for i in 0..distinct * 10 {
            r.insert(TrackedKey(keys.make(i % distinct)), i);
        }
        let snap = m.read_only_snapshot();
        for i in 0..distinct / 2 {
            r.remove(&TrackedKey(keys.make(i)));
        }
        assert_eq!(snap.len() as u64, distinct);
        assert_eq!(m.len() as u64, distinct - distinct / 2);
    }
    flush_until(|| keys.alive() == 0);
    assert_eq!(keys.alive(), 0);
}

struct TrackedKey(Tracked);
impl PartialEq for TrackedKey {
    fn eq(&self, o: &Self) -> bool {
        self.0.get() == o.0.get()
    }
}
impl Eq for TrackedKey {}
impl std::hash::Hash for TrackedKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.0.get().hash(h)
    }
}

/// A value removed by one thread stays readable by another thread that is pinned and read it,
/// however often the remover flushes; it is dropped once the reader unpins.
#[test]
fn not_freed_while_a_pinned_reader_holds_it() {
    let _serial = serial();
    let vals = Tracker::new();
    let m: Ctrie<u64, Tracked> = Ctrie::new();
    m.pin().insert(1, vals.make(7));
    let id = m.pin().get(&1).unwrap().id;
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        let (m, barrier) = (&m, &barrier);
        let reader = s.spawn(move || {
            let r = m.pin();
            let v = r.get(&1).unwrap();
            barrier.wait(); // the value is removed and flushed now
            barrier.wait();
            assert_eq!(v.get(), 7, "a pinned reader's value was dropped");
        });
        let remover = s.spawn(move || {
            barrier.wait();
            m.pin().remove(&1);
            flush();
            barrier.wait();
        });
        join_all([reader, remover]);
    });
    flush_until(|| vals.alive() == 0);
    assert!(!vals.is_alive(id));
    assert_eq!(vals.alive(), 0);
}

/// Several threads write tracked values while another keeps and reads snapshots.
#[test]
fn exactly_once_under_concurrency() {
    let _serial = serial();
    let vals = Tracker::new();
    {
        let m: Ctrie<u64, Tracked> = Ctrie::new();
        thread::scope(|s| {
            let mut threads = Vec::new();
            for t in 0..3u64 {
                let (m, vals) = (&m, &vals);
                threads.push(s.spawn(move || {
                    let mut rng = Rng::new(t + 100);
                    for _ in 0..size(5_000, 100) {
                        let k = rng.below(200);
                        let r = m.pin();
                        match rng.below(5) {
                            0 => {
                                r.remove(&k);
                            }
                            1 => {
                                // Kept (nothing built) or stored, sometimes after losing a race
                                // with the entry already built.
                                let keep = rng.below(2) == 0;
                                let _ = r.insert_unless(&k, |_| keep, || (k, vals.make(k)));
                            }
                            2 => {
                                // The same, through the owned-key path.
                                assert_eq!(r.get_or_insert_with(k, || vals.make(k)).get(), k);
                            }
                            _ => {
                                r.insert(k, vals.make(k));
                            }
                        }
                    }
                }));
            }
            let (m, vals) = (&m, &vals);
            threads.push(s.spawn(move || {
                let mut kept = Vec::new();
                for i in 0..size(200, 10) {
                    let s = m.read_only_snapshot();
                    for (k, v) in &s {
                        assert_eq!(v.get(), *k);
                    }
                    kept.push(s);
                    if i % 3 == 0 {
                        let w = m.snapshot();
                        w.pin().insert(1_000, vals.make(1_000));
                        w.pin().remove(&5);
                    }
                    if kept.len() > 8 {
                        kept.remove(0);
                    }
                }
                for s in &kept {
                    for (k, v) in s {
                        assert_eq!(v.get(), *k);
                    }
                }
            }));
            join_all(threads);
        });
    }
    flush_until(|| vals.alive() == 0);
    assert_eq!(
        vals.alive(),
        0,
        "of {} values, {} were never dropped",
        vals.created(),
        vals.alive()
    );
}

/// Dropping a large trie with shared snapshots in either order frees everything.
#[test]
fn large_drop_in_both_orders() {
    let _serial = serial();
    for trie_first in [true, false] {
        let vals = Arc::new(Tracker::default());
        {
            let m: Ctrie<u64, Tracked> = Ctrie::new();
            for i in 0..size(20_000, 200) as u64 {
                m.pin().insert(i, vals.make(i));
            }
            let snap = m.read_only_snapshot();
            for i in 0..size(20_000, 200) as u64 / 2 {
                m.pin().insert(i, vals.make(i + 1));
            }
            if trie_first {
                drop(m);
                flush();
                assert_eq!(
                    snap.iter().filter(|(k, v)| **k == v.get()).count(),
                    snap.len()
                );
                drop(snap);
            } else {
                drop(snap);
                flush();
                assert_eq!(m.len(), size(20_000, 200));
                drop(m);
            }
        }
        flush_until(|| vals.alive() == 0);
        assert_eq!(vals.alive(), 0);
    }
}

/// `insert_unless` and `get_or_insert_with` build nothing when they keep the current value,
/// and an entry `insert_unless` built for another key is refused with a panic, dropped, and
/// leaves the trie as it was. (A constant hash puts every entry in one L-node; the other shapes
/// are covered by the model and concurrency tests.)
#[test]
fn insert_unless_builds_only_what_it_stores() {
    let _serial = serial();
    let vals = Tracker::new();
    {
        let m: Ctrie<u64, Tracked, ConstHash> = Ctrie::with_hasher(ConstHash);
        let r = m.pin();
        assert!(r.insert_unless(&1, |_| true, || (1, vals.make(1))).is_ok());
        assert!(r.insert_unless(&2, |_| true, || (2, vals.make(2))).is_ok());
        let got = r.get_or_insert_with(2, || unreachable!("built an entry for a present key"));
        assert_eq!(got.get(), 2);
        assert_eq!(r.get_or_insert_with(5, || vals.make(5)).get(), 5);
        let kept = r.insert_unless(&1, |v| v.get() == 1, || unreachable!("built a kept entry"));
        assert_eq!(kept.map_err(Tracked::get), Err(1));
        let made = vals.created();
        let wrong = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = r.insert_unless(&3, |_| false, || (4, vals.make(4)));
        }));
        assert!(wrong.is_err(), "an entry for another key was accepted");
        assert_eq!(vals.created(), made + 1);
        assert_eq!(vals.alive(), 3, "the refused entry was not dropped");
        assert_eq!(r.len(), 3);
        assert!(r.get(&3).is_none() && r.get(&4).is_none());
    }
    flush_until(|| vals.alive() == 0);
    assert_eq!(vals.alive(), 0);
}

/// A trie much larger than what one deferred function frees (1,024 nodes) is freed in steps,
/// each handing the rest on to the next, when it is dropped and when it is cleared: every key
/// value is still dropped exactly once, and a snapshot taken before the clear keeps its
/// entries until it goes.
#[test]
fn large_trie_is_freed_in_steps_completely() {
    let _serial = serial();
    let n = size(20_000, 300) as u64;
    let vals = Tracker::new();
    let fill = |t: &Ctrie<u64, Tracked>| {
        let m = t.pin();
        for k in 0..n {
            m.insert(k, vals.make(k));
        }
    };
    let t: Ctrie<u64, Tracked> = Ctrie::new();
    fill(&t);
    drop(t);
    flush_until(|| vals.alive() == 0);
    assert_eq!(vals.alive(), 0, "dropped trie not freed");

    let t: Ctrie<u64, Tracked> = Ctrie::new();
    fill(&t);
    let snap = t.read_only_snapshot();
    t.clear();
    flush();
    assert_eq!(vals.alive(), n as usize, "a snapshot's entries were freed");
    assert_eq!(snap.len(), n as usize);
    drop(snap);
    flush();
    assert_eq!(vals.alive(), 0, "cleared trie not freed");
    drop(t);
}
