// A trie of `&'static str` must not be usable as a trie of shorter-lived keys through a shared
// reference: the short-lived key would be stored and later read back as `&'static str`.
use ctrie::Ctrie;

fn shorten<'a>(m: &'a Ctrie<&'static str, u32>) -> &'a Ctrie<&'a str, u32> {
    m
}

fn main() {
    let map: Ctrie<&'static str, u32> = Ctrie::new();
    {
        let s = String::from("short-lived");
        shorten(&map).pin().insert(s.as_str(), 1);
    }
    for (k, _) in map.read_only_snapshot().iter() {
        let k: &'static str = k;
        println!("{k}");
    }
}
