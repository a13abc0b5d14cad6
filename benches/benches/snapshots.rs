//! What only a snapshot-capable map can do, against the best each peer offers (std's
//! `RandomState`, system allocator; see `benches::whole` for what each peer does):
//!
//! - `snapshot_cost/<map>/<n>`: a point-in-time copy of a map of n = 1k, 10k, 100k, 1M keys
//!   (10M with `BENCH_10M=1`; `BENCH_SNAPSHOT_MAX` caps n) while one writer overwrites values;
//!   O(1) for ctrie (`read_only_snapshot()`; `ctrie_writable` is `snapshot()`) and
//!   `ArcSwap<imbl>`, O(n) copies for the others. The copy is dropped outside the timing.
//! - `snapshot_cost_writer_30k/ctrie/<n>`: the same for ctrie with the writer paced at 30,000
//!   writes per second: flat out, the writer's own speed is part of the result (every write
//!   right after a snapshot copies its path, and those copies are reclaimed inside later
//!   snapshot calls), so this is the number to compare across versions of ctrie.
//! - `iterate_while_writing/<map>`: one full iteration of a `BENCH_KEYS`-key map while one
//!   writer runs (over a snapshot for ctrie and imbl; the `RwLock` blocks the writer).
//! - `len/<map>`: `len()` of a `BENCH_KEYS`-key map (contrie has none).
//! - `write_cost/<map>/std/system/<threads>`: inserts and overwrites (50/50) with 1 and 2
//!   concurrent writers: ctrie vs `ArcSwap<imbl>` (writers serialised by a mutex), papaya as
//!   the reference.
//!
//! Run: `cargo bench -p benches --bench snapshots` (add `-- --quick` for a short run).

use benches::maps::{
    ArcSwapImbl, Contrie, Ctrie, DashMap, Flurry, Map, Papaya, RwLockMap, Scc, SkipMap, Std,
};
use benches::suite::mix;
use benches::whole::{with_writer, with_writer_at, Whole};
use benches::workload::{keys, random_keys, KeySpace, WRITES};
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, BenchmarkId, Criterion, Throughput,
};

type Group<'a> = BenchmarkGroup<'a, criterion::measurement::WallTime>;

fn filled<M: Map>(ks: &[u64]) -> M {
    let m = M::new();
    benches::fill(&m, ks);
    m
}

fn snapshot_cost<M: Whole>(g: &mut Group, sizes: &[usize]) {
    for &n in sizes {
        let ks = random_keys(n, 2);
        let mut map = None;
        g.bench_function(BenchmarkId::new(M::NAME, n), |b| {
            let m = map.get_or_insert_with(|| filled::<M>(&ks));
            with_writer(m, &ks, || {
                b.iter_batched(|| (), |()| m.snapshot(), BatchSize::SmallInput)
            });
        });
    }
}

/// ctrie's snapshots taken by `take`, reported as `name`, with the writer at `rate` writes per
/// second (`None`: flat out): the writable `snapshot()` (also O(1); later writes to either side
/// copy paths lazily) and `read_only_snapshot()` under a paced writer.
fn ctrie_snapshot_cost<R>(
    g: &mut Group,
    sizes: &[usize],
    name: &str,
    rate: Option<u64>,
    take: impl Fn(&Ctrie<Std>) -> R,
) {
    for &n in sizes {
        let ks = random_keys(n, 2);
        let mut map = None;
        g.bench_function(BenchmarkId::new(name, n), |b| {
            let m: &Ctrie<Std> = map.get_or_insert_with(|| filled(&ks));
            with_writer_at(m, &ks, rate, || {
                b.iter_batched(|| (), |()| take(m), BatchSize::SmallInput)
            });
        });
    }
}

fn iterate_while_writing<M: Whole>(g: &mut Group, ks: &[u64]) {
    let mut map = None;
    g.bench_function(M::NAME, |b| {
        let m = map.get_or_insert_with(|| filled::<M>(ks));
        with_writer(m, ks, || b.iter(|| m.iterate()));
    });
}

fn len<M: Whole>(g: &mut Group, ks: &[u64]) {
    let mut map = None;
    if M::new().exact_len().is_none() {
        return;
    }
    g.bench_function(M::NAME, |b| {
        let m = map.get_or_insert_with(|| filled::<M>(ks));
        b.iter(|| m.exact_len())
    });
}

macro_rules! each {
    ($f:ident ( $($arg:expr),* )) => {{
        $f::<Ctrie<Std>>($($arg),*);
        $f::<ArcSwapImbl<Std>>($($arg),*);
        $f::<Papaya<Std>>($($arg),*);
        $f::<DashMap<Std>>($($arg),*);
        $f::<Scc<Std>>($($arg),*);
        $f::<Contrie<Std>>($($arg),*);
        $f::<Flurry<Std>>($($arg),*);
        $f::<RwLockMap<Std>>($($arg),*);
        $f::<SkipMap>($($arg),*);
    }};
}

fn snapshots(c: &mut Criterion) {
    let max = std::env::var("BENCH_SNAPSHOT_MAX")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    let mut sizes = vec![1_000, 10_000, 100_000, 1_000_000];
    if std::env::var_os("BENCH_10M").is_some() {
        sizes.push(10_000_000);
    }
    sizes.retain(|&n| n <= max);
    let mut g = c.benchmark_group("snapshot_cost");
    g.sample_size(10);
    each!(snapshot_cost(&mut g, &sizes));
    ctrie_snapshot_cost(&mut g, &sizes, "ctrie_writable", None, |m| m.0.snapshot());
    g.finish();

    let mut g = c.benchmark_group("snapshot_cost_writer_30k");
    g.sample_size(10);
    ctrie_snapshot_cost(&mut g, &sizes, "ctrie", Some(30_000), |m| {
        m.0.read_only_snapshot()
    });
    g.finish();

    let n = keys();
    let ks = random_keys(n, 3);
    let mut g = c.benchmark_group("iterate_while_writing");
    g.sample_size(10).throughput(Throughput::Elements(n as u64));
    each!(iterate_while_writing(&mut g, &ks));
    g.finish();

    let mut g = c.benchmark_group("len");
    each!(len(&mut g, &ks));
    g.finish();

    let space = KeySpace::new(n, 4);
    let mut g = c.benchmark_group("write_cost");
    g.sample_size(10);
    let ws = &[1, 2];
    mix::<Ctrie<Std>>(&mut g, &WRITES, ws, &space, "ctrie/std/system");
    mix::<ArcSwapImbl<Std>>(&mut g, &WRITES, ws, &space, "arcswap_imbl/std/system");
    mix::<Papaya<Std>>(&mut g, &WRITES, ws, &space, "papaya/std/system");
    g.finish();
}

criterion_group!(benches, snapshots);
criterion_main!(benches);
