// A read-only snapshot is immutable by type.
use ctrie::Ctrie;

fn main() {
    let map: Ctrie<u32, u32> = Ctrie::new();
    let snap = map.read_only_snapshot();
    snap.insert(1, 1);
    snap.remove(&1);
    snap.clear();
}
