//! `Snapshot::diff` of two snapshots of one trie 100 writes apart, at 10k, 100k and 1M keys
//! (10M with `DIFF_BENCH_10M=1`, manual only: building it takes minutes): the cost should be
//! microseconds, flat in the size. For scale, a full rewrite at 100k keys: the diff against a
//! full iteration of one snapshot.
//!
//!
//! `catch_up_100k`: what a snapcache follower that fell `gap` breadcrumbs behind (100 updates
//! each, 100k keys, the fan-out demo's encoding) pays to reach the newest breadcrumb: reloading
//! the newest snapshot into its state, or applying `Breadcrumb::changes_since`.
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

fn word(i: u64) -> snapcache::Bytes {
    snapcache::Bytes::copy_from_slice(&(i as u32).to_le_bytes())
}

fn decode(b: &[u8]) -> usize {
    u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize
}

fn catch_up(c: &mut Criterion) {
    use snapcache::{Cache, CancelToken, Config, SyncStatus, Update, UpdateType};
    const KEYS: u64 = 100_000;
    let cache = Cache::new(Config {
        max_batch_size: 100,
        ..Config::default()
    });
    let mut x = 1u64;
    let mut n = 0;
    let mut block = |cache: &Cache, updates: u64| {
        let batch = (0..updates)
            .map(|_| {
                n += 1;
                let k = if n <= KEYS { n - 1 } else { rng(&mut x) % KEYS };
                Update::set(word(k), word(n), UpdateType::Updated)
            })
            .collect();
        cache.on_updates(batch).unwrap();
    };
    for _ in 0..KEYS / 100 {
        block(&cache, 100);
    }
    let gaps = [10u64, 100, 1000];
    let mut crumb = cache.current_breadcrumb();
    let token = CancelToken::new();
    // Wait until the initial load is in, then publish `max(gaps)` more breadcrumbs.
    while crumb.kvs.len() < KEYS as usize {
        crumb = crumb.next(&token).unwrap();
    }
    let start = crumb.sequence_number;
    for _ in 0..*gaps.iter().max().unwrap() {
        block(&cache, 100);
    }
    cache.on_status_updated(SyncStatus::InSync).unwrap();
    let mut chain = vec![crumb.clone()];
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb.next(&token).unwrap();
        chain.push(crumb.clone());
    }
    let newest = chain.last().unwrap().clone();
    let mut g = c.benchmark_group("catch_up_100k");
    for gap in gaps {
        let seq = newest.sequence_number.saturating_sub(gap).max(start);
        let older = chain.iter().find(|c| c.sequence_number == seq).unwrap();
        let mut state = vec![0u32; KEYS as usize];
        for (k, u) in &older.kvs {
            state[decode(k)] = decode(u.value.as_deref().unwrap()) as u32;
        }
        let base = state.clone();
        g.bench_with_input(BenchmarkId::new("reload", gap), &gap, |b, _| {
            b.iter(|| {
                state.iter_mut().for_each(|v| *v = 0);
                for (k, u) in &newest.kvs {
                    state[decode(k)] = decode(u.value.as_deref().unwrap()) as u32;
                }
                black_box(&state);
            })
        });
        let mut expected = vec![0u32; KEYS as usize];
        for (k, u) in &newest.kvs {
            expected[decode(k)] = decode(u.value.as_deref().unwrap()) as u32;
        }
        let apply = |state: &mut Vec<u32>| {
            for d in newest.changes_since(older) {
                match d {
                    ctrie::DiffItem::Added(k, u)
                    | ctrie::DiffItem::Updated { key: k, new: u, .. } => {
                        state[decode(k)] = decode(u.value.as_deref().unwrap()) as u32
                    }
                    ctrie::DiffItem::Removed(k, _) => state[decode(k)] = 0,
                }
            }
        };
        // Checked once, whether or not a filter skips the benchmarks below.
        let mut caught_up = base.clone();
        apply(&mut caught_up);
        assert!(
            caught_up == expected,
            "changes_since did not reach the newest state"
        );
        g.bench_with_input(BenchmarkId::new("changes_since", gap), &gap, |b, _| {
            b.iter(|| {
                state.copy_from_slice(&base);
                apply(&mut state);
                black_box(&state);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, diff_100_changes, diff_vs_iteration, catch_up);
criterion_main!(benches);
