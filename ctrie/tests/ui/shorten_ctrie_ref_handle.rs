// A `CtrieRef` handle inserts through `&self`: it must be invariant in its keys.
use ctrie::{Ctrie, CtrieRef};

fn shorten<'c, 'a>(r: CtrieRef<'c, &'static str, u32>) -> CtrieRef<'c, &'a str, u32> {
    r
}

fn main() {
    let map: Ctrie<&'static str, u32> = Ctrie::new();
    let s = String::from("short-lived");
    shorten(map.pin()).insert(s.as_str(), 1);
}
