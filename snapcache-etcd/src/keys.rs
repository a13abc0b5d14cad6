//! The key range a prefix stands for, and the keys the cache holds (what a resync must delete).

use std::collections::HashMap;

use bytes::Bytes;
use snapcache::UpdateType;

use crate::mutant::{self, Mutant};

/// The etcd key range `[start, end)` of a prefix, used alike by lists and watches so that they
/// cover exactly the same keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyRange {
    pub(crate) start: Vec<u8>,
    pub(crate) end: Vec<u8>,
}

impl KeyRange {
    /// The keys starting with `prefix`; every key if it is empty.
    pub(crate) fn prefix(prefix: &[u8]) -> Self {
        if prefix.is_empty() {
            // etcd's "every key": from "\0" with range end "\0".
            return KeyRange {
                start: vec![0],
                end: vec![0],
            };
        }
        let end = if mutant::active(Mutant::PrefixEndAllAbove) {
            vec![0]
        } else {
            prefix_end(prefix)
        };
        KeyRange {
            start: prefix.to_vec(),
            end,
        }
    }

    /// Whether `key` is in the range.
    #[cfg(test)]
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && (self.end == [0] || key < self.end.as_slice())
    }
}

/// The smallest key greater than every key starting with `prefix`: the prefix without its
/// trailing `0xff` bytes, last byte plus one. A prefix of only `0xff` bytes has no such key;
/// "\0" then means "no upper bound", which is right because every key above it has the prefix.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&b| b != 0xff) {
        Some(i) => {
            let mut end = prefix[..=i].to_vec();
            end[i] += 1;
            end
        }
        None => vec![0],
    }
}

/// A key as the cache carries it: etcd's bytes, unchanged (keys need not be UTF-8).
pub(crate) fn key_from_etcd(key: Vec<u8>) -> Bytes {
    if mutant::active(Mutant::LossyKeys) {
        return Bytes::from(String::from_utf8_lossy(&key).into_owned());
    }
    Bytes::from(key)
}

/// The revision as the cache carries it: decimal ASCII, as etcdctl prints it.
pub(crate) fn revision_bytes(revision: i64) -> Bytes {
    Bytes::from(revision.to_string())
}

/// The keys the syncer has given the cache and not deleted since.
///
/// It decides an update's type (`New` for a key the cache does not hold, else `Updated`, so
/// that the cache skips a resent unchanged value) and, at the end of a list, which keys the
/// list lacks: those are deletions the watch never delivered (they were compacted away).
#[derive(Debug, Default)]
pub(crate) struct KnownKeys {
    /// Each key with the generation of the last list (or watch) that gave it.
    keys: HashMap<Bytes, u64>,
    /// Bumped at the start of every list.
    generation: u64,
}

impl KnownKeys {
    /// Records a put of `key` seen by the watch; returns the type to send it as.
    pub(crate) fn put(&mut self, key: Bytes) -> UpdateType {
        match self.keys.insert(key, self.generation) {
            None => UpdateType::New,
            Some(_) => UpdateType::Updated,
        }
    }

    /// Records a deletion of `key`.
    pub(crate) fn remove(&mut self, key: &[u8]) {
        self.keys.remove(key);
    }

    /// Starts a list: from now on, keys not passed to [`listed`](Self::listed) are stale.
    pub(crate) fn begin_list(&mut self) {
        self.generation += 1;
    }

    /// Records a key of the current list; returns the type to send it as.
    pub(crate) fn listed(&mut self, key: Bytes) -> UpdateType {
        self.put(key)
    }

    /// Ends a list: forgets and returns the keys the cache holds that the list lacked.
    pub(crate) fn finish_list(&mut self) -> Vec<Bytes> {
        let generation = self.generation;
        let stale: Vec<Bytes> = self
            .keys
            .iter()
            .filter(|(_, &listed_in)| listed_in != generation)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &stale {
            self.keys.remove(key);
        }
        if mutant::active(Mutant::NoResyncDeletions) {
            return Vec::new();
        }
        stale
    }

    /// How many keys the cache holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_is_the_first_key_after_the_prefix() {
        assert_eq!(prefix_end(b"/a/"), b"/a0");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"a\xfe\xff\xff"), b"a\xff");
        assert_eq!(prefix_end(b"\xff\xff"), b"\0");
    }

    #[test]
    fn a_prefix_range_holds_exactly_the_prefixed_keys() {
        let r = KeyRange::prefix(b"/a/");
        for k in [&b"/a/"[..], b"/a/x", b"/a/\xff\xff", b"/a/\0"] {
            assert!(r.contains(k), "{k:?}");
        }
        for k in [&b"/a"[..], b"/a0", b"/b", b"/a.", b""] {
            assert!(!r.contains(k), "{k:?}");
        }
        let all = KeyRange::prefix(b"");
        assert_eq!(
            (all.start.as_slice(), all.end.as_slice()),
            (&b"\0"[..], &b"\0"[..])
        );
        let top = KeyRange::prefix(b"\xff");
        assert!(top.contains(b"\xff\x00") && !top.contains(b"\xfe"));
    }

    #[test]
    fn a_list_returns_what_it_lacked_and_types_follow_what_the_cache_holds() {
        let mut k = KnownKeys::default();
        k.begin_list();
        assert_eq!(k.listed("a".into()), UpdateType::New);
        assert_eq!(k.listed("b".into()), UpdateType::New);
        assert!(k.finish_list().is_empty());
        assert_eq!(k.put("c".into()), UpdateType::New);
        assert_eq!(k.put("a".into()), UpdateType::Updated);
        k.remove(b"b");
        assert_eq!(k.put("b".into()), UpdateType::New);
        // A relist that lacks "a" and "c".
        k.begin_list();
        assert_eq!(k.listed("b".into()), UpdateType::Updated);
        assert_eq!(k.listed("d".into()), UpdateType::New);
        let mut stale = k.finish_list();
        stale.sort();
        assert_eq!(stale, [Bytes::from("a"), Bytes::from("c")]);
        assert_eq!(k.len(), 2);
    }
}
