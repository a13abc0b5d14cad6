// A read-only snapshot must not be shortened either: `Snapshot::snapshot()` turns it into a
// writable trie, which would then accept a short-lived `D` whose deferred destructor writes
// through a borrow that has ended.
use ctrie::{Ctrie, Snapshot};

#[derive(Hash, PartialEq, Eq)]
struct D<'a>(&'a mut u32);

impl Drop for D<'_> {
    fn drop(&mut self) {
        *self.0 += 1;
    }
}

fn shorten<'s, 'a>(s: &'s Snapshot<D<'static>, ()>) -> &'s Snapshot<D<'a>, ()> {
    s
}

fn main() {
    let map: Ctrie<D<'static>, ()> = Ctrie::new();
    let snap = map.read_only_snapshot();
    {
        let mut local = 0u32;
        let copy = shorten(&snap).snapshot();
        copy.pin().insert(D(&mut local), ());
    }
}
