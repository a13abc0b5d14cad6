//! Verification support shared by the tests (`cargo test -p verify`) and the cargo-fuzz targets
//! in `fuzz/`: each fuzz target is a function of its input bytes here, so that the committed
//! seeds in `fuzz/seeds/` are replayed by a plain `cargo test` without the fuzzer.
//!
//! * [`ctrie_ops`]: a sequence of operations on a trie, its writable and read-only snapshots,
//!   compared step by step with `HashMap` models;
//! * [`ctrie_threads`]: operations split over two threads, the history checked by [`lin`];
//! * [`snapcache_stream`]: a random update/status stream through the cache, with followers
//!   starting from every breadcrumb.

pub mod lin;

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hasher};

use arbitrary::{Arbitrary, Unstructured};
use ctrie::{Ctrie, Snapshot};

/// A deterministic hasher (so fuzz findings reproduce), or one that collides fully.
#[derive(Clone, Copy, Debug, Default)]
pub struct FuzzHasher {
    constant: bool,
}

/// The [`Hasher`] of [`FuzzHasher`].
#[derive(Debug, Default)]
pub struct FuzzHasherState(DefaultHasher, bool);

impl Hasher for FuzzHasherState {
    fn finish(&self) -> u64 {
        if self.1 {
            42
        } else {
            self.0.finish()
        }
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes)
    }
}

impl FuzzHasher {
    /// The hasher under which every key collides (L-nodes, T-nodes, deep chains).
    pub fn colliding() -> Self {
        FuzzHasher { constant: true }
    }
}

impl BuildHasher for FuzzHasher {
    type Hasher = FuzzHasherState;
    fn build_hasher(&self) -> FuzzHasherState {
        FuzzHasherState(
            BuildHasherDefault::<DefaultHasher>::default().build_hasher(),
            self.constant,
        )
    }
}

/// One step of [`ctrie_ops`].
#[derive(Arbitrary, Debug, Clone)]
pub enum Step {
    /// Upsert.
    Insert(u8, u8),
    /// Insert if absent.
    InsertIfAbsent(u8, u8),
    /// Get or insert with.
    GetOrInsert(u8, u8),
    /// Replace if present.
    Replace(u8, u8),
    /// Compare and replace.
    CompareAndReplace(u8, u8, u8),
    /// Remove.
    Remove(u8),
    /// Remove if the value matches.
    RemoveIf(u8, u8),
    /// Lookups of one key.
    Get(u8),
    /// `len`, `is_empty` and a full iteration, compared with the model.
    Scan,
    /// Clear.
    Clear,
    /// A writable snapshot becomes a new target.
    Snapshot,
    /// A read-only snapshot is kept and checked after every later step.
    ReadOnlySnapshot,
    /// A writable trie made from a kept read-only snapshot becomes a new target.
    Thaw(u8),
    /// Switch target.
    Target(u8),
    /// Drop a kept read-only snapshot or a writable trie.
    Drop(u8, bool),
}

type Model = HashMap<u8, u8>;

/// The `ctrie_ops` fuzz target: runs the steps encoded by `data` against a trie (and the
/// snapshots the steps create) and `HashMap` models, panicking on any difference.
pub fn ctrie_ops(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(constant) = bool::arbitrary(&mut u) else {
        return;
    };
    let Ok(steps) = Vec::<Step>::arbitrary(&mut u) else {
        return;
    };
    run_steps(FuzzHasher { constant }, &steps);
}

/// Runs `steps` (see [`ctrie_ops`]).
pub fn run_steps(hasher: FuzzHasher, steps: &[Step]) {
    let mut tries: Vec<(Ctrie<u8, u8, FuzzHasher>, Model)> =
        vec![(Ctrie::with_hasher(hasher), Model::new())];
    let mut frozen: Vec<(Snapshot<u8, u8, FuzzHasher>, Model)> = Vec::new();
    let mut t = 0;
    for step in steps {
        let (trie, model) = &mut tries[t];
        match *step {
            Step::Insert(k, v) => assert_eq!(trie.pin().insert(k, v).copied(), model.insert(k, v)),
            Step::InsertIfAbsent(k, v) => {
                assert_eq!(
                    trie.pin().insert_if_absent(k, v).copied(),
                    model.get(&k).copied()
                );
                model.entry(k).or_insert(v);
            }
            Step::GetOrInsert(k, v) => {
                assert_eq!(
                    *trie.pin().get_or_insert_with(k, || v),
                    *model.entry(k).or_insert(v)
                );
            }
            Step::Replace(k, v) => {
                let prev = model.get(&k).copied();
                assert_eq!(trie.pin().replace(k, v).copied(), prev);
                if prev.is_some() {
                    model.insert(k, v);
                }
            }
            Step::CompareAndReplace(k, e, n) => {
                let hit = model.get(&k) == Some(&e);
                assert_eq!(trie.pin().compare_and_replace(k, &e, n), hit);
                if hit {
                    model.insert(k, n);
                }
            }
            Step::Remove(k) => assert_eq!(trie.pin().remove(&k).copied(), model.remove(&k)),
            Step::RemoveIf(k, v) => {
                let hit = model.get(&k) == Some(&v);
                assert_eq!(trie.pin().remove_if(&k, &v), hit);
                if hit {
                    model.remove(&k);
                }
            }
            Step::Get(k) => {
                let r = trie.pin();
                assert_eq!(r.get(&k), model.get(&k));
                assert_eq!(r.get_key_value(&k), model.get_key_value(&k));
                assert_eq!(r.contains_key(&k), model.contains_key(&k));
            }
            Step::Scan => {
                assert_eq!(trie.len(), model.len());
                assert_eq!(trie.is_empty(), model.is_empty());
                let r = trie.pin();
                let seen: Vec<(u8, u8)> = r.iter().map(|(k, v)| (*k, *v)).collect();
                assert_eq!(seen.len(), model.len(), "an entry yielded twice or missed");
                assert!(seen.iter().all(|(k, v)| model.get(k) == Some(v)));
            }
            Step::Clear => {
                trie.clear();
                model.clear();
            }
            Step::Snapshot => {
                let copy = (trie.snapshot(), model.clone());
                tries.push(copy);
                t = tries.len() - 1;
            }
            Step::ReadOnlySnapshot => frozen.push((trie.read_only_snapshot(), model.clone())),
            Step::Thaw(i) => {
                if !frozen.is_empty() {
                    let (s, m) = &frozen[i as usize % frozen.len()];
                    tries.push((s.snapshot(), m.clone()));
                    t = tries.len() - 1;
                }
            }
            Step::Target(i) => t = i as usize % tries.len(),
            Step::Drop(i, snapshot) => {
                if snapshot && !frozen.is_empty() {
                    frozen.swap_remove(i as usize % frozen.len());
                } else if !snapshot && tries.len() > 1 {
                    tries.swap_remove(i as usize % tries.len());
                    t = 0;
                }
            }
        }
        for (s, m) in &frozen {
            assert_eq!(s.len(), m.len());
            for (k, v) in m {
                assert_eq!(s.get(k), Some(v));
            }
        }
    }
}

/// One operation of a thread in [`ctrie_threads`].
#[derive(Arbitrary, Debug, Clone, Copy)]
pub enum ThreadOp {
    /// Get.
    Get(u8),
    /// Insert (a fresh value).
    Insert(u8),
    /// Insert if absent (a fresh value).
    InsertIfAbsent(u8),
    /// Replace (a fresh value).
    Replace(u8),
    /// Compare the value last read by this thread, replace by a fresh one.
    CompareAndReplace(u8),
    /// Remove.
    Remove(u8),
    /// Remove if the value is the one last read by this thread.
    RemoveIf(u8),
    /// A read-only snapshot, read after it was taken.
    Snapshot,
}

/// The `ctrie_threads` fuzz target: two threads run the operations encoded by `data`
/// concurrently on one trie; the recorded history must be linearizable ([`lin::check`]).
pub fn ctrie_threads(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let Ok(constant) = bool::arbitrary(&mut u) else {
        return;
    };
    let Ok(a) = Vec::<ThreadOp>::arbitrary(&mut u) else {
        return;
    };
    let Ok(b) = Vec::<ThreadOp>::arbitrary(&mut u) else {
        return;
    };
    run_threads(
        FuzzHasher { constant },
        &[&a[..a.len().min(40)], &b[..b.len().min(40)]],
        8,
    );
}

/// Runs each list of operations on its own thread over keys `0..keys` and checks the history.
/// Panics with the violation if it is not linearizable.
pub fn run_threads(hasher: FuzzHasher, threads: &[&[ThreadOp]], keys: u64) {
    let m: Ctrie<u64, u64, FuzzHasher> = Ctrie::with_hasher(hasher);
    let initial: BTreeMap<u64, u64> = (0..keys).filter(|k| k % 2 == 0).map(|k| (k, k)).collect();
    for (k, v) in &initial {
        m.pin().insert(*k, *v);
    }
    let rec = lin::Recorder::default();
    let barrier = std::sync::Barrier::new(threads.len());
    std::thread::scope(|s| {
        let mut handles = Vec::new();
        for (t, ops) in threads.iter().enumerate() {
            let (m, rec, barrier) = (&m, &rec, &barrier);
            handles.push(s.spawn(move || {
                barrier.wait();
                // Fresh values: thread in the top bits, a counter below, never equal to a key.
                let mut next = ((t as u64 + 1) << 32) | 1;
                let mut fresh = || {
                    next += 1;
                    next
                };
                let mut last = 0;
                let mut snapshots = Vec::new();
                for op in ops.iter() {
                    use lin::{Op, What};
                    match *op {
                        ThreadOp::Snapshot => {
                            // The response is stamped when the snapshot is taken; its contents
                            // are read only after the thread's last operation, and must still
                            // be those of that interval.
                            let invoke = rec.now();
                            let snap = m.read_only_snapshot();
                            let response = rec.now();
                            snapshots.push((invoke, response, snap));
                        }
                        ThreadOp::Get(k) => {
                            let k = k as u64 % keys;
                            let r = rec.record(|| {
                                let r = m.pin().get(&k).copied();
                                (r, What::Key(k, Op::Get(r)))
                            });
                            last = r.unwrap_or(0);
                        }
                        ThreadOp::Insert(k) => {
                            let (k, v) = (k as u64 % keys, fresh());
                            rec.record(|| {
                                let r = m.pin().insert(k, v).copied();
                                ((), What::Key(k, Op::Insert(v, r)))
                            });
                        }
                        ThreadOp::InsertIfAbsent(k) => {
                            let (k, v) = (k as u64 % keys, fresh());
                            rec.record(|| {
                                let r = m.pin().insert_if_absent(k, v).copied();
                                ((), What::Key(k, Op::InsertIfAbsent(v, r)))
                            });
                        }
                        ThreadOp::Replace(k) => {
                            let (k, v) = (k as u64 % keys, fresh());
                            rec.record(|| {
                                let r = m.pin().replace(k, v).copied();
                                ((), What::Key(k, Op::Replace(v, r)))
                            });
                        }
                        ThreadOp::CompareAndReplace(k) => {
                            let (k, v) = (k as u64 % keys, fresh());
                            rec.record(|| {
                                let r = m.pin().compare_and_replace(k, &last, v);
                                ((), What::Key(k, Op::CompareAndReplace(last, v, r)))
                            });
                        }
                        ThreadOp::Remove(k) => {
                            let k = k as u64 % keys;
                            rec.record(|| {
                                let r = m.pin().remove(&k).copied();
                                ((), What::Key(k, Op::Remove(r)))
                            });
                        }
                        ThreadOp::RemoveIf(k) => {
                            let k = k as u64 % keys;
                            rec.record(|| {
                                let r = m.pin().remove_if(&k, &last);
                                ((), What::Key(k, Op::RemoveIf(last, r)))
                            });
                        }
                    }
                }
                for (invoke, response, snap) in snapshots {
                    let view = snap.iter().map(|(k, v)| (*k, *v)).collect();
                    rec.push(lin::Event {
                        invoke,
                        response,
                        what: lin::What::Snapshot(view),
                    });
                }
            }));
        }
        // Joined explicitly: the scope only waits until the closures return, and a thread may
        // still be running its thread-local destructors after that. When the fuzzer exited at
        // such a moment, LeakSanitizer reported that thread's handle and TLS destructor
        // entries as leaks (112 bytes, once in CI, 2026-11-28).
        for h in handles {
            if let Err(panic) = h.join() {
                std::panic::resume_unwind(panic);
            }
        }
    });
    if let Err(e) = lin::check(&initial, &rec.history()) {
        panic!("not linearizable: {e}");
    }
}

/// The `snapcache_stream` fuzz target: a random stream of update lists and statuses through a
/// cache; afterwards a follower starting from any breadcrumb's snapshot and applying the later
/// deltas must end equal to the newest snapshot, and the chain's invariants must hold.
pub fn snapcache_stream(data: &[u8]) {
    use snapcache::{Cache, Config, SyncStatus, Update, UpdateType};
    let mut u = Unstructured::new(data);
    let Ok(max) = u8::arbitrary(&mut u) else {
        return;
    };
    let Ok(items) = Vec::<(bool, Vec<(u8, Option<u8>, bool)>, u8)>::arbitrary(&mut u) else {
        return;
    };
    let max = max as usize % 8 + 1;
    let cache = Cache::new(Config {
        max_batch_size: max,
        ..Default::default()
    });
    let first = cache.current_breadcrumb();
    let mut starts = vec![first.clone()];
    for (is_status, updates, status) in items.into_iter().take(64) {
        if is_status {
            let s = [
                SyncStatus::WaitForDatastore,
                SyncStatus::ResyncInProgress,
                SyncStatus::InSync,
            ][status as usize % 3];
            cache.on_status_updated(s).expect("open");
        } else {
            let us: Vec<Update> = updates
                .into_iter()
                .take(32)
                .map(|(k, v, updated)| match v {
                    None => Update::delete(vec![k % 16]),
                    Some(v) => Update::set(
                        vec![k % 16],
                        vec![v % 4],
                        if updated {
                            UpdateType::Updated
                        } else {
                            UpdateType::New
                        },
                    ),
                })
                .collect();
            cache.on_updates(us).expect("open");
        }
        starts.push(cache.current_breadcrumb());
    }
    cache.shutdown();
    let last = cache.current_breadcrumb();
    let as_map = |b: &snapcache::Breadcrumb| -> BTreeMap<Vec<u8>, Vec<u8>> {
        b.kvs
            .iter()
            .map(|(k, u)| {
                (
                    k.to_vec(),
                    u.value.as_deref().expect("stored values").to_vec(),
                )
            })
            .collect()
    };
    let target = as_map(&last);
    for start in starts {
        let mut state = as_map(&start);
        let mut b = start;
        while let Some(n) = b.try_next() {
            assert_eq!(n.sequence_number, b.sequence_number + 1);
            assert!(n.deltas.len() <= max);
            assert!(!n.deltas.is_empty() || n.sync_status != b.sync_status);
            for d in &n.deltas {
                match &d.value {
                    Some(v) => state.insert(d.key.to_vec(), v.to_vec()),
                    None => state.remove(&d.key[..]),
                };
            }
            assert_eq!(
                state,
                as_map(&n),
                "snapshot {} != previous + deltas",
                n.sequence_number
            );
            assert!(n.kvs.iter().all(|(_, u)| u.update_type == UpdateType::New));
            b = n;
        }
        assert_eq!(state, target);
    }
}
