// Entries are shared between the threads that use `&Ctrie`: a trie of `Rc`s is not `Sync`.
use std::rc::Rc;

fn sync<T: Sync>(_: &T) {}

fn main() {
    let map: ctrie::Ctrie<u8, Rc<u8>> = ctrie::Ctrie::new();
    sync(&map);
}
