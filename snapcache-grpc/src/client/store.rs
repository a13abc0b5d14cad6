//! The client's local state and its reconciliation with a fresh snapshot.
//!
//! Typha's client has no resume, so after every reconnect it receives a full snapshot and must
//! turn "keys I had that the new snapshot lacks" into deletions (its `DedupeBuffer`). Here that
//! happens only when a resume is impossible, but it must be just as right: every entry carries
//! the generation of the snapshot that last confirmed it; at the end of a snapshot, entries of
//! an older generation are deleted (and reported as deletions). Keys whose value did not change
//! are not reported again.

use std::collections::HashMap;

use bytes::Bytes;
use snapcache::Update;

/// The local map (if kept) and the reconciliation state.
#[derive(Debug, Default)]
pub(crate) struct Store {
    /// `None` when the client keeps no map (the handler reconciles).
    map: Option<HashMap<Bytes, (Update, u64)>>,
    generation: u64,
}

impl Store {
    pub(crate) fn new(keep_map: bool) -> Self {
        Store {
            map: keep_map.then(HashMap::new),
            generation: 0,
        }
    }

    /// A fresh snapshot begins.
    pub(crate) fn begin_snapshot(&mut self) {
        self.generation += 1;
    }

    /// Applies snapshot entries; `out` receives those to report (all of them without a map;
    /// with one, those that changed something).
    pub(crate) fn snapshot_kvs(&mut self, kvs: Vec<Update>, out: &mut Vec<Update>) {
        let generation = self.generation;
        let Some(map) = &mut self.map else {
            out.extend(kvs);
            return;
        };
        for u in kvs {
            match map.get_mut(&u.key) {
                Some((old, g)) if old.value == u.value && old.ttl == u.ttl => *g = generation,
                _ => {
                    map.insert(u.key.clone(), (u.clone(), generation));
                    out.push(u);
                }
            }
        }
    }

    /// The snapshot is complete: keys it did not confirm are deleted and reported in `out`.
    pub(crate) fn end_snapshot(&mut self, out: &mut Vec<Update>) {
        let generation = self.generation;
        let Some(map) = &mut self.map else { return };
        if crate::seeded::active("forget_deletions") {
            return; // Seeded bug: the keys that disappeared stay.
        }
        map.retain(|key, (_, g)| {
            let keep = *g == generation;
            if !keep {
                out.push(Update::delete(key.clone()));
            }
            keep
        });
    }

    /// Applies deltas (reported as received).
    pub(crate) fn deltas(&mut self, kvs: &[Update]) {
        let generation = self.generation;
        let Some(map) = &mut self.map else { return };
        for u in kvs {
            match &u.value {
                Some(_) => {
                    map.insert(u.key.clone(), (u.clone(), generation));
                }
                None => {
                    map.remove(&u.key);
                }
            }
        }
    }

    /// A copy of the map (key to value), if kept.
    pub(crate) fn map(&self) -> Option<HashMap<Bytes, Bytes>> {
        let map = self.map.as_ref()?;
        Some(
            map.iter()
                .filter_map(|(k, (u, _))| Some((k.clone(), u.value.clone()?)))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapcache::UpdateType;

    fn set(k: &str, v: &str) -> Update {
        Update::set(k.to_owned(), v.to_owned(), UpdateType::New)
    }

    #[test]
    fn a_resync_reports_changes_and_deletions_only() {
        let mut store = Store::new(true);
        let mut out = Vec::new();
        store.begin_snapshot();
        store.snapshot_kvs(vec![set("a", "1"), set("b", "2"), set("c", "3")], &mut out);
        store.end_snapshot(&mut out);
        assert_eq!(out.len(), 3);
        store.deltas(&[set("d", "4")]);

        out.clear();
        store.begin_snapshot();
        store.snapshot_kvs(vec![set("a", "1"), set("b", "20")], &mut out);
        store.end_snapshot(&mut out);
        let mut reported: Vec<_> = out
            .iter()
            .map(|u| (u.key.clone(), u.value.clone()))
            .collect();
        reported.sort();
        // a is unchanged (not reported), b changed, c and d are gone.
        assert_eq!(
            reported,
            [
                (Bytes::from("b"), Some(Bytes::from("20"))),
                (Bytes::from("c"), None),
                (Bytes::from("d"), None),
            ]
        );
        let map = store.map().unwrap();
        assert_eq!(map.len(), 2);
        assert_eq!(map[&Bytes::from("b")], "20");
    }
}
