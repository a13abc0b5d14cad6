//! One regression test per bug the reference implementations had (REFERENCE.md §1).

mod common;

use common::{collect, size, ConstHash, FewBits, High4};
use ctrie::Ctrie;
use std::thread;

/// Go: generations of zero size compared equal, so GCAS never noticed snapshots. Here: many
/// snapshot/write cycles, every snapshot keeps exactly what it saw, at every depth.
#[test]
fn snapshots_are_noticed_by_writes_at_every_depth() {
    let n = size(2_000, 100) as u64;
    for hasher in [FewBits(64), FewBits(12)] {
        let m: Ctrie<u64, u64, FewBits> = Ctrie::with_hasher(hasher);
        let mut snaps = Vec::new();
        for i in 0..n {
            m.pin().insert(i % 97, i);
            if i % 50 == 0 {
                snaps.push((
                    m.read_only_snapshot(),
                    collect(m.read_only_snapshot().iter()),
                ));
            }
        }
        for (snap, expect) in &snaps {
            assert_eq!(&collect(snap), expect);
        }
    }
}

/// Go: a GCAS roll-back restored the wrong node. Writers racing snapshots have their writes
/// rolled back and retried; afterwards every write must be there exactly once.
#[test]
fn rolled_back_writes_are_retried_not_lost_or_corrupted() {
    let n = size(3_000, 80) as u64;
    let m: Ctrie<u64, u64> = Ctrie::new();
    thread::scope(|s| {
        for t in 0..2u64 {
            let m = &m;
            s.spawn(move || {
                let r = m.pin();
                for i in 0..n {
                    r.insert(i * 2 + t, i);
                }
            });
        }
        let m = &m;
        s.spawn(move || {
            for _ in 0..size(2_000, 40) {
                drop(m.read_only_snapshot());
            }
        });
    });
    let got = collect(m.pin().iter());
    assert_eq!(got.len(), 2 * n as usize);
    for (k, v) in got {
        assert_eq!(k / 2, v);
    }
}

/// Go: the walk passed the I-node's generation instead of the operation's start generation.
/// Writes below the root after a writable snapshot must not leak into the snapshot.
#[test]
fn deep_writes_after_snapshot_stay_on_their_side() {
    // With only 12 hash bits, keys pile up three levels deep and collide into L-nodes.
    let m: Ctrie<u64, u64, FewBits> = Ctrie::with_hasher(FewBits(12));
    let n = size(5_000, 200) as u64;
    for i in 0..n {
        m.pin().insert(i, i);
    }
    let w = m.snapshot();
    let ro = m.read_only_snapshot();
    for i in 0..n {
        m.pin().insert(i, i + 1);
        w.pin().remove(&i);
    }
    assert!(w.is_empty());
    assert!(ro.iter().all(|(k, v)| k == v));
    assert!(m.pin().iter().all(|(k, v)| *k + 1 == *v));
    assert_eq!((m.len(), ro.len()), (n as usize, n as usize));
}

/// Go: the iterator skipped T-nodes (tombs), so a snapshot taken after deleting half of 10,000
/// keys missed entries.
#[test]
fn iterator_yields_tombed_entries() {
    let n = size(10_000, 300) as u64;
    let m: Ctrie<u64, u64> = (0..n).map(|i| (i, i)).collect();
    for i in 0..n {
        if i % 2 == 0 {
            m.pin().remove(&i);
        }
    }
    // Take the snapshot right after the removals, before anything cleans the tombs up.
    let snap = m.read_only_snapshot();
    let got = collect(&snap);
    assert_eq!(got.len(), (n / 2) as usize);
    assert!(got.keys().all(|k| k % 2 == 1));
    assert_eq!(snap.len(), (n / 2) as usize);
}

/// Go: the read-only snapshot shared the live root: a snapshot of {a..f} later also showed a
/// key inserted afterwards.
#[test]
fn read_only_snapshot_does_not_share_the_live_root() {
    let m: Ctrie<&str, u32> = Ctrie::new();
    for (i, k) in ["a", "b", "c", "d", "e", "f"].into_iter().enumerate() {
        m.pin().insert(k, i as u32);
    }
    let snap = m.read_only_snapshot();
    m.pin().insert("g", 7);
    assert_eq!(snap.get("g"), None);
    assert_eq!(snap.len(), 6);
    assert_eq!(snap.iter().count(), 6);
}

/// Go: an L-node insert added a duplicate instead of replacing (insert foobar=1, zogzog=2,
/// foobar=3 with a constant hash; after removing foobar the old 1 reappeared).
#[test]
fn lnode_insert_replaces() {
    let m: Ctrie<&str, i32, ConstHash> = Ctrie::with_hasher(ConstHash);
    let r = m.pin();
    r.insert("foobar", 1);
    r.insert("zogzog", 2);
    assert_eq!(r.insert("foobar", 3), Some(&1));
    assert_eq!(m.len(), 2);
    assert_eq!(r.remove("foobar"), Some(&3));
    assert_eq!(r.get("foobar"), None);
    assert_eq!(m.len(), 1);
    assert_eq!(r.get("zogzog"), Some(&2));
}

/// Go: an L-node removal that lost its GCAS answered "not found". Racing removals and inserts on
/// one L-node: every removal of a present key must report it.
#[test]
fn lnode_removal_restarts_after_a_failed_gcas() {
    let n = size(400, 30) as u64;
    let m: Ctrie<u64, u64, ConstHash> = Ctrie::with_hasher(ConstHash);
    for k in 0..8 {
        m.pin().insert(k, k);
    }
    thread::scope(|s| {
        let m = &m;
        s.spawn(move || {
            let r = m.pin();
            for i in 0..n {
                // Keys 0..4: this thread owns them; each removal must find the key.
                let k = i % 4;
                assert_eq!(r.remove(&k), Some(&k), "lost removal of {k}");
                assert_eq!(r.insert(k, k), None);
            }
        });
        s.spawn(move || {
            let r = m.pin();
            for i in 0..n {
                r.insert(4 + i % 4, i);
            }
        });
    });
    assert_eq!(m.len(), 8);
}

/// Hashes agreeing on 60 bits put keys at the deepest level (4 bits left) and into L-nodes.
#[test]
fn deepest_level_and_full_collisions() {
    let m: Ctrie<u64, u64, High4> = Ctrie::with_hasher(High4);
    let n = size(300, 40) as u64;
    for i in 0..n {
        m.pin().insert(i, i);
    }
    let snap = m.read_only_snapshot();
    for i in (0..n).step_by(2) {
        assert_eq!(m.pin().remove(&i), Some(&i));
    }
    assert_eq!(m.len(), (n / 2) as usize);
    assert_eq!(snap.len(), n as usize);
    for i in 0..n {
        assert_eq!(m.pin().get(&i).copied(), (i % 2 == 1).then_some(i));
        assert_eq!(snap.get(&i), Some(&i));
    }
}

/// Scala: `isEmpty` computed the full size. Here it must at least be right in every shape.
#[test]
fn is_empty_in_every_shape() {
    let m: Ctrie<u64, u64, ConstHash> = Ctrie::with_hasher(ConstHash);
    assert!(m.is_empty());
    m.pin().insert(1, 1);
    assert!(!m.is_empty());
    m.pin().insert(2, 2); // an L-node deep below the root
    m.pin().remove(&1);
    assert!(!m.is_empty());
    m.pin().remove(&2);
    assert!(m.is_empty());
    assert!(m.read_only_snapshot().is_empty());
}
