//! `serde` support (the `serde` feature): a [`Ctrie`] or a [`Snapshot`] serializes as a map
//! (a [`CtrieSet`] or a [`SetSnapshot`] as a sequence) from one consistent read-only snapshot;
//! they deserialize into a new trie (and a snapshot of it).
//!
//! ```
//! # #[cfg(feature = "serde")] {
//! let map: ctrie::Ctrie<String, u32> = [("a".to_string(), 1)].into_iter().collect();
//! let json = serde_json::to_string(&map).unwrap();
//! assert_eq!(json, r#"{"a":1}"#);
//! let back: ctrie::Ctrie<String, u32> = serde_json::from_str(&json).unwrap();
//! assert_eq!(back, map);
//! # }
//! ```

use core::fmt;
use core::hash::{BuildHasher, Hash};
use core::marker::PhantomData;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};

use crate::map::Ctrie;
use crate::set::{CtrieSet, SetSnapshot};
use crate::snapshot::Snapshot;

impl<K: Serialize, V: Serialize, S> Serialize for Snapshot<K, V, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (k, v) in self {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<K: Serialize, V: Serialize, S> Serialize for Ctrie<K, V, S> {
    /// Serializes a read-only snapshot taken now: the entries at one instant, whatever other
    /// threads write meanwhile.
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.read_only_snapshot().serialize(serializer)
    }
}

impl<T: Serialize, S> Serialize for SetSnapshot<T, S> {
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for v in self {
            seq.serialize_element(v)?;
        }
        seq.end()
    }
}

impl<T: Serialize, S> Serialize for CtrieSet<T, S> {
    /// Serializes a read-only snapshot taken now.
    fn serialize<Z: Serializer>(&self, serializer: Z) -> Result<Z::Ok, Z::Error> {
        self.read_only_snapshot().serialize(serializer)
    }
}

/// What a visitor builds (a `fn` type: the visitor owns nothing).
type Builds<T> = PhantomData<fn() -> T>;

struct MapVisitor<K, V, S>(Builds<Ctrie<K, V, S>>);

impl<'de, K, V, S> Visitor<'de> for MapVisitor<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq + 'static,
    V: Deserialize<'de> + 'static,
    S: BuildHasher + Default,
{
    type Value = Ctrie<K, V, S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let map = Ctrie::default();
        {
            let m = map.pin();
            while let Some((k, v)) = access.next_entry()? {
                m.insert(k, v);
            }
        }
        Ok(map)
    }
}

impl<'de, K, V, S> Deserialize<'de> for Ctrie<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq + 'static,
    V: Deserialize<'de> + 'static,
    S: BuildHasher + Default,
{
    /// A new trie with the entries of the map read (a later duplicate key replaces an
    /// earlier one).
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

impl<'de, K, V, S> Deserialize<'de> for Snapshot<K, V, S>
where
    K: Deserialize<'de> + Hash + Eq + 'static,
    V: Deserialize<'de> + 'static,
    S: BuildHasher + Default,
{
    /// A read-only snapshot of a new trie with the entries of the map read.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ctrie::deserialize(deserializer).map(|m: Ctrie<K, V, S>| m.read_only_snapshot())
    }
}

struct SetVisitor<T, S>(Builds<CtrieSet<T, S>>);

impl<'de, T, S> Visitor<'de> for SetVisitor<T, S>
where
    T: Deserialize<'de> + Hash + Eq + 'static,
    S: BuildHasher + Default,
{
    type Value = CtrieSet<T, S>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let set = CtrieSet::default();
        {
            let s = set.pin();
            while let Some(v) = access.next_element()? {
                s.insert(v);
            }
        }
        Ok(set)
    }
}

impl<'de, T, S> Deserialize<'de> for CtrieSet<T, S>
where
    T: Deserialize<'de> + Hash + Eq + 'static,
    S: BuildHasher + Default,
{
    /// A new set with the elements of the sequence read.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(SetVisitor(PhantomData))
    }
}
