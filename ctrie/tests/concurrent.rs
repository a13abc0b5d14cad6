//! Snapshots, `len` and iteration taken while writers run must be linearizable.

mod common;

use common::{collect, race_get_or_insert_with, size, FewBits};
use ctrie::Ctrie;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;

/// Keys 0, 1, 2, ... are inserted in that real-time order by two writers passing a token (so
/// consecutive keys come from different threads). Every snapshot must hold exactly a prefix,
/// and successive snapshots of one reader must hold growing prefixes.
fn prefix_under_inserts<S: BuildHasher + Default + Send + Sync + 'static>() {
    let n = size(20_000, 60) as u64;
    let m: Ctrie<u64, u64, S> = Ctrie::default();
    let next = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for me in 0..2u64 {
            let (m, next, done) = (&m, &next, &done);
            s.spawn(move || {
                let r = m.pin();
                loop {
                    let k = next.load(Ordering::SeqCst);
                    if k >= n {
                        done.store(true, Ordering::SeqCst);
                        return;
                    }
                    if k % 2 == me {
                        r.insert(k, k);
                        next.store(k + 1, Ordering::SeqCst);
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let (m, done) = (&m, &done);
        s.spawn(move || {
            let mut last = 0;
            while !done.load(Ordering::SeqCst) {
                let snap = m.read_only_snapshot();
                let got = collect(&snap);
                let k = got.len() as u64;
                assert!(
                    (0..k).all(|i| got.get(&i) == Some(&i)),
                    "snapshot of {k} keys is not a prefix"
                );
                assert_eq!(snap.len(), got.len());
                assert!(k >= last, "snapshots went back in time: {k} after {last}");
                last = k;
                let len = m.len() as u64;
                assert!(len >= last, "len went back in time");
                last = len;
            }
        });
    });
    assert_eq!(m.len() as u64, n);
}

#[test]
fn prefix_under_ordered_inserts() {
    prefix_under_inserts::<std::collections::hash_map::RandomState>();
}

#[derive(Default)]
struct TenBits;
impl BuildHasher for TenBits {
    type Hasher = common::FewBitsHasher;
    fn build_hasher(&self) -> Self::Hasher {
        FewBits(10).build_hasher()
    }
}

#[test]
fn prefix_under_ordered_inserts_with_collisions() {
    prefix_under_inserts::<TenBits>();
}

/// Keys removed in order 0, 1, 2, ... by two writers passing a token: every snapshot holds a
/// suffix, and successive snapshots shrink.
#[test]
fn suffix_under_ordered_removals() {
    let n = size(20_000, 60) as u64;
    let m: Ctrie<u64, u64> = (0..n).map(|i| (i, i)).collect();
    let next = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for me in 0..2u64 {
            let (m, next, done) = (&m, &next, &done);
            s.spawn(move || {
                let r = m.pin();
                loop {
                    let k = next.load(Ordering::SeqCst);
                    if k >= n {
                        done.store(true, Ordering::SeqCst);
                        return;
                    }
                    if k % 2 == me {
                        assert_eq!(r.remove(&k), Some(&k));
                        next.store(k + 1, Ordering::SeqCst);
                    } else {
                        std::hint::spin_loop();
                    }
                }
            });
        }
        let (m, done) = (&m, &done);
        s.spawn(move || {
            let mut last = n;
            while !done.load(Ordering::SeqCst) {
                let got = collect(m.read_only_snapshot().iter());
                let first = n - got.len() as u64;
                assert!((first..n).all(|i| got.contains_key(&i)), "not a suffix");
                assert!(got.len() as u64 <= last, "snapshots went back in time");
                last = got.len() as u64;
            }
        });
    });
    assert!(m.is_empty());
}

/// Each writer owns a range of keys and bumps them in rounds: round r sets every key of the
/// range to r, in key order. A snapshot must show, per writer, values that never increase along
/// the key order and differ by at most one round: round r+1 has reached a prefix.
#[test]
fn per_writer_rounds_are_seen_in_order() {
    let per = size(200, 12) as u64;
    let rounds = size(200, 3) as u64;
    let writers = 3u64;
    let m: Ctrie<u64, u64> = (0..writers * per).map(|k| (k, 0)).collect();
    let done = AtomicU64::new(0);
    thread::scope(|s| {
        for w in 0..writers {
            let (m, done) = (&m, &done);
            s.spawn(move || {
                let r = m.pin();
                for round in 1..=rounds {
                    for k in w * per..(w + 1) * per {
                        r.insert(k, round);
                    }
                }
                done.fetch_add(1, Ordering::SeqCst);
            });
        }
        let (m, done) = (&m, &done);
        s.spawn(move || {
            let mut prev: Option<HashMap<u64, u64>> = None;
            while done.load(Ordering::SeqCst) < writers {
                let got = collect(m.read_only_snapshot().iter());
                assert_eq!(got.len() as u64, writers * per);
                for w in 0..writers {
                    let vals: Vec<u64> = (w * per..(w + 1) * per).map(|k| got[&k]).collect();
                    assert!(
                        vals.windows(2).all(|p| p[0] >= p[1]),
                        "writer {w}: out of order {vals:?}"
                    );
                    assert!(
                        vals[0] - vals[vals.len() - 1] <= 1,
                        "writer {w}: rounds mixed {vals:?}"
                    );
                }
                if let Some(p) = &prev {
                    assert!(
                        got.iter().all(|(k, v)| *v >= p[k]),
                        "a later snapshot saw an older value"
                    );
                }
                prev = Some(got);
            }
        });
    });
}

/// Writable snapshots taken while writers run are independent tries that start from a
/// consistent state (a prefix), and writing to them never disturbs the live trie.
#[test]
fn writable_snapshots_while_writing() {
    let n = size(20_000, 50) as u64;
    let m: Ctrie<u64, u64> = Ctrie::new();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let (m, done) = (&m, &done);
        s.spawn(move || {
            let r = m.pin();
            for i in 0..n {
                r.insert(i, i);
            }
            done.store(true, Ordering::SeqCst);
        });
        s.spawn(move || {
            while !done.load(Ordering::SeqCst) {
                let w = m.snapshot();
                let k = w.len() as u64;
                let wr = w.pin();
                for i in 0..k {
                    assert_eq!(
                        wr.remove(&i),
                        Some(&i),
                        "snapshot of {k} keys is not a prefix"
                    );
                }
                assert!(w.is_empty());
            }
        });
    });
    assert_eq!(m.len() as u64, n);
    assert!(m.pin().iter().all(|(k, v)| k == v));
}

/// `clear` racing writers and snapshots: every snapshot is either "before" or "after" each
/// clear, and the final state is what the writer did after the last clear.
#[test]
fn clear_is_atomic() {
    let n = size(20_000, 40) as u64;
    let m: Ctrie<u64, u64> = Ctrie::new();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        let (m, done) = (&m, &done);
        s.spawn(move || {
            let r = m.pin();
            for i in 0..n {
                r.insert(i, i);
            }
            done.store(true, Ordering::SeqCst);
        });
        s.spawn(move || {
            while !done.load(Ordering::SeqCst) {
                m.clear();
                // Keys only ever go in in order, and clear removes all at once: what a
                // snapshot holds is a contiguous range of keys.
                let got = collect(m.read_only_snapshot().iter());
                if let (Some(lo), Some(hi)) = (got.keys().min(), got.keys().max()) {
                    assert_eq!((hi - lo + 1) as usize, got.len(), "clear was not atomic");
                }
            }
        });
    });
    let got = collect(m.pin().iter());
    if let (Some(lo), Some(hi)) = (got.keys().min(), got.keys().max()) {
        assert_eq!(*hi, n - 1);
        assert_eq!((hi - lo + 1) as usize, got.len());
    }
}

/// `insert_unless` is atomic. Racing writers use it as a "max" register: each stores its value
/// unless the current one is at least as large. Every store must replace a smaller value, every
/// refusal must see a value at least as large, nobody may see the register go down, and it must
/// end at the largest value offered. (A lookup followed by an insert loses updates here.)
#[test]
fn insert_unless_is_atomic() {
    let n = size(20_000, 100) as u64;
    let m: Ctrie<u8, u64> = Ctrie::new();
    thread::scope(|s| {
        for t in 0..3u64 {
            let m = &m;
            s.spawn(move || {
                let mut seen = 0;
                for i in 0..n {
                    let v = i * 3 + t + 1;
                    match m.pin().insert_unless(&0, |cur| *cur >= v, || (0, v)) {
                        Ok(prev) => {
                            let prev = prev.copied().unwrap_or(0);
                            assert!(prev < v, "stored {v} over {prev}");
                            assert!(prev >= seen, "went down from {seen} to {prev}");
                            seen = v;
                        }
                        Err(&cur) => {
                            assert!(cur >= v, "refused {v} for {cur}");
                            assert!(cur >= seen, "went down from {seen} to {cur}");
                            seen = cur;
                        }
                    }
                }
            });
        }
    });
    assert_eq!(m.pin().get(&0), Some(&(3 * n)));
}

/// `get_or_insert_with` racing on one fresh key at a time: the threads start each key together
/// (a barrier), so some build their entry and then lose the race to publish it. They must then
/// recognise the winner's entry as the same key and return its value, not store a second entry.
#[test]
fn get_or_insert_with_losers_recognise_the_winner() {
    let rounds = size(3_000, 30) as u64;
    let (m, seen) = race_get_or_insert_with(rounds, 3, true);
    assert_eq!(m.len(), rounds as usize, "a key was stored twice");
    for k in 0..rounds {
        let winner = *m.pin().get(&k).unwrap();
        for s in &seen {
            assert_eq!(s[k as usize], winner, "callers disagree on key {k}");
        }
    }
}
