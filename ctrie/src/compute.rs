//! Closure-based atomic updates of one key ([`Ctrie::compute`], [`Ctrie::update`],
//! [`Ctrie::update_or_insert_with`]) and [`Ctrie::retain`].
//!
//! Built from the trie's own operations, with no new synchronisation: read the key's current
//! S-node, run the closure on it, then apply the result with an insertion or removal that commits
//! only if the key's S-node is still *the very one* the closure saw, retrying otherwise. Identity
//! is tested by address (the address of the S-node's value). That is ABA-safe because the caller
//! stays pinned for the whole operation: nothing read while pinned is freed, so no other S-node
//! can be allocated at that address meanwhile (rule R1 in `raw/reclaim.rs`). [`Ctrie::retain`]
//! tests identity against S-nodes of a snapshot it holds, which keeps them allocated likewise.

use core::hash::{BuildHasher, Hash};
use core::ptr;

use crossbeam_epoch::Guard;

use crate::map::{check_guard, Ctrie, Unpublished};
use crate::raw::iter::RawIter;
use crate::raw::node::SNode;
use crate::raw::ops::{InsertCond, Inserted};

/// What the closure of [`Ctrie::compute`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation<V, T> {
    /// Store this value for the key (inserting or replacing).
    Insert(V),
    /// Remove the key (nothing happens if it is absent).
    Remove,
    /// Change nothing and return `T` to the caller.
    Abort(T),
}

/// What [`Ctrie::compute`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compute<'g, K, V, T> {
    /// The key was absent and this entry was inserted.
    Inserted(&'g K, &'g V),
    /// The key's entry `old` was replaced by `new`.
    Updated {
        /// The entry the closure saw, now replaced.
        old: (&'g K, &'g V),
        /// The entry stored.
        new: (&'g K, &'g V),
    },
    /// This entry was removed.
    Removed(&'g K, &'g V),
    /// The closure asked to remove a key that was absent: nothing changed.
    Absent,
    /// The closure aborted with this value: nothing changed.
    Aborted(T),
}

/// The entry of an S-node, for the lifetime `'g` of the guard that keeps it allocated.
///
/// # Safety
/// `s` is live for `'g`.
unsafe fn entry<'g, K, V>(s: *mut SNode<K, V>) -> (&'g K, &'g V) {
    // SAFETY: forwarded.
    unsafe { (&(*s).key, &(*s).value) }
}

impl<K, V, S> Ctrie<K, V, S>
where
    K: Hash + Eq,
    S: BuildHasher,
{
    /// Atomically updates the entry for `key` with `f`, which sees the current entry (or `None`)
    /// and returns an [`Operation`]: insert a value, remove the key, or abort. Returns what
    /// happened.
    ///
    /// Atomic per key: the change is applied only if the key's entry is still the one `f` saw
    /// (the same entry, not merely an equal value), so no concurrent write to the key is lost.
    /// If another thread wrote the key in between, `f` runs again on the new entry: **`f` may
    /// run more than once**, so it should have no side effects beyond its result (the values of
    /// runs whose result was not applied are dropped). The stored key becomes `key`.
    ///
    /// ```
    /// use ctrie::{Compute, Ctrie, Operation};
    ///
    /// let map = Ctrie::new();
    /// let guard = map.guard();
    /// let incr = |e: Option<(&&str, &u32)>| match e {
    ///     Some((_, n)) if *n >= 2 => Operation::Abort("saturated"),
    ///     Some((_, n)) => Operation::Insert(n + 1),
    ///     None => Operation::Insert(1),
    /// };
    /// assert_eq!(map.compute("hits", incr, &guard), Compute::Inserted(&"hits", &1));
    /// assert!(matches!(map.compute("hits", incr, &guard), Compute::Updated { new: (_, 2), .. }));
    /// assert_eq!(map.compute("hits", incr, &guard), Compute::Aborted("saturated"));
    /// let remove = |_: Option<(&&str, &u32)>| Operation::<u32, ()>::Remove;
    /// assert_eq!(map.compute("hits", remove, &guard), Compute::Removed(&"hits", &2));
    /// assert_eq!(map.compute("hits", remove, &guard), Compute::Absent);
    /// ```
    ///
    /// # Panics
    /// If `guard` does not pin crossbeam-epoch's default collector. If `f` panics, the panic
    /// propagates with nothing changed and `key` dropped.
    pub fn compute<'g, F, T>(&'g self, key: K, mut f: F, guard: &'g Guard) -> Compute<'g, K, V, T>
    where
        F: FnMut(Option<(&'g K, &'g V)>) -> Operation<V, T>,
    {
        check_guard(guard);
        let hash = self.hash(&key);
        // The key, until it moves into the S-node built for the first `Insert`; that node is
        // reused (with its value replaced) by later attempts, and dropped with the key and the
        // last value if none of them is stored.
        let mut key = Some(key);
        let mut built: Unpublished<K, V> = Unpublished(ptr::null_mut());
        // SAFETY (for every block below): pinned by `guard` for `'g`; S-nodes read while pinned
        // stay allocated until `guard` unpins (R1), and `built.0`, when not null, is an S-node we
        // own that no other thread can reach (it is unpublished, see `Unpublished`).
        let key_of = |key: &Option<K>, built: &Unpublished<K, V>| -> *const K {
            match key {
                Some(k) => k,
                // SAFETY: see above.
                None => unsafe { ptr::addr_of!((*built.0).key) },
            }
        };
        let mut cur = {
            let k = key_of(&key, &built);
            // SAFETY: see above; `k` points to our key.
            unsafe { self.raw.lookup(hash, &|x: &K| x == &*k, guard) }
        };
        loop {
            // SAFETY: see above.
            let seen = cur.map(|s| unsafe { entry::<'g>(s) });
            match f(seen) {
                Operation::Abort(t) => return Compute::Aborted(t),
                Operation::Remove => {
                    let Some(s) = cur else {
                        return Compute::Absent;
                    };
                    // SAFETY: see above; `s` is live while pinned.
                    let same = |v: &V| ptr::eq(v, unsafe { ptr::addr_of!((*s).value) });
                    let k = key_of(&key, &built);
                    // SAFETY: see above.
                    let removed =
                        unsafe { self.raw.remove(hash, &|x| x == &*k, Some(&same), guard) };
                    if removed.is_some() {
                        // SAFETY: see above; the removed S-node is released through the epoch.
                        let (k, v) = unsafe { entry::<'g>(s) };
                        return Compute::Removed(k, v);
                    }
                    // The entry changed (or went away): look again.
                    // SAFETY: see above.
                    cur = unsafe { self.raw.lookup(hash, &|x: &K| x == &*k, guard) };
                }
                Operation::Insert(v) => {
                    if built.0.is_null() {
                        built.0 = SNode::alloc(key.take().expect("key not yet moved"), v, hash);
                    } else {
                        // SAFETY: see above: we own the unpublished node exclusively. The old
                        // value is dropped after the new one is in place, so a panic in its
                        // `Drop` leaves the node whole.
                        drop(unsafe { ptr::replace(ptr::addr_of_mut!((*built.0).value), v) });
                    }
                    let sn = built.0;
                    let same = |v: &V| cur.is_some_and(|s| ptr::eq(v, unsafe { &(*s).value }));
                    let cond = match cur {
                        None => InsertCond::IfAbsent,
                        Some(_) => InsertCond::IfValue(&same),
                    };
                    // SAFETY: see above; `sn` is a fresh, unpublished S-node with hash `hash`,
                    // and `eq` compares with its key.
                    let res = unsafe {
                        self.raw
                            .insert(hash, &mut || sn, cond, &|x| *x == (*sn).key, guard)
                    };
                    match res {
                        Inserted::Yes { prev } => {
                            built.published();
                            // SAFETY: see above; `sn` is now owned by the trie.
                            let new = unsafe { entry::<'g>(sn) };
                            return match prev {
                                None => Compute::Inserted(new.0, new.1),
                                // SAFETY: see above.
                                Some(p) => Compute::Updated {
                                    old: unsafe { entry::<'g>(p) },
                                    new,
                                },
                            };
                        }
                        // The key's S-node is not the one `f` saw: run `f` on the one found.
                        Inserted::No { current } => cur = current,
                    }
                }
            }
        }
    }

    /// Replaces the value for `key` by `f(current value)`, atomically (as [`compute`]: `f` may
    /// run more than once). Returns the new value, or `None` (and calls nothing) if `key` is
    /// absent. The stored key becomes `key`.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// assert_eq!(map.update("n", |v| v + 1, &guard), None);
    /// map.insert("n", 1, &guard);
    /// assert_eq!(map.update("n", |v| v + 1, &guard), Some(&2));
    /// ```
    ///
    /// [`compute`]: Ctrie::compute
    pub fn update<'g, F>(&'g self, key: K, mut f: F, guard: &'g Guard) -> Option<&'g V>
    where
        F: FnMut(&'g V) -> V,
    {
        let op = |e: Option<(&'g K, &'g V)>| match e {
            Some((_, v)) => Operation::Insert(f(v)),
            None => Operation::Abort(()),
        };
        match self.compute(key, op, guard) {
            Compute::Updated { new, .. } => Some(new.1),
            Compute::Aborted(()) => None,
            _ => unreachable!("update only replaces or aborts"),
        }
    }

    /// Replaces the value for `key` by `update(current value)`, or inserts `insert()` if `key`
    /// is absent; atomically (as [`compute`]: either closure may run more than once). Returns the
    /// value stored.
    ///
    /// ```
    /// let map = ctrie::Ctrie::new();
    /// let guard = map.guard();
    /// let count = |word| *map.update_or_insert_with(word, |n| n + 1, || 1, &guard);
    /// assert_eq!((count("a"), count("b"), count("a")), (1, 1, 2));
    /// ```
    ///
    /// [`compute`]: Ctrie::compute
    pub fn update_or_insert_with<'g, U, I>(
        &'g self,
        key: K,
        mut update: U,
        mut insert: I,
        guard: &'g Guard,
    ) -> &'g V
    where
        U: FnMut(&'g V) -> V,
        I: FnMut() -> V,
    {
        let op = |e: Option<(&'g K, &'g V)>| {
            Operation::<V, ()>::Insert(match e {
                Some((_, v)) => update(v),
                None => insert(),
            })
        };
        match self.compute(key, op, guard) {
            Compute::Inserted(_, v) | Compute::Updated { new: (_, v), .. } => v,
            _ => unreachable!("the closure always inserts"),
        }
    }
}

impl<K: Eq, V, S> Ctrie<K, V, S> {
    /// Removes every entry for which `keep(key, value)` is false.
    ///
    /// `keep` runs exactly once per entry of a read-only snapshot taken when `retain` is called.
    /// An entry it rejects is removed only if it is still the very entry `keep` saw: an entry
    /// written again since (even with an equal value) is kept, so a stale decision never removes
    /// a newer value, and no concurrent update is lost (the Scala `TrieMap` lesson: conditional
    /// bulk operations must compare and remove). Each removal is atomic; the whole `retain` is
    /// not one atomic step: entries inserted or rewritten while it runs are kept untested, and a
    /// concurrent reader may see some rejected entries gone and others not yet. Run it on a
    /// writable snapshot ([`Ctrie::snapshot`]) that no one else writes to for an all-at-once
    /// result there.
    ///
    /// ```
    /// let map: ctrie::Ctrie<u32, u32> = (0..10).map(|i| (i, i * i)).collect();
    /// map.retain(|k, v| k % 2 == 0 && *v < 50, &map.guard());
    /// let mut left: Vec<u32> = map.pin().keys().copied().collect();
    /// left.sort();
    /// assert_eq!(left, [0, 2, 4, 6]);
    /// ```
    ///
    /// # Panics
    /// If `guard` does not pin crossbeam-epoch's default collector. If `keep` panics, the
    /// entries it rejected before stay removed and the rest stay.
    pub fn retain<F>(&self, mut keep: F, guard: &Guard)
    where
        F: FnMut(&K, &V) -> bool,
    {
        check_guard(guard);
        let snap = self.raw.read_only_snapshot();
        let mut it = RawIter::new(&snap);
        // SAFETY: `it` walks `snap`, which owns (R4) every S-node it yields until it is dropped at
        // the end of this function: their addresses cannot be reused meanwhile, which makes the
        // identity test ABA-free. `remove` is pinned by `guard`.
        unsafe {
            while let Some(s) = it.next(&snap) {
                if keep(&(*s).key, &(*s).value) {
                    continue;
                }
                let same = |v: &V| ptr::eq(v, ptr::addr_of!((*s).value));
                self.raw
                    .remove((*s).hash, &|k| k == &(*s).key, Some(&same), guard);
            }
        }
    }
}
