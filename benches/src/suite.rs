//! The criterion bodies of the map benchmarks, shared by `benches/maps.rs` (system
//! allocator) and `benches/maps_mimalloc.rs` (mimalloc as `#[global_allocator]`).
//!
//! IDs: `<group>/<map>/<hasher>/<allocator>[/<threads>]`, e.g.
//! `mix_exchange/ctrie/foldhash/mimalloc/2`. Maps are built lazily inside the benchmark, so a
//! criterion filter (`cargo bench --bench maps -- 'ctrie/std'`) also skips the set-up of the
//! maps it filters out.

use std::time::{Duration, Instant};

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};

use crate::for_each_map;
use crate::maps::{fill, Hasher, Map};
use crate::workload::{keys, run_mix, KeySpace, Mix, EXCHANGE, MIX_90_5_5, RAPID_GROW, READ_HEAVY};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Operations per thread per iteration of a mix.
const MIX_OPS: usize = 1 << 16;

fn id<M: Map, H: Hasher>(alloc: &str) -> String {
    format!("{}/{}/{alloc}", M::NAME, H::LABEL)
}

/// Inserting `keys()` distinct keys in random order into an empty map (per insert).
fn insert<M: Map>(g: &mut Group, ks: &[u64], id: &str) {
    g.bench_function(id, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let m = M::new();
                let t = Instant::now();
                fill(&m, ks);
                total += t.elapsed();
                drop(m);
            }
            total
        })
    });
}

/// Looking up `probe` (all present, or all absent) in a map holding `ks`, 64 per pin.
fn get<M: Map>(g: &mut Group, ks: &[u64], probe: &[u64], id: &str) {
    let mut map = None;
    let mut i = 0;
    g.bench_function(id, |b| {
        let m = map.get_or_insert_with(|| {
            let m = M::new();
            fill(&m, ks);
            m
        });
        b.iter(|| {
            let chunk = &probe[i..i + 64];
            i = (i + 64) % (probe.len() - 64);
            m.batch(|m| {
                chunk
                    .iter()
                    .map(|&k| m.get(k).unwrap_or(0))
                    .fold(0, u64::wrapping_add)
            })
        })
    });
}

/// `mix` at 1 and 2 threads (or only `threads`) on a map prefilled with `keys()` keys.
pub fn mix<M: Map>(g: &mut Group, mix: &Mix, threads: &[usize], ks: &KeySpace, id: &str) {
    let mut map = None;
    for &t in threads {
        g.throughput(Throughput::Elements((t * MIX_OPS) as u64));
        g.bench_function(BenchmarkId::new(id, t), |b| {
            let m = map.get_or_insert_with(|| {
                let m = M::new();
                fill(&m, &ks.prefill);
                m
            });
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|it| run_mix(m, mix, t, MIX_OPS, ks, it))
                    .sum()
            })
        });
    }
}

struct Data {
    n: usize,
    ks: Vec<u64>,
    absent: Vec<u64>,
    space: KeySpace,
}

fn single<M: Map, H: Hasher>(c: &mut Criterion, d: &Data, alloc: &str) {
    let id = id::<M, H>(alloc);
    let mut g = c.benchmark_group("insert");
    g.sample_size(10)
        .throughput(Throughput::Elements(d.n as u64));
    insert::<M>(&mut g, &d.ks, &id);
    g.finish();
    for (name, probe) in [("get_hit", &d.ks), ("get_miss", &d.absent)] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(64));
        get::<M>(&mut g, &d.ks, probe, &id);
        g.finish();
    }
}

fn mixes<M: Map, H: Hasher>(c: &mut Criterion, d: &Data, alloc: &str) {
    let id = id::<M, H>(alloc);
    for (m, threads) in [
        (READ_HEAVY, &[1, 2][..]),
        (EXCHANGE, &[1, 2]),
        (RAPID_GROW, &[1, 2]),
        (MIX_90_5_5, &[2]),
    ] {
        let mut g = c.benchmark_group(m.name);
        g.sample_size(10);
        mix::<M>(&mut g, &m, threads, &d.space, &id);
        g.finish();
    }
}

/// Every map benchmark, with both hashers, labelled with allocator `alloc`.
pub fn all(c: &mut Criterion, alloc: &str) {
    let n = keys();
    let ks = crate::random_keys(n, 1);
    let absent = crate::random_keys(2 * n, 1)[n..].to_vec();
    let d = Data {
        n,
        ks,
        absent,
        space: KeySpace::new(n, 1),
    };
    for_each_map!(Std, single(c, &d, alloc));
    for_each_map!(Fold, single(c, &d, alloc));
    for_each_map!(Std, mixes(c, &d, alloc));
    for_each_map!(Fold, mixes(c, &d, alloc));
}
