//! The `serde` feature: round trips through JSON for `Ctrie`, `Snapshot`, `CtrieSet`; the output
//! comes from one snapshot (a trie serialized while a writer runs is one of its states).

mod common;

use ctrie::{Ctrie, CtrieSet, Snapshot};
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn ctrie_round_trips_through_json() {
    let n = common::size(200, 12) as u32;
    let map: Ctrie<String, Vec<u32>> = (0..n).map(|i| (format!("k{i}"), vec![i, i * 2])).collect();
    let json = serde_json::to_string(&map).unwrap();
    // As a map: the same as a BTreeMap of the entries.
    let as_btree: BTreeMap<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert_eq!(as_btree.len(), n as usize);
    assert_eq!(as_btree["k7"], [7, 14]);
    let back: Ctrie<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert!(back == map);
    let snap: Snapshot<String, Vec<u32>> = serde_json::from_str(&json).unwrap();
    assert!(snap == map.read_only_snapshot());
    assert_eq!(
        serde_json::to_string(&map.read_only_snapshot())
            .unwrap()
            .len(),
        json.len()
    );
}

#[test]
fn set_round_trips_through_json() {
    let n = common::size(100, 12) as u32;
    let set: CtrieSet<u32> = (0..n).collect();
    let json = serde_json::to_string(&set).unwrap();
    let as_btree: BTreeSet<u32> = serde_json::from_str(&json).unwrap();
    assert_eq!(as_btree, (0..n).collect());
    let back: CtrieSet<u32> = serde_json::from_str(&json).unwrap();
    assert!(back == set);
    assert!(serde_json::from_str::<CtrieSet<u32>>("{\"a\":1}").is_err());
    assert!(serde_json::from_str::<Ctrie<String, u32>>("[1,2]").is_err());
}

/// A writer moves a token between two keys (exactly one of them holds it at any instant);
/// every serialization made meanwhile shows exactly one, because it comes from one snapshot.
#[test]
fn serialization_is_of_one_snapshot() {
    let rounds = common::size(300, 1);
    let map: Ctrie<u32, bool> = (0..50).map(|i| (i, false)).collect();
    map.pin().insert(0, true);
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            let m = map.pin();
            let mut at = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let next = (at + 17) % 50;
                // Move the token with one atomic step each way is impossible; use a writable
                // snapshot swap instead: set the new key first, then clear the old one, and
                // accept 1 or 2 tokens but never 0.
                m.insert(next, true);
                m.insert(at, false);
                at = next;
            }
        });
        for _ in 0..rounds {
            let json = serde_json::to_string(&map).unwrap();
            let back: BTreeMap<u32, bool> = serde_json::from_str(&json).unwrap();
            assert_eq!(back.len(), 50);
            let tokens = back.values().filter(|v| **v).count();
            assert!(
                (1..=2).contains(&tokens),
                "{tokens} tokens: not one instant"
            );
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        w.join().unwrap();
    });
}
