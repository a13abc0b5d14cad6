//! Stress tests: 2 to 4 threads run random operations (and snapshots) on one trie, and every
//! recorded history must be linearizable. `ci/mutants.sh` shows this catches a read-only
//! snapshot that shares the live root (cfg ctrie_mutant = "ro_snapshot_live_root").

use arbitrary::{Arbitrary, Unstructured};
use verify::{run_threads, FuzzHasher, ThreadOp};

fn random_ops(seed: u64, n: usize) -> Vec<ThreadOp> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let bytes: Vec<u8> = (0..n * 4)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    let mut u = Unstructured::new(&bytes);
    (0..n)
        .map_while(|_| ThreadOp::arbitrary(&mut u).ok())
        .collect()
}

fn rounds() -> u64 {
    std::env::var("LIN_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(if cfg!(miri) { 2 } else { 2000 })
}

#[test]
fn two_threads_random_histories_are_linearizable() {
    for round in 0..rounds() {
        let (a, b) = (random_ops(round * 2 + 1, 40), random_ops(round * 2 + 2, 40));
        run_threads(FuzzHasher::default(), &[&a, &b], 6);
    }
}

#[test]
fn four_threads_with_collisions_are_linearizable() {
    for round in 0..rounds() / 3 {
        let ops: Vec<Vec<ThreadOp>> = (0..4)
            .map(|t| random_ops(round * 4 + t + 1000, 25))
            .collect();
        let refs: Vec<&[ThreadOp]> = ops.iter().map(|o| &o[..]).collect();
        run_threads(verify::FuzzHasher::colliding(), &refs, 5);
    }
}

#[test]
fn snapshot_heavy_histories_are_linearizable() {
    for round in 0..rounds() / 3 {
        let writer: Vec<ThreadOp> = (0..40)
            .map(|i| {
                if i % 3 == 0 {
                    ThreadOp::Remove(i)
                } else {
                    ThreadOp::Insert(i)
                }
            })
            .collect();
        let reader = vec![ThreadOp::Snapshot; 12];
        let other = random_ops(round + 5000, 30);
        run_threads(FuzzHasher::default(), &[&writer, &reader, &other], 8);
    }
}
