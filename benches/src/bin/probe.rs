//! A quick probe of the single-key costs (insert, get hit, get miss), a full iteration and the
//! 2-thread 90/5/5 mix for ctrie and its closest peers, in one process, in well under a minute. For iterating on the
//! trie; the numbers to publish come from the criterion suite (`benches/run.sh`).
//!
//! ```text
//! cargo run --release -p benches --bin probe [-- KEYS [ROUNDS]]
//! ```
//!
//! Prints, per map, the best of `ROUNDS` (default 3) rounds of each measurement, in ns per
//! operation (the mix in million operations per second).

use std::time::Instant;

use benches::fill;
use benches::maps::{Contrie, Ctrie, Papaya, Std};
use benches::whole::Whole;
use benches::workload::{random_keys, run_mix, KeySpace, MIX_90_5_5};

fn probe<M: Whole>(n: usize, rounds: usize) {
    let keys = random_keys(n, 1);
    let misses = random_keys(n, 2);
    let (mut ins, mut hit, mut miss, mut iter, mut mix) =
        (f64::MAX, f64::MAX, f64::MAX, f64::MAX, 0f64);
    for _ in 0..rounds {
        let m = M::new();
        let t = Instant::now();
        fill(&m, &keys);
        ins = ins.min(t.elapsed().as_nanos() as f64 / n as f64);
        // Look the keys up in another random order than they were inserted in.
        let t = Instant::now();
        for c in keys.chunks(64).rev() {
            m.batch(|m| {
                c.iter().rev().for_each(|&k| {
                    std::hint::black_box(m.get(k));
                })
            });
        }
        hit = hit.min(t.elapsed().as_nanos() as f64 / n as f64);
        let t = Instant::now();
        for c in misses.chunks(64) {
            m.batch(|m| {
                c.iter().for_each(|&k| {
                    std::hint::black_box(m.get(k));
                })
            });
        }
        miss = miss.min(t.elapsed().as_nanos() as f64 / n as f64);
        let t = Instant::now();
        std::hint::black_box(m.iterate());
        iter = iter.min(t.elapsed().as_nanos() as f64 / n as f64);
        drop(m);
        let m = M::new();
        let space = KeySpace::new(n, 3);
        fill(&m, &space.prefill);
        let ops = n;
        let d = run_mix(&m, &MIX_90_5_5, 2, ops, &space, 4);
        mix = mix.max(2.0 * ops as f64 / d.as_secs_f64() / 1e6);
    }
    println!(
        "{:<8} insert {ins:>7.1} ns  get hit {hit:>6.1} ns  get miss {miss:>6.1} ns  iter {iter:>6.1} ns/entry  mix 2t {mix:>5.2} Mops/s",
        M::NAME
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(3);
    println!("{n} keys, best of {rounds} rounds, std hasher, system allocator");
    // `PROBE_ONLY=ctrie` (or papaya, contrie) runs one map, e.g. under `perf record`.
    let only = std::env::var("PROBE_ONLY").ok();
    let run = |name: &str| only.as_deref().is_none_or(|o| o == name);
    if run("ctrie") {
        probe::<Ctrie<Std>>(n, rounds);
    }
    if run("papaya") {
        probe::<Papaya<Std>>(n, rounds);
    }
    if run("contrie") {
        probe::<Contrie<Std>>(n, rounds);
    }
}
