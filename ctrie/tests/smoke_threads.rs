use ctrie::Ctrie;
use std::thread;

#[test]
fn concurrent_mixed_with_snapshots() {
    let m: Ctrie<u64, u64> = Ctrie::new();
    thread::scope(|s| {
        for t in 0..3u64 {
            let m = &m;
            s.spawn(move || {
                let mut x = t * 7919 + 1;
                for _ in 0..if cfg!(miri) { 300 } else { 20_000 } {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let k = x % 512;
                    let r = m.pin();
                    match x % 7 {
                        0 => {
                            r.remove(&k);
                        }
                        1 => {
                            let s = m.read_only_snapshot();
                            let n = s.iter().count();
                            assert_eq!(n, s.len());
                        }
                        2 => {
                            let w = m.snapshot();
                            w.pin().insert(k, 0);
                        }
                        _ => {
                            r.insert(k, k);
                        }
                    }
                }
            });
        }
    });
    let s = m.read_only_snapshot();
    for (k, v) in s.iter() {
        assert_eq!(k, v);
    }
}
