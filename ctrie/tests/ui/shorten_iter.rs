// An iterator may own a read-only snapshot of the trie: it is invariant in keys and values too.
use ctrie::{Ctrie, Iter};

fn shorten<'i, 'a>(it: Iter<'i, &'static str, u32>) -> Iter<'i, &'a str, u32> {
    it
}

fn main() {
    let map: Ctrie<&'static str, u32> = Ctrie::new();
    let guard = map.guard();
    let _ = shorten(map.iter(&guard)).count();
}
