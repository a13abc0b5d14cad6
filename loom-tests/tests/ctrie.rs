//! Loom models of the Ctrie: every interleaving (up to the preemption bound set in `run.sh`) of
//! small concurrent scenarios, with crossbeam-epoch's pinning and reclamation modelled too.
#![cfg(ctrie_loom)]

mod common;

use std::hash::{BuildHasher, Hasher};

use ctrie::Ctrie;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;

use common::{flush, keep};

/// Hash = the key itself, so a test chooses where keys go: keys equal modulo 32 share their
/// root slot; keys with the same value collide fully (L-nodes need a constant part, below).
#[derive(Clone, Copy, Default)]
struct Identity;
struct IdentityHasher(u64);
impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!()
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
impl BuildHasher for Identity {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

/// Every key hashes alike: the second key makes an L-node.
#[derive(Clone, Copy, Default)]
struct Constant;
impl BuildHasher for Constant {
    type Hasher = IdentityHasher;
    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(7)
    }
}
impl Constant {
    fn map() -> Ctrie<u64, u64, Constant> {
        Ctrie::with_hasher(Constant)
    }
}

/// A key whose writes to `Hasher` are ignored: with `Constant`, every key hashes to 7.
type Map = Ctrie<u64, u64, Identity>;

fn map() -> Map {
    Ctrie::with_hasher(Identity)
}

/// `loom::model`, with a branch budget large enough for the final flushes (which run on one
/// thread, so they add length, not interleavings). `LOOM_MAX_PREEMPTIONS` is read from the
/// environment by the builder.
fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.max_branches = 1_000_000;
    b.check(f);
}

#[test]
fn concurrent_inserts_into_one_cnode() {
    model(|| {
        let m = Arc::new(map());
        let t = {
            let m = m.clone();
            keep(move || assert_eq!(m.pin().insert(1, 10), None))
        };
        assert_eq!(m.pin().insert(2, 20), None);
        t.wait();
        assert_eq!(m.pin().get(&1), Some(&10));
        assert_eq!(m.pin().get(&2), Some(&20));
        assert_eq!(m.len(), 2);
        drop(m);
        t.finish();
    });
}

#[test]
fn insert_vs_remove_with_contraction_and_clean_parent() {
    model(|| {
        // 0 and 32 share root slot 0 and sit in a C-node one level down; removing one leaves a
        // tomb that cleanParent merges into the root, while another key goes in there.
        let m = Arc::new(map());
        m.pin().insert(0, 0);
        m.pin().insert(32, 32);
        let t = {
            let m = m.clone();
            keep(move || assert_eq!(m.pin().remove(&0), Some(&0)))
        };
        assert_eq!(m.pin().insert(64, 64), None);
        t.wait();
        let r = m.pin();
        assert_eq!(r.get(&0), None);
        assert_eq!(r.get(&32), Some(&32));
        assert_eq!(r.get(&64), Some(&64));
        drop(r);
        assert_eq!(m.len(), 2);
        drop(m);
        t.finish();
    });
}

#[test]
fn write_racing_a_read_only_snapshot_is_all_or_nothing() {
    model(|| {
        let m = Arc::new(map());
        m.pin().insert(1, 1);
        let t = {
            let m = m.clone();
            keep(move || {
                m.pin().insert(1, 2);
                m.pin().insert(33, 3); // same root slot: a deeper write
            })
        };
        let snap = m.read_only_snapshot();
        let first = (snap.get(&1).copied(), snap.get(&33).copied());
        t.wait();
        // The snapshot saw a prefix of the writer's two writes, and never changes afterwards.
        assert!(
            matches!(
                first,
                (Some(1), None) | (Some(2), None) | (Some(2), Some(3))
            ),
            "{first:?}"
        );
        assert_eq!((snap.get(&1).copied(), snap.get(&33).copied()), first);
        // The writes that the snapshot rolled back were retried: the live trie has both.
        assert_eq!(m.pin().get(&1), Some(&2));
        assert_eq!(m.pin().get(&33), Some(&3));
        drop(snap);
        drop(m);
        t.finish();
    });
}

#[test]
fn snapshot_racing_clear() {
    model(|| {
        let m = Arc::new(map());
        m.pin().insert(1, 1);
        m.pin().insert(2, 2);
        let t = {
            let m = m.clone();
            keep(move || m.clear())
        };
        let snap = m.read_only_snapshot();
        let w = m.snapshot();
        t.wait();
        assert!(
            snap.len() == 2 || snap.is_empty(),
            "a snapshot saw half a clear"
        );
        assert!(w.len() == 2 || w.is_empty());
        assert!(m.is_empty());
        drop((snap, w, m));
        t.finish();
    });
}

#[test]
fn lnode_insert_and_remove_race() {
    model(|| {
        let m = Arc::new(Constant::map());
        m.pin().insert(1, 1);
        m.pin().insert(2, 2); // an L-node below a chain of single-slot C-nodes
        let t = {
            let m = m.clone();
            keep(move || assert_eq!(m.pin().remove(&1), Some(&1)))
        };
        assert_eq!(m.pin().insert(3, 3), None);
        t.wait();
        let r = m.pin();
        assert_eq!(
            (r.get(&1), r.get(&2), r.get(&3)),
            (None, Some(&2), Some(&3))
        );
        drop(r);
        drop(m);
        t.finish();
    });
}

/// A value's drop counter: every value dropped exactly once, never while reachable.
struct Counted(Arc<AtomicUsize>, u64);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn reclamation_with_a_pinned_reader_and_a_live_snapshot() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m: Arc<Ctrie<u64, Counted, Identity>> = Arc::new(Ctrie::with_hasher(Identity));
        m.pin().insert(1, Counted(drops.clone(), 1));
        let snap = m.read_only_snapshot();
        let reader = {
            let m = m.clone();
            keep(move || {
                let r = m.pin();
                // Whatever it finds stays readable while pinned, however reclamation runs.
                if let Some(v) = r.get(&1) {
                    assert!(v.1 == 1 || v.1 == 2);
                }
            })
        };
        m.pin().insert(1, Counted(drops.clone(), 2));
        m.pin().remove(&1);
        flush();
        // The snapshot still holds the first value, whatever reclamation ran.
        assert_eq!(snap.get(&1).map(|v| v.1), Some(1));
        assert!(
            drops.load(Ordering::SeqCst) <= 1,
            "the snapshot's value was dropped"
        );
        reader.wait();
        drop(snap);
        drop(m);
        reader.finish();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "each value dropped exactly once"
        );
    });
}

// Generation intervals (ctrie's `reclaim.rs`): the races of retirement against the eras that
// snapshots and forks register. Debug assertions are on (run.sh), so the debug oracle checks
// every free against exact shadow counts, in every interleaving.

/// A commit on the root racing `freeze_root`: the snapshot's era must be registered before its
/// RDCSS, or the write that follows it in the new generation retires (and frees) the root's old
/// main node, which the snapshot still reads.
#[test]
fn root_commit_racing_freeze_root() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m: Arc<Ctrie<u64, Counted, Identity>> = Arc::new(Ctrie::with_hasher(Identity));
        m.pin().insert(1, Counted(drops.clone(), 1));
        let (taken, taken_rx) = loom::sync::mpsc::channel::<()>();
        let writer = {
            let (m, drops) = (m.clone(), drops.clone());
            keep(move || {
                // A root-level write: it replaces the root's C-node.
                m.pin().insert(2, Counted(drops.clone(), 2));
                taken_rx.recv().unwrap();
                flush();
            })
        };
        let snap = m.read_only_snapshot();
        taken.send(()).unwrap();
        writer.wait();
        flush();
        assert_eq!(snap.get(&1).map(|v| v.1), Some(1));
        let two = snap.get(&2).map(|v| v.1);
        assert!(two.is_none() || two == Some(2));
        assert_eq!(drops.load(Ordering::SeqCst), 0, "a live value was dropped");
        drop(snap);
        drop(m);
        writer.finish();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "each value dropped exactly once"
        );
    });
}

/// A trie of keys 1 and 33 (values 1 and 33), which share their root slot, so they sit one
/// level down; and the counter of dropped values.
fn two_keys_one_level_down() -> (Arc<AtomicUsize>, Arc<Ctrie<u64, Counted, Identity>>) {
    let drops = Arc::new(AtomicUsize::new(0));
    let m: Arc<Ctrie<u64, Counted, Identity>> = Arc::new(Ctrie::with_hasher(Identity));
    m.pin().insert(1, Counted(drops.clone(), 1));
    m.pin().insert(33, Counted(drops.clone(), 33));
    (drops, m)
}

/// A write after a snapshot retires the path it copies and attaches it to the snapshot's era,
/// racing the snapshot's drop (the era's death): each node either goes with the era or is
/// placed elsewhere, never lost, never freed twice.
#[test]
fn retire_attaching_to_a_snapshot_racing_its_drop() {
    model(|| {
        let (drops, m) = two_keys_one_level_down();
        let snap = m.read_only_snapshot();
        let writer = {
            let (m, drops) = (m.clone(), drops.clone());
            keep(move || {
                // Renews the path below the root, retiring nodes born before the snapshot.
                m.pin().insert(33, Counted(drops.clone(), 34));
                flush();
            })
        };
        assert_eq!(snap.get(&33).map(|v| v.1), Some(33));
        drop(snap);
        writer.wait();
        flush();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            1,
            "only the replaced value goes"
        );
        assert_eq!(m.pin().get(&33).map(|v| v.1), Some(34));
        drop(m);
        writer.finish();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "each value dropped exactly once"
        );
    });
}

/// A writer in a trie racing a writer in its writable snapshot (a fork), both then dropped: the
/// fork's reservation keeps the shared version alive for the fork, and everything is freed
/// exactly once.
#[test]
fn writers_in_a_trie_and_its_fork() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let t0: Ctrie<u64, Counted, Identity> = Ctrie::with_hasher(Identity);
        t0.pin().insert(1, Counted(drops.clone(), 1));
        let t1 = t0.snapshot();
        let fork_writer = {
            let drops = drops.clone();
            keep(move || {
                t1.pin().insert(1, Counted(drops.clone(), 11));
                assert_eq!(t1.pin().get(&1).map(|v| v.1), Some(11));
                drop(t1);
                flush();
            })
        };
        t0.pin().insert(1, Counted(drops.clone(), 10));
        assert_eq!(t0.pin().get(&1).map(|v| v.1), Some(10));
        fork_writer.wait();
        drop(t0);
        fork_writer.finish();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            3,
            "each value dropped exactly once"
        );
    });
}

/// A dead era's settlement on its lineage's ready list (N7), run by a writer's commits (one
/// placement per commit under loom, so a commit lists the rest again) while the fallback that
/// follows its listing runs on another thread: each job is run by one thread at a time, nothing
/// is freed that the live trie still holds, and nothing is left.
#[test]
fn a_writer_settling_a_dead_era_racing_its_fallback() {
    model(|| {
        let (drops, m) = two_keys_one_level_down();
        let snap = m.read_only_snapshot();
        // Renews the path below the root: its old nodes go to the snapshot's era.
        m.pin().insert(33, Counted(drops.clone(), 34));
        // The era dies: its settlement is listed a grace period later.
        drop(snap);
        let writer = {
            let (m, drops) = (m.clone(), drops.clone());
            keep(move || {
                m.pin().insert(1, Counted(drops.clone(), 2));
                m.pin().insert(1, Counted(drops.clone(), 3));
                assert_eq!(m.pin().get(&33).map(|v| v.1), Some(34));
            })
        };
        // Lists the settlement, and runs its fallback, racing the writer's commits.
        flush();
        writer.wait();
        assert_eq!(m.pin().get(&1).map(|v| v.1), Some(3));
        assert_eq!(m.pin().get(&33).map(|v| v.1), Some(34));
        assert!(
            drops.load(Ordering::SeqCst) <= 3,
            "a live value was dropped"
        );
        drop(m);
        writer.finish();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            5,
            "each value dropped exactly once"
        );
    });
}
