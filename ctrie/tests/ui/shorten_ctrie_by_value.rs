// By value, covariance would bypass the `'static` bound of the constructors: the trie's deferred
// destructor of `D` would then write through a borrow that has ended.
use ctrie::Ctrie;

#[derive(Hash, PartialEq, Eq)]
struct D<'a>(&'a mut u32);

impl Drop for D<'_> {
    fn drop(&mut self) {
        *self.0 += 1;
    }
}

fn main() {
    let map_of_d_static: Ctrie<D<'static>, ()> = Ctrie::new();
    {
        let mut local = 0u32;
        let map: Ctrie<D<'_>, ()> = map_of_d_static;
        map.pin().insert(D(&mut local), ());
        drop(map);
    }
}
