use ctrie::Ctrie;
use std::hash::{BuildHasher, Hasher};

#[derive(Default, Clone)]
struct Const;
struct ConstH;
impl Hasher for ConstH {
    fn finish(&self) -> u64 {
        42
    }
    fn write(&mut self, _: &[u8]) {}
}
impl BuildHasher for Const {
    type Hasher = ConstH;
    fn build_hasher(&self) -> ConstH {
        ConstH
    }
}

#[test]
fn lnodes() {
    let m: Ctrie<u32, u32, Const> = Ctrie::with_hasher(Const);
    let r = m.pin();
    for i in 0..50 {
        assert_eq!(r.insert(i, i), None);
    }
    let s = m.read_only_snapshot();
    for i in 0..50 {
        assert_eq!(r.insert(i, i + 1), Some(&i));
    }
    assert_eq!(m.len(), 50);
    for i in 0..49 {
        assert_eq!(r.remove(&i), Some(&(i + 1)));
    }
    assert_eq!(m.len(), 1);
    assert_eq!(r.get(&49), Some(&50));
    assert_eq!(r.remove(&49), Some(&50));
    assert!(m.is_empty());
    assert_eq!(s.len(), 50);
    assert_eq!(s.iter().count(), 50);
}
