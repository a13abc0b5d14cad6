//! `Snapshot::diff` of two snapshots of one trie 100 writes apart, at 10k, 100k and 1M keys
//! (10M with `DIFF_BENCH_10M=1`, manual only: building it takes minutes): the cost should be
//! microseconds, flat in the size. For scale, a full rewrite at 100k keys: the diff against a
//! full iteration of one snapshot.
//!
//! ```sh
//! cargo bench -p benches --bench diff -- --warm-up-time 1 --measurement-time 3
//! DIFF_BENCH_10M=1 cargo bench -p benches --bench diff -- 10000000
//! ```

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use ctrie::{Ctrie, Snapshot};

fn rng(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// A trie of `n` keys, a snapshot, `changes` random writes (a third of them removals), and a
/// second snapshot.
fn pair(n: u64, changes: u64) -> (Snapshot<u64, u64>, Snapshot<u64, u64>) {
    let map: Ctrie<u64, u64> = Ctrie::new();
    let mut x = 0x9E37_79B9_7F4A_7C15;
    {
        let m = map.pin();
        for k in 0..n {
            m.insert(rng(&mut x), k);
        }
    }
    let mut keys: Vec<u64> = map.read_only_snapshot().keys().copied().collect();
    let a = map.read_only_snapshot();
    let m = map.pin();
    for i in 0..changes {
        let k = keys[(rng(&mut x) % keys.len() as u64) as usize];
        match i % 3 {
            0 => {
                m.remove(&k);
            }
            1 => {
                m.insert(k, i);
            }
            _ => {
                let fresh = rng(&mut x);
                m.insert(fresh, i);
                keys.push(fresh);
            }
        }
    }
    drop(m);
    (a, map.read_only_snapshot())
}

fn diff_100_changes(c: &mut Criterion) {
    let mut g = c.benchmark_group("diff_100_changes");
    let mut sizes = vec![10_000u64, 100_000, 1_000_000];
    if std::env::var_os("DIFF_BENCH_10M").is_some() {
        sizes.push(10_000_000);
    }
    for n in sizes {
        let (a, b) = pair(n, 100);
        assert!(a.diff(&b).count() >= 90);
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |bench, _| {
            bench.iter(|| black_box(a.diff(&b).count()))
        });
    }
    g.finish();
}

fn diff_vs_iteration(c: &mut Criterion) {
    let mut g = c.benchmark_group("diff_full_rewrite_100k");
    let (a, b) = pair(100_000, 300_000);
    g.bench_function("diff", |bench| bench.iter(|| black_box(a.diff(&b).count())));
    g.bench_function("iterate_newer", |bench| {
        bench.iter(|| black_box(b.iter().count()))
    });
    g.finish();
}

criterion_group!(benches, diff_100_changes, diff_vs_iteration);
criterion_main!(benches);
