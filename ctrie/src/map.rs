//! The safe facade: [`Ctrie`] and its guard-free handle [`CtrieRef`].

use core::borrow::Borrow;
use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;
use std::collections::hash_map::RandomState;

use crossbeam_epoch::Guard;

use crate::compute::{Compute, Operation};
use crate::iter::{Iter, Keys, Values};
use crate::raw::node::{BranchRef, Main, MainRef, SNode};
use crate::raw::ops::{InsertCond, Inserted};
use crate::raw::{Invariant, RawCtrie};
use crate::snapshot::Snapshot;
use crate::sync::Arc;

/// A lock-free concurrent hash trie with O(1) snapshots (Prokopec et al., PPoPP 2012).
///
/// Any number of threads may read and write through a shared `&Ctrie`. Every operation is
/// linearizable, including [`len`](Ctrie::len) and [`iter`](Ctrie::iter), which work on an O(1)
/// read-only snapshot taken when they are called.
///
/// References returned by the guard-explicit methods (`get`, `insert`, ...) live as long as the
/// [`Guard`] passed in; [`Ctrie::pin`] bundles a guard into a [`CtrieRef`] whose methods need
/// none. Keys and values are dropped on whichever thread reclaims them, after every thread that
/// could see them has unpinned, hence the `'static` bound on the constructors.
///
/// # Examples
/// ```
/// use ctrie::Ctrie;
///
/// let map = Ctrie::new();
/// let m = map.pin();
/// m.insert("apple", 3);
/// m.insert("pear", 5);
/// let frozen = map.read_only_snapshot(); // O(1)
/// m.insert("apple", 4);
/// assert_eq!(m.get("apple"), Some(&4));
/// assert_eq!(frozen.get("apple"), Some(&3));
/// assert_eq!(map.len(), 2);
/// ```
pub struct Ctrie<K, V, S = RandomState> {
    pub(crate) raw: RawCtrie<K, V>,
    pub(crate) hasher: Arc<S>,
    /// Owns keys and values (for drop check) and is invariant in them: `insert(&self, ..)`
    /// stores into shared state (see `raw::Invariant`).
    _owns: PhantomData<(K, V)>,
    _invariant: Invariant<K, V>,
}

// SAFETY: the trie shares keys and values between threads (`Sync`) and drops them on whichever
// thread reclaims them (`Send`), both for `&Ctrie` and for a `Ctrie` moved elsewhere, whose
// nodes may still be shared with snapshots living on other threads; the hasher is shared with
// snapshots through an `Arc`.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Send + Sync> Send for Ctrie<K, V, S> {}
// SAFETY: see `Send`.
unsafe impl<K: Send + Sync, V: Send + Sync, S: Send + Sync> Sync for Ctrie<K, V, S> {}

/// Panics unless `guard` pins the default collector, which the trie's reclamation uses.
#[inline]
pub(crate) fn check_guard(guard: &Guard) {
    let ok = guard
        .collector()
        .is_some_and(|c| c == crossbeam_epoch::default_collector());
    assert!(ok, "ctrie: the guard must come from `Ctrie::guard()`, `ctrie::pin()` or `crossbeam_epoch::pin()`");
}

impl<K: 'static, V: 'static> Ctrie<K, V, RandomState> {
    /// An empty trie with the default hasher.
    pub fn new() -> Self {
        Self::with_hasher(RandomState::new())
    }
}

impl<K: 'static, V: 'static, S> Ctrie<K, V, S> {
    /// An empty trie hashing keys with `hash_builder`.
    ///
    /// ```
    /// use std::collections::hash_map::RandomState;
    /// let map: ctrie::Ctrie<u32, u32> = ctrie::Ctrie::with_hasher(RandomState::new());
    /// assert!(map.is_empty());
    /// ```
    pub fn with_hasher(hash_builder: S) -> Self {
        Ctrie {
            raw: RawCtrie::new(),
            hasher: Arc::new(hash_builder),
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }
}

impl<K, V, S> Ctrie<K, V, S> {
    pub(crate) fn from_raw(raw: RawCtrie<K, V>, hasher: Arc<S>) -> Self {
        Ctrie {
            raw,
            hasher,
            _owns: PhantomData,
            _invariant: PhantomData,
        }
    }

    /// The hasher.
    pub fn hasher(&self) -> &S {
        &self.hasher
    }

    /// Pins the current thread, for the guard-explicit methods.
    pub fn guard(&self) -> Guard {
        crossbeam_epoch::pin()
    }

    /// A handle whose methods need no guard argument (it holds one).
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let m = map.pin();
    /// assert_eq!(m.insert(1, "one"), None);
    /// assert_eq!(m.get(&1), Some(&"one"));
    /// ```
    pub fn pin(&self) -> CtrieRef<'_, K, V, S> {
        CtrieRef {
            map: self,
            guard: crossbeam_epoch::pin(),
            _invariant: PhantomData,
        }
    }

    /// An O(1) writable snapshot: a new, independent trie with the current contents. The two
    /// share structure and each copies lazily what it writes. Same as `clone()`.
    ///
    /// ```
    /// let a = ctrie::Ctrie::new();
    /// a.pin().insert(1, 1);
    /// let b = a.snapshot();
    /// b.pin().insert(2, 2);
    /// assert_eq!(a.len(), 1);
    /// assert_eq!(b.len(), 2);
    /// ```
    pub fn snapshot(&self) -> Ctrie<K, V, S> {
        Ctrie::from_raw(self.raw.snapshot(), self.hasher.clone())
    }

    /// An O(1) read-only snapshot of the current contents, which later writes never change.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// map.pin().insert("k", 1);
    /// let snap = map.read_only_snapshot();
    /// map.pin().remove("k");
    /// assert_eq!(snap.get("k"), Some(&1));
    /// ```
    pub fn read_only_snapshot(&self) -> Snapshot<K, V, S> {
        Snapshot::from_raw(self.raw.read_only_snapshot(), self.hasher.clone())
    }

    /// Removes every entry, atomically (snapshots taken before keep theirs).
    pub fn clear(&self) {
        self.raw.clear()
    }

    /// The number of entries, exactly, at one instant (counted on an O(1) read-only snapshot).
    ///
    /// Counting costs time proportional to what changed since the last count: sizes are
    /// cached in the nodes that snapshots share. Like any snapshot, it makes the next write on
    /// each path copy that path (a C-node per level), so calling `len` between most writes of a
    /// write-heavy workload slows the writes down; calling it now and then (for metrics, say)
    /// costs next to nothing. `iter` and `is_empty` (when the root holds no entry) take a
    /// snapshot too.
    ///
    /// ```
    /// let map: ctrie::Ctrie<u32, u32> = (0..10).map(|i| (i, i)).collect();
    /// assert_eq!(map.len(), 10);
    /// ```
    pub fn len(&self) -> usize {
        self.read_only_snapshot().len()
    }

    /// Whether the trie is empty, at one instant, without counting the entries.
    pub fn is_empty(&self) -> bool {
        {
            let guard = &crossbeam_epoch::pin();
            // SAFETY: pinned; the root's main is a C-node, live while pinned.
            if let MainRef::C(cn) = unsafe { Main::view(self.raw.root_main(guard)) } {
                if cn.bitmap() == 0 {
                    return true;
                }
                if cn
                    .branches()
                    .iter()
                    .any(|b| matches!(b.get(), BranchRef::S(_)))
                {
                    return false;
                }
            }
        }
        self.read_only_snapshot().is_empty()
    }

    /// Iterates over a read-only snapshot taken now; later writes are not seen.
    pub fn iter<'g>(&'g self, guard: &'g Guard) -> Iter<'g, K, V> {
        check_guard(guard);
        // The snapshot is owned by the iterator; entries stay valid for `'g` because freeing them
        // after the iterator drops the snapshot waits for `guard` to unpin.
        Iter::owned(self.raw.read_only_snapshot())
    }

    /// The keys of a read-only snapshot taken now (see [`Ctrie::iter`]).
    pub fn keys<'g>(&'g self, guard: &'g Guard) -> Keys<'g, K, V> {
        self.iter(guard).keys()
    }

    /// The values of a read-only snapshot taken now (see [`Ctrie::iter`]).
    pub fn values<'g>(&'g self, guard: &'g Guard) -> Values<'g, K, V> {
        self.iter(guard).values()
    }
}

impl<K, V, S> Ctrie<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, key: &Q) -> u64 {
        self.hasher.hash_one(key)
    }

    fn lookup<'g, Q>(&'g self, key: &Q, guard: &'g Guard) -> Option<&'g SNode<K, V>>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        check_guard(guard);
        let hash = self.hash(key);
        // SAFETY: pinned by `guard`; the S-node stays allocated while `guard` lives (R1).
        unsafe {
            self.raw
                .lookup(hash, &|k: &K| k.borrow() == key, guard)
                .map(|s| &*s)
        }
    }

    /// The value for `key`.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// map.insert("a".to_string(), 1, &guard);
    /// assert_eq!(map.get("a", &guard), Some(&1));
    /// ```
    ///
    /// # Panics
    /// If `guard` does not pin crossbeam-epoch's default collector (use [`Ctrie::guard`]).
    pub fn get<'g, Q>(&'g self, key: &Q, guard: &'g Guard) -> Option<&'g V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, guard).map(|s| &s.value)
    }

    /// The stored key and value for `key`.
    pub fn get_key_value<'g, Q>(&'g self, key: &Q, guard: &'g Guard) -> Option<(&'g K, &'g V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, guard).map(|s| (&s.key, &s.value))
    }

    /// Whether `key` is present.
    pub fn contains_key<Q>(&self, key: &Q, guard: &Guard) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.lookup(key, guard).is_some()
    }

    /// Runs one conditional insertion; returns the raw outcome, freeing `key`/`value` if they
    /// were not stored.
    fn insert_cond<'g>(
        &'g self,
        key: K,
        value: V,
        cond: InsertCond<'_, V>,
        guard: &'g Guard,
    ) -> Outcome<'g, K, V> {
        check_guard(guard);
        let hash = self.hash(&key);
        let built = Unpublished(SNode::alloc(key, value, hash));
        let sn = built.0;
        // SAFETY: pinned by `guard`; `sn` is fresh; `eq` compares with its key.
        let res = unsafe {
            self.raw
                .insert(hash, &mut || sn, cond, &|k| *k == (*sn).key, guard)
        };
        // SAFETY: S-nodes reachable or released while `guard` lives stay allocated (R1).
        unsafe {
            match res {
                Inserted::Yes { prev } => {
                    built.published();
                    Outcome::Stored {
                        new: &*sn,
                        prev: prev.map(|p| &*p),
                    }
                }
                Inserted::No { current } => {
                    // Never published: `built` drops the key and value now.
                    Outcome::Kept {
                        current: current.map(|p| &*p),
                    }
                }
            }
        }
    }

    /// Inserts or replaces; returns the previous value. (The stored key becomes `key`.)
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// assert_eq!(map.insert(1, 'a', &guard), None);
    /// assert_eq!(map.insert(1, 'b', &guard), Some(&'a'));
    /// ```
    pub fn insert<'g>(&'g self, key: K, value: V, guard: &'g Guard) -> Option<&'g V> {
        match self.insert_cond(key, value, InsertCond::Always, guard) {
            Outcome::Stored { prev, .. } => prev.map(|s| &s.value),
            Outcome::Kept { .. } => unreachable!("unconditional insert"),
        }
    }

    /// Inserts only if `key` is absent; otherwise stores nothing and returns the existing value.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// assert_eq!(map.insert_if_absent(1, 'a', &guard), None);
    /// assert_eq!(map.insert_if_absent(1, 'b', &guard), Some(&'a'));
    /// ```
    pub fn insert_if_absent<'g>(&'g self, key: K, value: V, guard: &'g Guard) -> Option<&'g V> {
        match self.insert_cond(key, value, InsertCond::IfAbsent, guard) {
            Outcome::Stored { .. } => None,
            Outcome::Kept { current } => current.map(|s| &s.value),
        }
    }

    /// The value for `key`, inserting `f()` first if absent. Atomic: racing callers all get the
    /// single winner's value (`f` may still run in the losers).
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// assert_eq!(*map.get_or_insert_with("k", || 1, &guard), 1);
    /// assert_eq!(*map.get_or_insert_with("k", || 2, &guard), 1);
    /// ```
    pub fn get_or_insert_with<'g, F: FnOnce() -> V>(
        &'g self,
        key: K,
        f: F,
        guard: &'g Guard,
    ) -> &'g V {
        if let Some(v) = self.get(&key, guard) {
            return v;
        }
        match self.insert_cond(key, f(), InsertCond::IfAbsent, guard) {
            Outcome::Stored { new, .. } => &new.value,
            Outcome::Kept { current } => &current.expect("present when not inserted").value,
        }
    }

    /// Replaces the value only if `key` is present; returns the previous value.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// assert_eq!(map.replace(1, 'a', &guard), None);
    /// assert!(map.is_empty());
    /// ```
    pub fn replace<'g>(&'g self, key: K, value: V, guard: &'g Guard) -> Option<&'g V> {
        match self.insert_cond(key, value, InsertCond::IfPresent, guard) {
            Outcome::Stored { prev, .. } => prev.map(|s| &s.value),
            Outcome::Kept { .. } => None,
        }
    }

    /// Replaces the value only if the current one equals `expected`. Returns whether it did.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// map.insert(1, 10, &guard);
    /// assert!(!map.compare_and_replace(1, &11, 12, &guard));
    /// assert!(map.compare_and_replace(1, &10, 12, &guard));
    /// assert_eq!(map.get(&1, &guard), Some(&12));
    /// ```
    pub fn compare_and_replace(&self, key: K, expected: &V, new: V, guard: &Guard) -> bool
    where
        V: PartialEq,
    {
        let cond = |v: &V| v == expected;
        matches!(
            self.insert_cond(key, new, InsertCond::IfValue(&cond), guard),
            Outcome::Stored { .. }
        )
    }

    /// Inserts or replaces the entry for `key`, unless the key is present with a value for which
    /// `unchanged` holds; in one walk of the trie. The entry is built by `make` only once the walk
    /// has decided to store it, so a call that changes nothing builds and allocates nothing.
    ///
    /// Returns `Ok(previous value)` when it stored (`Ok(None)` if the key was absent), or
    /// `Err(current value)` when it kept the current one. Atomic: the entry it keeps is the one
    /// it tested. `unchanged` may run more than once if writers race on the same C-node; `make`
    /// runs at most once. This is the "apply an update unless it is a no-op" step of a cache:
    /// a lookup followed by an insert would walk the trie twice.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// let same = |v: &u32| *v == 1;
    /// assert_eq!(map.insert_unless("k", same, || ("k", 1), &guard), Ok(None));
    /// assert_eq!(map.insert_unless("k", same, || unreachable!(), &guard), Err(&1));
    /// assert_eq!(map.insert_unless("k", |v| *v == 2, || ("k", 2), &guard), Ok(Some(&1)));
    /// ```
    ///
    /// # Panics
    /// If `make` returns an entry whose key is not equal to `key` (the entry is dropped, the trie
    /// is left unchanged), or if `guard` does not pin crossbeam-epoch's default collector.
    pub fn insert_unless<'g, Q, F, M>(
        &'g self,
        key: &Q,
        unchanged: F,
        make: M,
        guard: &'g Guard,
    ) -> Result<Option<&'g V>, &'g V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: Fn(&V) -> bool,
        M: FnOnce() -> (K, V),
    {
        check_guard(guard);
        let hash = self.hash(key);
        let mut make = Some(make);
        let mut made = Unpublished(core::ptr::null_mut());
        let mut sn = || {
            if made.0.is_null() {
                let (k, v) = make.take().expect("an S-node is built once")();
                assert!(
                    k.borrow() == key,
                    "Ctrie::insert_unless: `make` returned an entry for another key"
                );
                made.0 = SNode::alloc(k, v, hash);
            }
            made.0
        };
        // SAFETY: pinned by `guard`; `sn` returns one fresh S-node with `key`'s hash whose key
        // equals `key` (checked above), which `eq` compares with.
        let res = unsafe {
            self.raw.insert(
                hash,
                &mut sn,
                InsertCond::Unless(&unchanged),
                &|k| k.borrow() == key,
                guard,
            )
        };
        // SAFETY: S-nodes reachable or released while `guard` lives stay allocated (R1).
        unsafe {
            match res {
                Inserted::Yes { prev } => {
                    made.published();
                    Ok(prev.map(|p| &(*p).value))
                }
                // If one was built, it was for an attempt that lost a race and was never
                // published: `made` drops it.
                Inserted::No { current } => {
                    Err(&(*current.expect("only a present value is kept")).value)
                }
            }
        }
    }

    /// Removes `key`; returns its value.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// map.insert(1, 'a', &guard);
    /// assert_eq!(map.remove(&1, &guard), Some(&'a'));
    /// assert_eq!(map.remove(&1, &guard), None);
    /// ```
    pub fn remove<'g, Q>(&'g self, key: &Q, guard: &'g Guard) -> Option<&'g V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        check_guard(guard);
        let hash = self.hash(key);
        // SAFETY: pinned by `guard`; the removed S-node is released through the epoch, so it
        // stays allocated while `guard` lives.
        unsafe {
            self.raw
                .remove(hash, &|k: &K| k.borrow() == key, None, guard)
                .map(|s| &(*s).value)
        }
    }

    /// Removes `key` only if its value equals `expected`. Returns whether it did.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// map.insert(1, 'a', &guard);
    /// assert!(!map.remove_if(&1, &'b', &guard));
    /// assert!(map.remove_if(&1, &'a', &guard));
    /// ```
    pub fn remove_if<Q>(&self, key: &Q, expected: &V, guard: &Guard) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: PartialEq,
    {
        check_guard(guard);
        let hash = self.hash(key);
        let cond = |v: &V| v == expected;
        // SAFETY: pinned by `guard`.
        unsafe {
            self.raw
                .remove(hash, &|k: &K| k.borrow() == key, Some(&cond), guard)
                .is_some()
        }
    }
}

/// An S-node built for an insertion and not published (yet), or null. If it is never marked
/// [`published`](Self::published), dropping this destroys it with its key and value: after an
/// insertion that stored nothing, and when the insertion unwinds because a user's `Eq`,
/// predicate or entry builder panicked. (User code runs only before an attempt's GCAS, and an
/// attempt returns as soon as its GCAS commits, so an insertion never unwinds after publishing.)
pub(crate) struct Unpublished<K, V>(pub(crate) *mut SNode<K, V>);

impl<K, V> Unpublished<K, V> {
    /// The node is in the trie now, which owns it.
    pub(crate) fn published(mut self) {
        self.0 = core::ptr::null_mut();
    }
}

impl<K, V> Drop for Unpublished<K, V> {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we own the node, and no other thread can reach it: it was never part of
            // a committed main node (readers only follow committed ones; an attempt that
            // installed it and failed was rolled back, see `gcas.rs`).
            unsafe { SNode::destroy(self.0) }
        }
    }
}

/// What a conditional insertion did.
enum Outcome<'g, K, V> {
    Stored {
        new: &'g SNode<K, V>,
        prev: Option<&'g SNode<K, V>>,
    },
    Kept {
        current: Option<&'g SNode<K, V>>,
    },
}

impl<K: 'static, V: 'static, S: Default> Default for Ctrie<K, V, S> {
    fn default() -> Self {
        Self::with_hasher(S::default())
    }
}

impl<K, V, S> Clone for Ctrie<K, V, S> {
    /// An O(1) writable snapshot (see [`Ctrie::snapshot`]).
    fn clone(&self) -> Self {
        self.snapshot()
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for Ctrie<K, V, S> {
    /// Formats a read-only snapshot of the entries.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let snap = Snapshot::from_raw(self.raw.read_only_snapshot(), self.hasher.clone());
        f.debug_map().entries(snap.iter()).finish()
    }
}

impl<K, V, S> Extend<(K, V)> for &Ctrie<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    fn extend<T: IntoIterator<Item = (K, V)>>(&mut self, iter: T) {
        let guard = &crossbeam_epoch::pin();
        for (k, v) in iter {
            self.insert(k, v, guard);
        }
    }
}

impl<K, V, S> Extend<(K, V)> for Ctrie<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    fn extend<T: IntoIterator<Item = (K, V)>>(&mut self, iter: T) {
        (&*self).extend(iter)
    }
}

impl<K, V, S> FromIterator<(K, V)> for Ctrie<K, V, S>
where
    K: Hash + Eq + 'static,
    V: 'static,
    S: BuildHasher + Default,
{
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut map = Self::default();
        map.extend(iter);
        map
    }
}

/// A [`Ctrie`] with a guard bundled in, from [`Ctrie::pin`]: the same operations without a
/// guard argument. References it returns live as long as the handle.
///
/// Holding a handle for long delays the reclamation of memory freed meanwhile (by every thread),
/// as any epoch guard does; create one per batch of operations.
pub struct CtrieRef<'c, K, V, S = RandomState> {
    map: &'c Ctrie<K, V, S>,
    guard: Guard,
    /// Invariant in `K` and `V`: it inserts into the trie through `&self` (see
    /// `raw::Invariant`). `&'c Ctrie` is invariant already; the marker says so where it is read.
    _invariant: Invariant<K, V>,
}

impl<K, V, S> CtrieRef<'_, K, V, S> {
    /// The guard this handle holds.
    pub fn guard(&self) -> &Guard {
        &self.guard
    }

    /// See [`Ctrie::iter`].
    pub fn iter(&self) -> Iter<'_, K, V> {
        self.map.iter(&self.guard)
    }

    /// See [`Ctrie::len`].
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// See [`Ctrie::is_empty`].
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// See [`Ctrie::clear`].
    pub fn clear(&self) {
        self.map.clear()
    }

    /// See [`Ctrie::keys`].
    pub fn keys(&self) -> Keys<'_, K, V> {
        self.iter().keys()
    }

    /// See [`Ctrie::values`].
    pub fn values(&self) -> Values<'_, K, V> {
        self.iter().values()
    }

    /// See [`Ctrie::retain`].
    pub fn retain<F: FnMut(&K, &V) -> bool>(&self, keep: F)
    where
        K: Eq,
    {
        self.map.retain(keep, &self.guard)
    }
}

impl<'a, K, V, S> IntoIterator for &'a CtrieRef<'_, K, V, S> {
    type Item = (&'a K, &'a V);
    type IntoIter = Iter<'a, K, V>;
    fn into_iter(self) -> Iter<'a, K, V> {
        self.iter()
    }
}

impl<K: Hash + Eq, V, S: BuildHasher> CtrieRef<'_, K, V, S> {
    /// See [`Ctrie::get`].
    pub fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get(key, &self.guard)
    }

    /// See [`Ctrie::get_key_value`].
    pub fn get_key_value<Q>(&self, key: &Q) -> Option<(&K, &V)>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.get_key_value(key, &self.guard)
    }

    /// See [`Ctrie::contains_key`].
    pub fn contains_key<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.contains_key(key, &self.guard)
    }

    /// See [`Ctrie::insert`].
    pub fn insert(&self, key: K, value: V) -> Option<&V> {
        self.map.insert(key, value, &self.guard)
    }

    /// See [`Ctrie::insert_if_absent`].
    pub fn insert_if_absent(&self, key: K, value: V) -> Option<&V> {
        self.map.insert_if_absent(key, value, &self.guard)
    }

    /// See [`Ctrie::get_or_insert_with`].
    pub fn get_or_insert_with<F: FnOnce() -> V>(&self, key: K, f: F) -> &V {
        self.map.get_or_insert_with(key, f, &self.guard)
    }

    /// See [`Ctrie::replace`].
    pub fn replace(&self, key: K, value: V) -> Option<&V> {
        self.map.replace(key, value, &self.guard)
    }

    /// See [`Ctrie::compare_and_replace`].
    pub fn compare_and_replace(&self, key: K, expected: &V, new: V) -> bool
    where
        V: PartialEq,
    {
        self.map
            .compare_and_replace(key, expected, new, &self.guard)
    }

    /// See [`Ctrie::insert_unless`].
    pub fn insert_unless<Q, F, M>(&self, key: &Q, unchanged: F, make: M) -> Result<Option<&V>, &V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        F: Fn(&V) -> bool,
        M: FnOnce() -> (K, V),
    {
        self.map.insert_unless(key, unchanged, make, &self.guard)
    }

    /// See [`Ctrie::remove`].
    pub fn remove<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.map.remove(key, &self.guard)
    }

    /// See [`Ctrie::remove_if`].
    pub fn remove_if<Q>(&self, key: &Q, expected: &V) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: PartialEq,
    {
        self.map.remove_if(key, expected, &self.guard)
    }

    /// See [`Ctrie::compute`].
    pub fn compute<'h, F, T>(&'h self, key: K, f: F) -> Compute<'h, K, V, T>
    where
        F: FnMut(Option<(&'h K, &'h V)>) -> Operation<V, T>,
    {
        self.map.compute(key, f, &self.guard)
    }

    /// See [`Ctrie::update`].
    pub fn update<'h, F: FnMut(&'h V) -> V>(&'h self, key: K, f: F) -> Option<&'h V> {
        self.map.update(key, f, &self.guard)
    }

    /// See [`Ctrie::update_or_insert_with`].
    pub fn update_or_insert_with<'h, U, I>(&'h self, key: K, update: U, insert: I) -> &'h V
    where
        U: FnMut(&'h V) -> V,
        I: FnMut() -> V,
    {
        self.map
            .update_or_insert_with(key, update, insert, &self.guard)
    }
}

impl<K: fmt::Debug, V: fmt::Debug, S> fmt::Debug for CtrieRef<'_, K, V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}
