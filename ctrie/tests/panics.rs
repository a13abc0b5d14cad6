//! A panic in user code called in the middle of an operation (a key's `Eq`, a value's
//! `PartialEq`, a predicate or an entry builder) unwinds out of that operation only: the
//! operation has no effect, and the trie and its snapshots keep their contents and keep working,
//! and nothing the operation was given or built is leaked.

mod common;

use std::cell::Cell;
use std::hash::{Hash, Hasher};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicIsize, Ordering};

use common::{flush_until, size};
use ctrie::Ctrie;

thread_local! {
    /// Makes every `Eq` of [`Key`] and [`Val`] on this thread panic.
    static BOOM: Cell<bool> = const { Cell::new(false) };
    /// Makes every `Hash` of [`Key`] on this thread panic.
    static HASH_BOOM: Cell<bool> = const { Cell::new(false) };
}

#[derive(Clone, Debug)]
struct Key(u32);

impl Hash for Key {
    fn hash<H: Hasher>(&self, h: &mut H) {
        assert!(!HASH_BOOM.get(), "Key::hash panics");
        self.0.hash(h)
    }
}
impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        assert!(!BOOM.get(), "Key::eq panics");
        self.0 == other.0
    }
}
impl Eq for Key {}

/// Values alive (created minus dropped).
static LIVE: AtomicIsize = AtomicIsize::new(0);

#[derive(Debug)]
struct Val(u32);

fn val(x: u32) -> Val {
    LIVE.fetch_add(1, Ordering::Relaxed);
    Val(x)
}

impl Clone for Val {
    fn clone(&self) -> Self {
        val(self.0)
    }
}

impl Drop for Val {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PartialEq for Val {
    fn eq(&self, other: &Self) -> bool {
        assert!(!BOOM.get(), "Val::eq panics");
        self.0 == other.0
    }
}

fn panics<R>(f: impl FnOnce() -> R) -> bool {
    catch_unwind(AssertUnwindSafe(f)).is_err()
}

fn contents(map: &Ctrie<Key, Val>) -> Vec<(u32, u32)> {
    let guard = map.guard();
    let mut v: Vec<_> = map.iter(&guard).map(|(k, v)| (k.0, v.0)).collect();
    v.sort_unstable();
    v
}

#[test]
fn panics_in_user_code_leave_the_trie_intact_and_usable() {
    let n = size(2_000, 200) as u32;
    let map: Ctrie<Key, Val> = Ctrie::new();
    for i in 0..n {
        map.pin().insert(Key(i), val(i));
    }
    let before: Vec<(u32, u32)> = (0..n).map(|i| (i, i)).collect();
    // Writes after a snapshot renew their paths first, so the panics below also interrupt
    // walks that are copying shared nodes.
    let snap = map.read_only_snapshot();
    let probes = [0, 1, n / 2, n - 1];

    BOOM.set(true);
    for &i in &probes {
        let m = map.pin();
        assert!(panics(|| m.get(&Key(i)).cloned()));
        assert!(panics(|| m.insert(Key(i), val(0)).cloned()));
        assert!(panics(|| m.insert_if_absent(Key(i), val(0)).cloned()));
        assert!(panics(|| m.replace(Key(i), val(0)).cloned()));
        assert!(panics(|| m.remove(&Key(i)).cloned()));
        assert!(panics(|| m.remove_if(&Key(i), &val(i))));
        assert!(panics(|| m.compare_and_replace(Key(i), &val(i), val(0))));
        assert!(panics(|| m.get_or_insert_with(Key(i), || val(0)).clone()));
        assert!(panics(|| m
            .insert_unless(&Key(i), |_| false, || (Key(i), val(0)))
            .is_ok()));
    }
    BOOM.set(false);
    HASH_BOOM.set(true);
    for &i in &probes {
        let m = map.pin();
        assert!(panics(|| m.get(&Key(i)).cloned()));
        assert!(panics(|| m.insert(Key(i), val(0)).cloned()));
        assert!(panics(|| m.remove(&Key(i)).cloned()));
        assert!(panics(|| m.get_or_insert_with(Key(i), || val(0)).clone()));
        assert!(panics(|| m
            .insert_unless(&Key(i), |_| false, || (Key(i), val(0)))
            .is_ok()));
    }
    HASH_BOOM.set(false);
    for &i in &probes {
        let m = map.pin();
        assert!(panics(|| m
            .insert_unless(&Key(i), |_| panic!("unchanged"), || (Key(i), val(0)))
            .is_ok()));
        assert!(panics(|| m
            .insert_unless(&Key(i), |_| false, || panic!("make"))
            .is_ok()));
        assert!(panics(|| m
            .insert_unless(&Key(n + i), |_| false, || panic!("make"))
            .is_ok()));
        assert!(panics(|| m
            .get_or_insert_with(Key(n + i), || panic!("f"))
            .clone()));
    }

    assert_eq!(contents(&map), before);
    assert_eq!(map.len(), n as usize);
    let snapped: Vec<(u32, u32)> = {
        let mut v: Vec<_> = snap.iter().map(|(k, v)| (k.0, v.0)).collect();
        v.sort_unstable();
        v
    };
    assert_eq!(snapped, before);

    // Still usable: every kind of write lands.
    let m = map.pin();
    for &i in &probes {
        assert_eq!(m.insert(Key(i), val(i + 1)).cloned().map(|v| v.0), Some(i));
        assert_eq!(m.remove(&Key(i)).cloned().map(|v| v.0), Some(i + 1));
        assert!(m.insert_if_absent(Key(i), val(7)).is_none());
        assert!(m.compare_and_replace(Key(i), &val(7), val(i)));
    }
    assert_eq!(contents(&map), before);
    assert_eq!(map.len(), n as usize);

    // Nothing leaked: once the trie and the snapshot are gone, every value was dropped.
    drop(m);
    drop(snap);
    drop(map);
    flush_until(|| LIVE.load(Ordering::Relaxed) == 0);
    assert_eq!(LIVE.load(Ordering::Relaxed), 0, "values leaked");
}
