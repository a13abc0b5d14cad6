//! ctrie against papaya, dashmap, scc and contrie: u64 keys and values, `RandomState`,
//! 1M keys (`BENCH_KEYS`) inserted in random order.
//!
//! Run: `cargo bench -p benches --bench maps` (add `-- --quick` for a short run).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Barrier;
use std::time::{Duration, Instant};

use benches::{fill, keys, random_keys, Contrie, Ctrie, DashMap, Map, Papaya, Scc};
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// Inserting `keys()` distinct keys in random order into an empty map (per insert).
fn insert<M: Map>(g: &mut Group, ks: &[u64]) {
    g.bench_function(M::NAME, |b| {
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

/// Looking up `probe` (all present, or all absent) in a map holding `ks`.
fn get<M: Map>(g: &mut Group, ks: &[u64], probe: &[u64]) {
    let m = M::new();
    fill(&m, ks);
    let mut i = 0;
    g.bench_function(M::NAME, |b| {
        b.iter(|| {
            // One pin per 64 lookups, as `fill` does for inserts.
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

/// Two threads, each running 90% get / 5% insert / 5% remove over a space of twice as many
/// keys as the map starts with (so about half the lookups hit), `OPS` operations per thread
/// per iteration.
fn mix<M: Map>(g: &mut Group, ks: &[u64], space: &[u64]) {
    const OPS: usize = 50_000;
    let m = M::new();
    fill(&m, ks);
    g.throughput(Throughput::Elements(2 * OPS as u64));
    g.bench_function(M::NAME, |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for it in 0..iters {
                let barrier = Barrier::new(2);
                let elapsed = std::thread::scope(|s| {
                    let hs: Vec<_> = (0..2u64)
                        .map(|t| {
                            let (m, barrier) = (&m, &barrier);
                            s.spawn(move || {
                                let mut x =
                                    (it * 2 + t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
                                barrier.wait();
                                let start = Instant::now();
                                for _ in 0..OPS / 64 {
                                    m.batch(|m| {
                                        for _ in 0..64 {
                                            x ^= x << 13;
                                            x ^= x >> 7;
                                            x ^= x << 17;
                                            let k = space[(x % space.len() as u64) as usize];
                                            match x % 100 {
                                                0..=89 => {
                                                    std::hint::black_box(m.get(k));
                                                }
                                                90..=94 => m.insert(k, x),
                                                _ => m.remove(k),
                                            }
                                        }
                                    });
                                }
                                start.elapsed()
                            })
                        })
                        .collect();
                    hs.into_iter().map(|h| h.join().unwrap()).max().unwrap()
                });
                total += elapsed;
            }
            total
        })
    });
}

fn maps(c: &mut Criterion) {
    let n = keys();
    let ks = random_keys(n, 1);
    let absent = random_keys(2 * n, 1)[n..].to_vec();
    let space = random_keys(2 * n, 1);

    let mut g = c.benchmark_group("insert");
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    insert::<Ctrie>(&mut g, &ks);
    insert::<Papaya>(&mut g, &ks);
    insert::<DashMap>(&mut g, &ks);
    insert::<Scc>(&mut g, &ks);
    insert::<Contrie>(&mut g, &ks);
    g.finish();

    for (name, probe) in [("get_hit", &ks), ("get_miss", &absent)] {
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(64));
        get::<Ctrie>(&mut g, &ks, probe);
        get::<Papaya>(&mut g, &ks, probe);
        get::<DashMap>(&mut g, &ks, probe);
        get::<Scc>(&mut g, &ks, probe);
        get::<Contrie>(&mut g, &ks, probe);
        g.finish();
    }

    let mut g = c.benchmark_group("mix_90_5_5_2threads");
    g.sample_size(20);
    mix::<Ctrie>(&mut g, &ks, &space);
    mix::<Papaya>(&mut g, &ks, &space);
    mix::<DashMap>(&mut g, &ks, &space);
    mix::<Scc>(&mut g, &ks, &space);
    mix::<Contrie>(&mut g, &ks, &space);
    g.finish();
}

/// What only a snapshot-capable map offers: `read_only_snapshot()` while a writer runs, at
/// growing sizes (it should not grow), and iterating a snapshot (per entry).
fn snapshots(c: &mut Criterion) {
    let mut sizes = vec![1_000, 10_000, 100_000, 1_000_000];
    if std::env::var_os("BENCH_10M").is_some() {
        sizes.push(10_000_000);
    }
    let mut g = c.benchmark_group("read_only_snapshot_with_writer");
    for &n in &sizes {
        let m = Ctrie::new();
        fill(&m, &random_keys(n, 2));
        let stop = AtomicBool::new(false);
        std::thread::scope(|s| {
            let (m, stop) = (&m, &stop);
            s.spawn(move || {
                let mut x = 1u64;
                while !stop.load(Ordering::Relaxed) {
                    m.batch(|m| {
                        for _ in 0..64 {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            m.insert(x % (2 * n as u64), x);
                        }
                    });
                }
            });
            g.bench_function(format!("ctrie/{n}"), |b| {
                b.iter(|| m.0.read_only_snapshot())
            });
            stop.store(true, Ordering::Relaxed);
        });
    }
    g.finish();

    let n = keys();
    let m = Ctrie::new();
    fill(&m, &random_keys(n, 3));
    let snap = m.0.read_only_snapshot();
    let mut g = c.benchmark_group("iterate");
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    g.bench_function("ctrie", |b| {
        b.iter(|| snap.iter().map(|(_, v)| *v).fold(0, u64::wrapping_add))
    });
    let p = Papaya::new();
    fill(&p, &random_keys(n, 3));
    g.bench_function("papaya", |b| {
        b.iter(|| p.0.pin().iter().map(|(_, v)| *v).fold(0, u64::wrapping_add))
    });
    g.finish();
}

criterion_group!(benches, maps, snapshots);
criterion_main!(benches);
