//! Loom models of the Ctrie: every interleaving (up to the preemption bound set in `run.sh`) of
//! small concurrent scenarios, with crossbeam-epoch's pinning and reclamation modelled too.
#![cfg(ctrie_loom)]

use std::hash::{BuildHasher, Hasher};

use ctrie::Ctrie;
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;

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

/// Drives reclamation on the (by now only) thread. Whatever is still queued when the model ends
/// is run when loom drops the default collector, before its leak check.
fn flush() {
    for _ in 0..4 {
        ctrie::pin().flush();
    }
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
            thread::spawn(move || assert_eq!(m.pin().insert(1, 10), None))
        };
        assert_eq!(m.pin().insert(2, 20), None);
        t.join().unwrap();
        assert_eq!(m.pin().get(&1), Some(&10));
        assert_eq!(m.pin().get(&2), Some(&20));
        assert_eq!(m.len(), 2);
        drop(m);
        flush();
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
            thread::spawn(move || assert_eq!(m.pin().remove(&0), Some(&0)))
        };
        assert_eq!(m.pin().insert(64, 64), None);
        t.join().unwrap();
        let r = m.pin();
        assert_eq!(r.get(&0), None);
        assert_eq!(r.get(&32), Some(&32));
        assert_eq!(r.get(&64), Some(&64));
        drop(r);
        assert_eq!(m.len(), 2);
        drop(m);
        flush();
    });
}

#[test]
fn write_racing_a_read_only_snapshot_is_all_or_nothing() {
    model(|| {
        let m = Arc::new(map());
        m.pin().insert(1, 1);
        let t = {
            let m = m.clone();
            thread::spawn(move || {
                m.pin().insert(1, 2);
                m.pin().insert(33, 3); // same root slot: a deeper write
            })
        };
        let snap = m.read_only_snapshot();
        let first = (snap.get(&1).copied(), snap.get(&33).copied());
        t.join().unwrap();
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
        flush();
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
            thread::spawn(move || m.clear())
        };
        let snap = m.read_only_snapshot();
        let w = m.snapshot();
        t.join().unwrap();
        assert!(
            snap.len() == 2 || snap.is_empty(),
            "a snapshot saw half a clear"
        );
        assert!(w.len() == 2 || w.is_empty());
        assert!(m.is_empty());
        drop((snap, w, m));
        flush();
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
            thread::spawn(move || assert_eq!(m.pin().remove(&1), Some(&1)))
        };
        assert_eq!(m.pin().insert(3, 3), None);
        t.join().unwrap();
        let r = m.pin();
        assert_eq!(
            (r.get(&1), r.get(&2), r.get(&3)),
            (None, Some(&2), Some(&3))
        );
        drop(r);
        drop(m);
        flush();
    });
}

/// A value's drop counter: every value dropped exactly once, never while reachable.
struct Counted(Arc<AtomicUsize>, u64);
impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// A latch: crossbeam-epoch under loom stops advancing its epoch once a model thread has
/// *finished* (its participant is only unregistered when loom tears the execution down), so
/// threads whose garbage a model wants to see collected stay alive, unpinned, until told.
#[derive(Clone, Default)]
struct Latch(Arc<loom::sync::atomic::AtomicBool>);
impl Latch {
    fn open(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    fn wait(&self) {
        while !self.0.load(Ordering::SeqCst) {
            thread::yield_now();
        }
    }
}

#[test]
fn reclamation_with_a_pinned_reader_and_a_live_snapshot() {
    model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let m: Arc<Ctrie<u64, Counted, Identity>> = Arc::new(Ctrie::with_hasher(Identity));
        m.pin().insert(1, Counted(drops.clone(), 1));
        let snap = m.read_only_snapshot();
        let (read, done) = (Latch::default(), Latch::default());
        let reader = {
            let (m, read, done) = (m.clone(), read.clone(), done.clone());
            thread::spawn(move || {
                {
                    let r = m.pin();
                    // Whatever it finds stays readable while pinned, however reclamation runs.
                    if let Some(v) = r.get(&1) {
                        assert!(v.1 == 1 || v.1 == 2);
                    }
                }
                drop(m);
                read.open();
                done.wait();
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
        read.wait();
        drop(snap);
        drop(m);
        flush();
        assert_eq!(
            drops.load(Ordering::SeqCst),
            2,
            "each value dropped exactly once"
        );
        done.open();
        reader.join().unwrap();
    });
}
