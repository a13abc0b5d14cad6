use ctrie::Ctrie;
const N: u64 = if cfg!(miri) { 300 } else { 10_000 };
use std::collections::HashMap;

#[test]
fn smoke() {
    let m: Ctrie<u64, u64> = Ctrie::new();
    let r = m.pin();
    for i in 0..N {
        assert_eq!(r.insert(i, i * 2), None);
    }
    for i in 0..N {
        assert_eq!(r.get(&i), Some(&(i * 2)));
    }
    assert_eq!(m.len(), N as usize);
    let snap = m.read_only_snapshot();
    for i in 0..N / 2 {
        assert_eq!(r.remove(&i), Some(&(i * 2)));
    }
    assert_eq!(m.len(), N as usize / 2);
    assert_eq!(snap.len(), N as usize);
    let mut seen: HashMap<u64, u64> = snap.iter().map(|(k, v)| (*k, *v)).collect();
    assert_eq!(seen.len(), N as usize);
    seen.clear();
    seen.extend(r.iter().map(|(k, v)| (*k, *v)));
    assert_eq!(seen.len(), N as usize / 2);
    m.clear();
    assert!(m.is_empty());
    assert_eq!(snap.get(&7), Some(&14));
}
