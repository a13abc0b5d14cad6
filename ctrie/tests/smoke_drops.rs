use ctrie::Ctrie;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

struct D(Arc<AtomicIsize>);
impl Drop for D {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn flush() {
    for _ in 0..200 {
        ctrie::pin().flush();
    }
}

#[test]
fn drops_exactly_once() {
    let live = Arc::new(AtomicIsize::new(0));
    let mk = || {
        live.fetch_add(1, Ordering::SeqCst);
        D(live.clone())
    };
    {
        let m: Ctrie<u64, D> = Ctrie::new();
        let r = m.pin();
        for i in 0..if cfg!(miri) { 200 } else { 2000 } {
            r.insert(i, mk());
        }
        let s1 = m.read_only_snapshot();
        let w = m.snapshot();
        for i in 0..if cfg!(miri) { 100 } else { 1000 } {
            r.insert(i, mk());
            r.remove(&(i + 1000));
        }
        {
            let wr = w.pin();
            for i in 0..if cfg!(miri) { 50 } else { 500 } {
                wr.insert(i * 3, mk());
                wr.remove(&(i * 2));
            }
        }
        assert_eq!(s1.len(), if cfg!(miri) { 200 } else { 2000 });
        drop(r);
        m.clear();
        drop(w);
        drop(s1);
    }
    flush();
    std::thread::sleep(std::time::Duration::from_millis(10));
    flush();
    assert_eq!(live.load(Ordering::SeqCst), 0);
}
