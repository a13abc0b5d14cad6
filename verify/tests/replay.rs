//! Replays the committed fuzz seeds (`fuzz/seeds/<target>/*`) through the fuzz targets' logic,
//! so every CI run exercises them without the fuzzer.

use std::path::Path;

fn replay(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/seeds")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        f(&data);
        n += 1;
    }
    assert!(n > 0, "no seeds in {}", dir.display());
}

#[test]
fn ctrie_ops_seeds() {
    replay("ctrie_ops", verify::ctrie_ops);
}

#[test]
fn ctrie_threads_seeds() {
    replay("ctrie_threads", verify::ctrie_threads);
}

#[test]
fn snapcache_stream_seeds() {
    replay("snapcache_stream", verify::snapcache_stream);
}
