// A set must be invariant in its element type too: a `CtrieSet<&'static str>` seen as a
// `CtrieSet<&'a str>` would accept a short-lived element, to be read back as `'static`.
use ctrie::CtrieSet;

fn shorten<'s, 'a>(s: &'s CtrieSet<&'static str>) -> &'s CtrieSet<&'a str> {
    s
}

fn main() {
    let set: CtrieSet<&'static str> = CtrieSet::new();
    {
        let local = String::from("short-lived");
        shorten(&set).pin().insert(local.as_str());
    }
    let _dangling: Vec<&'static str> = set.pin().iter().copied().collect();
}
