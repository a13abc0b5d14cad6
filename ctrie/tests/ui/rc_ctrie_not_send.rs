// Entries are dropped on whichever thread reclaims them: a trie of `Rc`s is not `Send`.
use std::rc::Rc;

fn send<T: Send>(_: &T) {}

fn main() {
    let map: ctrie::Ctrie<Rc<u8>, u8> = ctrie::Ctrie::new();
    send(&map);
}
