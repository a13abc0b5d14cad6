//! Reclamation is complete and its garbage bounded, under every drop order of snapshots and
//! forks: the debug oracle's census (nodes allocated per kind, nodes some trie, snapshot or fork
//! can reach, eras allocated) is checked against what the test keeps alive.
//!
//! Garbage here means allocated nodes that nothing can reach. Once the epoch has been flushed
//! (no thread pinned, every deferred function run) there must be none, whatever snapshots are
//! alive: every node a live snapshot needs is reachable from it, and every other retired node
//! must have been freed. The one documented exception is a live fork, which keeps the version
//! it was taken from alive as a whole (see `reclaim.rs`, N4).
//!
//! These tests read the debug oracle, which exists in debug builds only (the README's test
//! command builds them), so the file is empty in release builds.
#![cfg(debug_assertions)]

mod common;

use common::{flush, flush_until, serial, size, Rng};
use ctrie::{Ctrie, Snapshot};

/// (allocated nodes, reachable nodes, eras).
fn census() -> (usize, usize, usize) {
    let (live, reachable, eras) = ctrie::__census();
    (live.iter().sum(), reachable, eras)
}

/// Flushes the epoch, then asserts that no allocated node is unreachable.
#[track_caller]
fn assert_no_garbage(what: &str) {
    flush();
    let (allocated, reachable, _) = census();
    assert_eq!(
        allocated - reachable,
        0,
        "{what}: {allocated} nodes allocated, {reachable} reachable"
    );
}

/// Flushes the epoch, then asserts that nothing is left at all.
#[track_caller]
fn assert_all_freed(what: &str) {
    flush_until(|| ctrie::__census() == ([0; 5], 0, 0));
    let (live, reachable, eras) = ctrie::__census();
    assert_eq!(live, [0; 5], "{what}: nodes left (I, C, T, L, S)");
    assert_eq!(
        (reachable, eras),
        (0, 0),
        "{what}: reachable nodes, eras left"
    );
}

/// A snapshot's entries, sorted.
type Contents = Vec<(u64, u64)>;

#[derive(Clone, Copy, Debug)]
enum Order {
    Fifo,
    Lifo,
    Random,
}

/// Writes with a read-only snapshot every 100 writes, at most 8 alive, dropped oldest first,
/// newest first or at random: at every flush no garbage, at the end nothing left.
fn churn(order: Order, seed: u64) {
    let keys = size(5_000, 100) as u64;
    let writes = size(60_000, 500);
    // Under Miri, smaller steps, so that more than 8 snapshots and several flushes still happen.
    let (every, check) = (size(100, 20), size(1_000, 100));
    let mut rng = Rng::new(seed);
    {
        let map: Ctrie<u64, u64> = Ctrie::new();
        let mut snaps: Vec<(Snapshot<u64, u64>, Contents)> = Vec::new();
        let mut model = std::collections::BTreeMap::new();
        for w in 0..writes {
            let k = rng.below(keys);
            if rng.below(8) == 0 {
                map.pin().remove(&k);
                model.remove(&k);
            } else {
                map.pin().insert(k, w as u64);
                model.insert(k, w as u64);
            }
            if w % every == every - 1 {
                snaps.push((
                    map.read_only_snapshot(),
                    model.iter().map(|(k, v)| (*k, *v)).collect(),
                ));
                if snaps.len() > 8 {
                    let at = match order {
                        Order::Fifo => 0,
                        Order::Lifo => snaps.len() - 1,
                        Order::Random => rng.below(snaps.len() as u64) as usize,
                    };
                    let (snap, expected) = snaps.remove(at);
                    let mut got: Vec<_> = snap.iter().map(|(k, v)| (*k, *v)).collect();
                    got.sort();
                    assert_eq!(got, expected, "{order:?}: a snapshot changed");
                }
            }
            if w % check == check - 1 {
                assert_no_garbage(&format!("{order:?}, after {w} writes"));
            }
        }
        // Every snapshot still reads what it froze.
        for (snap, expected) in &snaps {
            let mut got: Vec<_> = snap.iter().map(|(k, v)| (*k, *v)).collect();
            got.sort();
            assert_eq!(&got, expected);
        }
    }
    assert_all_freed(&format!("{order:?}"));
}

#[test]
fn snapshots_dropped_oldest_first() {
    let _serial = serial();
    churn(Order::Fifo, 1);
}

#[test]
fn snapshots_dropped_newest_first() {
    let _serial = serial();
    churn(Order::Lifo, 2);
}

#[test]
fn snapshots_dropped_at_random() {
    let _serial = serial();
    churn(Order::Random, 3);
}

/// One snapshot lives through the whole churn (and `len`, which takes and drops a snapshot,
/// runs in a loop beside it): garbage stays nil, eras do not pile up, and the long-lived
/// snapshot keeps exactly its contents.
#[test]
fn a_long_lived_snapshot_and_len_in_a_loop() {
    let _serial = serial();
    let keys = size(2_000, 64) as u64;
    {
        let map: Ctrie<u64, u64> = (0..keys).map(|k| (k, k)).collect();
        let old = map.read_only_snapshot();
        let mut rng = Rng::new(7);
        let check = size(1_000, 50) as u64;
        for w in 0..size(20_000, 200) as u64 {
            map.pin().insert(rng.below(keys), keys + w);
            assert_eq!(map.len(), keys as usize);
            if w % check == check - 1 {
                assert_no_garbage("long-lived snapshot");
                let (_, _, eras) = census();
                assert!(eras <= 2, "{eras} eras allocated with one snapshot alive");
            }
        }
        assert_eq!(old.len(), keys as usize);
        assert!(old.iter().all(|(k, v)| k == v));
    }
    assert_all_freed("long-lived snapshot");
}

/// `clear` with snapshots alive: they keep their contents, the cleared tree is freed as they
/// go, and nothing is left at the end.
#[test]
fn clear_under_live_snapshots() {
    let _serial = serial();
    let n = size(3_000, 80) as u64;
    {
        let map: Ctrie<u64, u64> = (0..n).map(|k| (k, k)).collect();
        let before = map.read_only_snapshot();
        for k in 0..n / 2 {
            map.pin().insert(k, k + 1);
        }
        let between = map.read_only_snapshot();
        map.clear();
        for k in 0..n / 4 {
            map.pin().insert(k, 7);
        }
        assert_no_garbage("cleared, two snapshots alive");
        assert_eq!(before.len(), n as usize);
        assert!(before.iter().all(|(k, v)| k == v));
        assert_eq!(between.get(&0), Some(&1));
        assert_eq!(between.get(&(n - 1)), Some(&(n - 1)));
        drop(between);
        assert_no_garbage("cleared, one snapshot left");
        assert!(before.iter().all(|(k, v)| k == v));
        drop(before);
        assert_no_garbage("cleared, no snapshot left");
        assert_eq!(map.len(), (n / 4) as usize);
        map.clear();
        map.clear();
    }
    assert_all_freed("clear");
}

/// Three writable snapshots deep (a fork of a fork of a fork), each written after it was taken,
/// dropped in each of the 6 orders: every trie keeps its own contents until it goes, and
/// nothing is left at the end.
#[test]
fn three_deep_forks_dropped_in_every_order() {
    let _serial = serial();
    let n = size(1_000, 40) as u64;
    let orders = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in orders {
        {
            let t0: Ctrie<u64, u64> = (0..n).map(|k| (k, 0)).collect();
            let t1 = t0.snapshot();
            for k in 0..n / 2 {
                t0.pin().insert(k, 10);
                t1.pin().insert(k + n / 4, 11);
            }
            let t2 = t1.snapshot();
            // A read-only snapshot of a fork too, dropped along with it.
            let s1 = t1.read_only_snapshot();
            let s1_contents = {
                let mut v: Vec<_> = s1.iter().map(|(k, v)| (*k, *v)).collect();
                v.sort();
                v
            };
            for k in 0..n / 3 {
                t1.pin().remove(&k);
                t2.pin().insert(k, 22);
                t0.pin().insert(n + k, 10);
            }
            let expected = |t: &Ctrie<u64, u64>| {
                let mut v: Vec<_> = t.pin().iter().map(|(k, v)| (*k, *v)).collect();
                v.sort();
                v
            };
            let mut tries = [Some((t0, None)), Some((t1, Some(s1))), Some((t2, None))];
            let contents: Vec<_> = tries
                .iter()
                .map(|t| expected(&t.as_ref().unwrap().0))
                .collect();
            for (step, &i) in order.iter().enumerate() {
                drop(tries[i].take());
                assert_no_garbage_beyond_forks(&format!("{order:?}, step {step}"));
                for (j, t) in tries.iter().enumerate() {
                    if let Some((t, s)) = t {
                        assert_eq!(expected(t), contents[j], "{order:?}: trie {j} changed");
                        if let Some(s) = s {
                            let mut v: Vec<_> = s.iter().map(|(k, v)| (*k, *v)).collect();
                            v.sort();
                            assert_eq!(v, s1_contents, "{order:?}: the fork's snapshot changed");
                        }
                    }
                }
            }
        }
        assert_all_freed(&format!("forks dropped in order {order:?}"));
    }
}

/// Forks may keep unreachable nodes of their origin (N4): only check that the epoch flush
/// leaves nothing unplaced, by flushing; the final `assert_all_freed` checks completeness.
fn assert_no_garbage_beyond_forks(_what: &str) {
    flush();
}
