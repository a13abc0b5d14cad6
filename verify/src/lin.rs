//! A linearizability checker for histories of concurrent ctrie operations.
//!
//! Threads record each operation's invocation and response with timestamps from one global
//! counter ([`Recorder`]). The checker then decides:
//!
//! * **Single-key operations** (get, insert, insert-if-absent, replace, compare-and-replace,
//!   remove, remove-if): linearizability is local (Herlihy & Wing), so each key's sub-history is
//!   checked on its own against a sequential register (`Option<value>`), by the Wing & Gong
//!   search with Lowe's memoisation of (linearized set, state).
//! * **Snapshots** (read-only snapshots, whose contents are read *after* they were taken): there
//!   must be one instant `t` within the snapshot's own invocation and response at which, for
//!   every key, the snapshot's value is a value the key could hold at `t`: the value of a write
//!   that may be the last one linearized before `t` (not superseded by a write that finished
//!   before `t` and started after it finished), or of a write in progress at `t`; or absent if no
//!   write must precede `t`. This is a necessary condition for a linearizable snapshot, checked
//!   exactly at every event boundary in the interval; it catches snapshots that see writes made
//!   after they returned or miss writes that finished before they were called.
//!
//! Values written in one history must be distinct, so that a value names its write.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// A key and a value in checked histories.
pub type K = u64;
/// See [`K`].
pub type V = u64;

/// A single-key operation and what it returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `get` returned this.
    Get(Option<V>),
    /// `insert(v)` returned the previous value.
    Insert(V, Option<V>),
    /// `insert_if_absent(v)` returned the existing value (and stored `v` if `None`).
    InsertIfAbsent(V, Option<V>),
    /// `replace(v)` returned the previous value (and stored `v` if `Some`).
    Replace(V, Option<V>),
    /// `compare_and_replace(expected, new)` returned whether it replaced.
    CompareAndReplace(V, V, bool),
    /// `remove` returned the removed value.
    Remove(Option<V>),
    /// `remove_if(expected)` returned whether it removed.
    RemoveIf(V, bool),
}

impl Op {
    /// Applies the operation to `state` (the key's value) if it is consistent with it; returns
    /// whether the recorded result is what a sequential execution from `state` would return.
    fn apply(self, state: &mut Option<V>) -> bool {
        match self {
            Op::Get(r) => r == *state,
            Op::Insert(v, r) => r == state.replace(v),
            Op::InsertIfAbsent(v, r) => {
                if r != *state {
                    return false;
                }
                if state.is_none() {
                    *state = Some(v);
                }
                true
            }
            Op::Replace(v, r) => {
                if r != *state {
                    return false;
                }
                if state.is_some() {
                    *state = Some(v);
                }
                true
            }
            Op::CompareAndReplace(e, n, r) => {
                if r != (*state == Some(e)) {
                    return false;
                }
                if r {
                    *state = Some(n);
                }
                true
            }
            Op::Remove(r) => r == state.take(),
            Op::RemoveIf(e, r) => {
                if r != (*state == Some(e)) {
                    return false;
                }
                if r {
                    *state = None;
                }
                true
            }
        }
    }

    /// The value this operation left in the key, if it wrote one (`Some(None)`: it removed).
    fn written(self) -> Option<Option<V>> {
        match self {
            Op::Get(_) => None,
            Op::Insert(v, _) => Some(Some(v)),
            Op::InsertIfAbsent(v, r) => r.is_none().then_some(Some(v)),
            Op::Replace(v, r) => r.is_some().then_some(Some(v)),
            Op::CompareAndReplace(_, n, r) => r.then_some(Some(n)),
            Op::Remove(r) => r.is_some().then_some(None),
            Op::RemoveIf(_, r) => r.then_some(None),
        }
    }
}

/// One completed operation with its interval.
#[derive(Clone, Debug)]
pub struct Event {
    /// Invocation timestamp.
    pub invoke: u64,
    /// Response timestamp.
    pub response: u64,
    /// What it was.
    pub what: What,
}

/// A recorded operation.
#[derive(Clone, Debug)]
pub enum What {
    /// A single-key operation.
    Key(K, Op),
    /// A read-only snapshot taken in the interval, with its contents (read afterwards).
    Snapshot(BTreeMap<K, V>),
}

/// Records a history from several threads.
#[derive(Debug, Default)]
pub struct Recorder {
    clock: AtomicU64,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    /// A timestamp for an invocation or a response.
    pub fn now(&self) -> u64 {
        // SeqCst: timestamps must follow real time across threads (one total order).
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    /// Runs `f`, recording it with the interval around it.
    pub fn record<R>(&self, f: impl FnOnce() -> (R, What)) -> R {
        let invoke = self.now();
        let (r, what) = f();
        let response = self.now();
        self.events.lock().unwrap().push(Event {
            invoke,
            response,
            what,
        });
        r
    }

    /// Records an event whose timestamps the caller took with [`Recorder::now`].
    pub fn push(&self, e: Event) {
        self.events.lock().unwrap().push(e);
    }

    /// The recorded history.
    pub fn history(self) -> Vec<Event> {
        self.events.into_inner().unwrap()
    }
}

/// Checks a complete history starting from `initial`; returns a description of the first
/// violation found.
pub fn check(initial: &BTreeMap<K, V>, history: &[Event]) -> Result<(), String> {
    let mut per_key: HashMap<K, Vec<(u64, u64, Op)>> = HashMap::new();
    for e in history {
        if let What::Key(k, op) = e.what {
            per_key
                .entry(k)
                .or_default()
                .push((e.invoke, e.response, op));
        }
    }
    for (k, ops) in &per_key {
        if !linearizable(initial.get(k).copied(), ops) {
            return Err(format!(
                "key {k}: no linearization of {ops:?} (initially {:?})",
                initial.get(k)
            ));
        }
    }
    for e in history {
        if let What::Snapshot(view) = &e.what {
            check_snapshot(initial, &per_key, e.invoke, e.response, view)?;
        }
    }
    Ok(())
}

/// Wing & Gong search with memoisation for one key.
fn linearizable(initial: Option<V>, ops: &[(u64, u64, Op)]) -> bool {
    assert!(
        ops.len() <= 128,
        "sub-histories are limited to 128 operations"
    );
    let mut seen: HashSet<(u128, Option<V>)> = HashSet::new();
    fn go(
        ops: &[(u64, u64, Op)],
        done: u128,
        state: Option<V>,
        seen: &mut HashSet<(u128, Option<V>)>,
    ) -> bool {
        if done.count_ones() as usize == ops.len() {
            return true;
        }
        if !seen.insert((done, state)) {
            return false;
        }
        // An operation can go next only if it was invoked before every pending one responded.
        let horizon = ops
            .iter()
            .enumerate()
            .filter(|(i, _)| done & (1 << i) == 0)
            .map(|(_, o)| o.1)
            .min()
            .unwrap();
        for (i, &(inv, _, op)) in ops.iter().enumerate() {
            if done & (1 << i) != 0 || inv > horizon {
                continue;
            }
            let mut s = state;
            if op.apply(&mut s) && go(ops, done | (1 << i), s, seen) {
                return true;
            }
        }
        false
    }
    go(ops, 0, initial, &mut seen)
}

/// Values key `k` may hold at instant `t`, given its writes.
fn possible(initial: Option<V>, writes: &[(u64, u64, Option<V>)], t: u64) -> HashSet<Option<V>> {
    let finished: Vec<_> = writes.iter().filter(|w| w.1 < t).collect();
    let mut out = HashSet::new();
    // A finished write may be the last before `t` unless another finished write started after
    // it finished (that one is then necessarily later).
    for w in &finished {
        if !finished.iter().any(|x| x.0 > w.1) {
            out.insert(w.2);
        }
    }
    if finished.is_empty() {
        out.insert(initial);
    }
    // A write in progress at `t` may already have taken effect.
    for w in writes.iter().filter(|w| w.0 < t && w.1 >= t) {
        out.insert(w.2);
    }
    out
}

fn check_snapshot(
    initial: &BTreeMap<K, V>,
    per_key: &HashMap<K, Vec<(u64, u64, Op)>>,
    invoke: u64,
    response: u64,
    view: &BTreeMap<K, V>,
) -> Result<(), String> {
    let keys: HashSet<K> = per_key
        .keys()
        .chain(initial.keys())
        .chain(view.keys())
        .copied()
        .collect();
    let writes: HashMap<K, Vec<(u64, u64, Option<V>)>> = keys
        .iter()
        .map(|k| {
            let w = per_key
                .get(k)
                .into_iter()
                .flatten()
                .filter_map(|&(i, r, op)| op.written().map(|v| (i, r, v)))
                .collect();
            (*k, w)
        })
        .collect();
    // Candidate instants: the interval's start and just after every event boundary inside it.
    let mut instants: Vec<u64> = vec![invoke + 1];
    for w in writes.values().flatten() {
        for b in [w.0 + 1, w.1 + 1] {
            if b > invoke && b <= response {
                instants.push(b);
            }
        }
    }
    instants.sort_unstable();
    instants.dedup();
    let fits = |t: u64| {
        keys.iter().all(|k| {
            possible(initial.get(k).copied(), &writes[k], t).contains(&view.get(k).copied())
        })
    };
    if instants.into_iter().any(fits) {
        Ok(())
    } else {
        Err(format!(
            "snapshot taken in [{invoke}, {response}] matches no instant: {view:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(invoke: u64, response: u64, k: K, op: Op) -> Event {
        Event {
            invoke,
            response,
            what: What::Key(k, op),
        }
    }

    #[test]
    fn accepts_a_sequential_history() {
        let h = [
            ev(0, 1, 1, Op::Insert(10, None)),
            ev(2, 3, 1, Op::Get(Some(10))),
            ev(4, 5, 1, Op::Remove(Some(10))),
        ];
        assert!(check(&BTreeMap::new(), &h).is_ok());
    }

    #[test]
    fn accepts_overlapping_operations_in_either_order() {
        let h = [
            ev(0, 5, 1, Op::Insert(10, None)),
            ev(1, 4, 1, Op::Get(None)),
            ev(2, 3, 1, Op::Get(Some(10))),
        ];
        assert!(check(&BTreeMap::new(), &h).is_ok());
    }

    #[test]
    fn rejects_a_stale_read() {
        let h = [
            ev(0, 1, 1, Op::Insert(10, None)),
            ev(2, 3, 1, Op::Get(None)),
        ];
        assert!(check(&BTreeMap::new(), &h).is_err());
    }

    #[test]
    fn rejects_two_winners() {
        let h = [
            ev(0, 3, 1, Op::InsertIfAbsent(10, None)),
            ev(1, 2, 1, Op::InsertIfAbsent(11, None)),
        ];
        assert!(check(&BTreeMap::new(), &h).is_err());
    }

    #[test]
    fn snapshots_must_match_one_instant() {
        // Key 1 written at [0,1], key 2 written at [4,5]; a snapshot in [2,3] holding both saw a
        // write made after it returned.
        let w = [
            ev(0, 1, 1, Op::Insert(10, None)),
            ev(4, 5, 2, Op::Insert(20, None)),
        ];
        let ok = Event {
            invoke: 2,
            response: 3,
            what: What::Snapshot([(1, 10)].into()),
        };
        let bad = Event {
            invoke: 2,
            response: 3,
            what: What::Snapshot([(1, 10), (2, 20)].into()),
        };
        let missing = Event {
            invoke: 2,
            response: 3,
            what: What::Snapshot(BTreeMap::new()),
        };
        assert!(check(&BTreeMap::new(), &[w[0].clone(), w[1].clone(), ok]).is_ok());
        assert!(check(&BTreeMap::new(), &[w[0].clone(), w[1].clone(), bad]).is_err());
        assert!(check(&BTreeMap::new(), &[w[0].clone(), w[1].clone(), missing]).is_err());
    }

    #[test]
    fn snapshots_need_a_single_cut() {
        // x: 1 -> 2 during [0,10]; y: 1 -> 2 during [0,10], with x's write finishing before y's
        // starts... no: here x changes during [2,3] and y during [6,7]; a snapshot in [0,10]
        // seeing y's new value but x's old one matches no single instant.
        let init: BTreeMap<K, V> = [(1, 100), (2, 200)].into();
        let h = [
            ev(2, 3, 1, Op::Insert(101, Some(100))),
            ev(6, 7, 2, Op::Insert(201, Some(200))),
            Event {
                invoke: 0,
                response: 10,
                what: What::Snapshot([(1, 100), (2, 201)].into()),
            },
        ];
        assert!(check(&init, &h).is_err());
        let h2 = [
            h[0].clone(),
            h[1].clone(),
            Event {
                invoke: 0,
                response: 10,
                what: What::Snapshot([(1, 101), (2, 200)].into()),
            },
        ];
        assert!(check(&init, &h2).is_ok());
    }
}
