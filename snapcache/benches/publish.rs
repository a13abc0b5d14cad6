//! What publishing costs the producer.
//!
//! * `publish/async_waiters/N`: the time from `on_updates` (one update) until the new breadcrumb
//!   is current, with N followers waiting in `next_async` on a one-worker tokio runtime (each
//!   re-arms after every wake-up). Publishing is one link, one swap and one futex wake; the
//!   wakers are woken by the cache's bridge thread, not by the processing thread.
//! * `publish/thread_waiters/N`: the same with N blocking followers in `next` (the kernel's
//!   `FUTEX_WAKE` of N sleepers is paid inside the wake syscall).
//! * `apply/100k_keys`: updates per second through the cache (100,000 keys, 1,000,000 updates
//!   in blocks of 100, `max_batch_size` 100, no followers), from the first `on_updates` until
//!   the final `InSync` breadcrumb is current. `APPLY_UPDATES` changes the count.
//!
//! Run: `cargo bench -p snapcache --bench publish` (`-- --quick` for a short run).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use snapcache::{Cache, CancelToken, Config, SyncStatus, Update, UpdateType};

/// Sends one changing update and waits (spinning) until it is published.
fn publish_one(cache: &Cache, i: u64) {
    let seq = cache.current_breadcrumb().sequence_number;
    cache
        .on_updates(vec![Update::set(
            format!("k{}", i % 1024),
            i.to_le_bytes().to_vec(),
            UpdateType::New,
        )])
        .expect("cache is open");
    while cache.current_breadcrumb().sequence_number == seq {
        std::hint::spin_loop();
    }
}

fn timed(cache: &Cache, iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        publish_one(cache, i);
    }
    start.elapsed()
}

fn async_waiters(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish/async_waiters");
    for n in [1usize, 100, 1_000, 10_000] {
        let cache = Cache::new(Config::default());
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("tokio runtime");
        for _ in 0..n {
            let cache = cache.clone();
            rt.spawn(async move {
                let mut crumb = cache.current_breadcrumb();
                drop(cache);
                while let Ok(next) = crumb.next_async().await {
                    crumb = next;
                }
            });
        }
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| timed(&cache, iters))
        });
        // Dropping the runtime drops the futures, which cancels their waits.
        rt.shutdown_background();
    }
    g.finish();
}

fn thread_waiters(c: &mut Criterion) {
    let mut g = c.benchmark_group("publish/thread_waiters");
    for n in [1usize, 16, 64] {
        let cache = Cache::new(Config::default());
        let stop = Arc::new(AtomicBool::new(false));
        let cancels: Vec<Arc<CancelToken>> = (0..n).map(|_| Arc::new(CancelToken::new())).collect();
        let threads: Vec<_> = cancels
            .iter()
            .map(|cancel| {
                let (cache, cancel, stop) = (cache.clone(), cancel.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut crumb = cache.current_breadcrumb();
                    drop(cache);
                    // Relaxed: only a hint to stop; `cancel` does the waking.
                    while !stop.load(Ordering::Relaxed) {
                        match crumb.next(&cancel) {
                            Ok(next) => crumb = next,
                            Err(_) => break,
                        }
                    }
                })
            })
            .collect();
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter_custom(|iters| timed(&cache, iters))
        });
        stop.store(true, Ordering::Relaxed);
        for cancel in &cancels {
            cancel.cancel();
        }
        for t in threads {
            t.join().expect("follower thread");
        }
    }
    g.finish();
}

fn apply(c: &mut Criterion) {
    let updates: u64 = std::env::var("APPLY_UPDATES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let keys = 100_000u64;
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(updates));
    g.sample_size(10);
    g.bench_function("100k_keys", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let cache = Cache::new(Config {
                    max_batch_size: 100,
                    ..Config::default()
                });
                let blocks: Vec<Vec<Update>> = (0..updates)
                    .collect::<Vec<_>>()
                    .chunks(100)
                    .map(|chunk| {
                        chunk
                            .iter()
                            .map(|&i| {
                                let k = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % keys;
                                if i % 10 == 9 {
                                    Update::delete(k.to_le_bytes().to_vec())
                                } else {
                                    Update::set(
                                        k.to_le_bytes().to_vec(),
                                        i.to_le_bytes().to_vec(),
                                        UpdateType::Updated,
                                    )
                                }
                            })
                            .collect()
                    })
                    .collect();
                let mut crumb = cache.current_breadcrumb();
                let start = Instant::now();
                for block in blocks {
                    cache.on_updates(block).expect("cache is open");
                }
                cache
                    .on_status_updated(SyncStatus::InSync)
                    .expect("cache is open");
                let cancel = CancelToken::new();
                while crumb.sync_status != SyncStatus::InSync {
                    crumb = crumb.next(&cancel).expect("not cancelled");
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, async_waiters, thread_waiters, apply);
criterion_main!(benches);
