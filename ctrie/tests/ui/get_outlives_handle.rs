// A reference returned by `pin().get()` lives only as long as the handle (its guard keeps the
// entry allocated).
use ctrie::Ctrie;

fn main() {
    let map: Ctrie<u32, String> = Ctrie::new();
    map.pin().insert(1, "one".to_string());
    let v: &String = {
        let m = map.pin();
        m.get(&1).unwrap()
    };
    map.pin().remove(&1);
    println!("{v}");
}
