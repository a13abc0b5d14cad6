//! The differential test: random etcd operations (seeded), with compactions and cut
//! connections among them; at the end the cache, etcd-client and etcdctl agree.

use etcd_client::CompactionOptions;
use snapcache_etcd::testing::{describe_difference, etcdctl_state, snapshot_state};
use snapcache_etcd::Phase;

use crate::common::*;

/// Seeds run by default; `SNAPCACHE_ETCD_SEED=N` runs seed N instead.
const SEEDS: [u64; 3] = [1, 2, 3];
/// Operations per seed.
const OPS: usize = 250;
/// Operations between two comparisons (a resync would heal a lost event by the end, so the
/// state is compared along the way too).
const CHECK_EVERY: usize = 25;

/// A random mix of puts (inside and outside the prefix, new and existing keys, unchanged
/// values), deletes (present and absent keys), multi-key transactions, prefix deletes,
/// compactions, and connection cuts (some with a compaction while cut off): the cache's final
/// snapshot equals what etcdctl lists, and what etcd-client lists, at the end and every
/// 25 operations (with the connection restored).
///
/// Seeded bugs caught: see VERIFICATION.md (`drop_deletes`, `rewatch_skips_one`,
/// `no_resync_deletions`, `prefix_end_all_above` among them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_operations_end_with_the_cache_equal_to_etcdctl_get_prefix() {
    let seeds: Vec<u64> = match std::env::var("SNAPCACHE_ETCD_SEED") {
        Ok(s) => vec![s.parse().expect("SNAPCACHE_ETCD_SEED is a number")],
        Err(_) => SEEDS.to_vec(),
    };
    for seed in seeds {
        run(seed).await;
    }
}

async fn run(seed: u64) {
    let mut rng = Rng::new(seed);
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    let key = |rng: &mut Rng| -> String {
        match rng.below(10) {
            0 => format!("/d{}", rng.below(3)), // next to the prefix, outside it
            1 => format!("/d/sub/{}", rng.below(10)),
            _ => format!("/d/{}", rng.below(40)),
        }
    };
    for _ in 0..20 {
        let k = key(&mut rng);
        put(&mut client, k, "initial").await;
    }
    let rig = Rig::start(etcd, Setup::new("/d/").via_proxy()).await;
    let mut cut = false;
    for op in 0..OPS {
        if op % CHECK_EVERY == CHECK_EVERY - 1 {
            if cut {
                rig.proxy().restore();
                cut = false;
            }
            compare(&rig, seed, op).await;
        }
        match rng.below(100) {
            0..=49 => {
                let k = key(&mut rng);
                put(&mut client, k, format!("{seed}.{op}.{}", rng.below(3))).await;
            }
            50..=54 => {
                // An unchanged value: etcd still makes a revision.
                let k = key(&mut rng);
                put(&mut client, k, "same").await;
            }
            55..=74 => {
                let k = key(&mut rng);
                delete(&mut client, k).await;
            }
            75..=84 => {
                let kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..1 + rng.below(5))
                    .map(|i| {
                        (
                            key(&mut rng).into_bytes(),
                            format!("txn{op}.{i}").into_bytes(),
                        )
                    })
                    .collect();
                let mut unique = kvs.clone();
                unique.sort();
                unique.dedup_by(|a, b| a.0 == b.0);
                put_all(&mut client, &unique).await;
            }
            85..=87 => {
                delete_prefix(&mut client, b"/d/sub/").await;
            }
            88..=92 => {
                let (_, at) = snapcache_etcd::testing::etcd_state(&mut client, b"/", None).await;
                // Compacting at the revision of the previous compaction is refused; fine.
                if let Err(e) = client
                    .compact(at, Some(CompactionOptions::new().with_physical()))
                    .await
                {
                    assert!(e.to_string().contains("compacted"), "compact: {e}");
                }
            }
            _ => {
                if cut {
                    rig.proxy().restore();
                } else {
                    rig.proxy().cut();
                    rig.wait("the cut noticed", |s| s.phase != Phase::Watching)
                        .await;
                }
                cut = !cut;
            }
        }
    }
    if cut {
        rig.proxy().restore();
    }
    let keys = compare(&rig, seed, OPS).await;
    eprintln!("seed {seed}: {keys} keys, {:?}", rig.syncer.state());
}

/// Waits for the cache to converge, then checks it against etcdctl; returns the key count.
async fn compare(rig: &Rig, seed: u64, op: usize) -> usize {
    let expected = rig.converge().await;
    let cache = snapshot_state(&rig.cache.current_breadcrumb());
    let etcdctl = etcdctl_state(&rig.etcd, "/d/");
    assert!(
        cache == etcdctl,
        "seed {seed}, after {op} operations: cache vs etcdctl: {}",
        describe_difference(&cache, &etcdctl)
    );
    assert!(
        expected == etcdctl,
        "seed {seed}: etcd-client and etcdctl disagree"
    );
    cache.len()
}
