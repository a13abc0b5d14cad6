//! The snapshot workloads that reclamation decides (issue 13's targets), each one number, for
//! interleaved A/B runs of two builds: `targets_system` and `targets_mimalloc` (the allocator is
//! a compile-time choice, so one binary each).
//!
//! ```sh
//! cargo run --release -p benches --bin targets_system -- [WORKLOAD] [KEYS]
//! ```
//!
//! Workloads (all `u64` keys and values, random keys, the `std` hasher):
//! * `paced`: a read-only snapshot every 10 µs (previous one dropped) while a writer overwrites a
//!   `KEYS`-key trie (default 1M) flat out; ns per snapshot (taking it and dropping the previous).
//!   Twice: with the trie built by the snapshot thread, and built by the writer (the snapshot
//!   cache's pattern: its processing thread both loads and updates the trie).
//! * `paced-writer`: only the second of the two.
//! * `quiescent`: snapshot and drop in a loop, no writer, for 1k, 10k, 100k, 1M and 10M keys (or
//!   `KEYS` only); ns per snapshot.
//! * `back-to-back`: snapshot and drop as fast as possible while a writer inserts fresh keys into
//!   a `KEYS`-key trie (default 1M); ns per snapshot.
//! * `iterate`: one full iteration of a `KEYS`-key trie (default 1M), quiescent and while a writer
//!   inserts fresh keys; ns per entry each, and their ratio.
//! * `producer`: the snapshot cache's producer: 1M updates of random keys of a `KEYS`-key trie
//!   (default 100k), a read-only snapshot after every 100 (the previous one dropped); ns per
//!   update, for ctrie and for `imbl::HashMap` cloned every 100 updates, in the same run.
//! * `all` (default): each of the above once.
//!
//! Each prints the median of 5 rounds. With `PIN_CPUS` set, the workloads with a writer pin the
//! writer thread to CPU 1 and the measuring thread to CPU 0 (is a slow run the scheduler
//! putting both on one vCPU?).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::workload::random_keys;

type Map = ctrie::Ctrie<u64, u64>;

fn filled(n: usize) -> (Map, Vec<u64>) {
    let keys = random_keys(n, 11);
    let m = Map::new();
    for c in keys.chunks(1024) {
        let r = m.pin();
        for &k in c {
            r.insert(k, k);
        }
    }
    (m, keys)
}

/// Pins the calling thread to `cpu` if `PIN_CPUS` is set; returns the affinity to restore.
fn pin_if_asked(cpu: usize) -> Option<libc::cpu_set_t> {
    std::env::var_os("PIN_CPUS")?;
    // SAFETY: `cpu_set_t` is plain data; the calls get valid pointers of the right size and
    // only affect the calling thread (pid 0).
    unsafe {
        let mut old: libc::cpu_set_t = std::mem::zeroed();
        let size = std::mem::size_of::<libc::cpu_set_t>();
        assert_eq!(
            libc::sched_getaffinity(0, size, &mut old),
            0,
            "sched_getaffinity"
        );
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        let rc = libc::sched_setaffinity(0, size, &set);
        assert_eq!(
            rc,
            0,
            "PIN_CPUS: cannot pin to CPU {cpu}: {}",
            std::io::Error::last_os_error()
        );
        Some(old)
    }
}

/// Undoes [`pin_if_asked`].
fn unpin(old: Option<libc::cpu_set_t>) {
    if let Some(old) = old {
        // SAFETY: as in `pin_if_asked`.
        let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&old), &old) };
        assert_eq!(rc, 0, "restoring the affinity");
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Runs `f` with a writer on `m` until `f` returns: overwriting `keys` (`fresh == false`) or
/// inserting keys never seen before (`fresh`), 64 writes per pin.
fn with_writer<R>(m: &Map, keys: &[u64], fresh: bool, f: impl FnOnce() -> R) -> (R, u64) {
    let stop = AtomicBool::new(false);
    let writes = AtomicU64::new(0);
    let r = std::thread::scope(|s| {
        s.spawn(|| {
            pin_if_asked(1);
            let mut i = 0usize;
            let mut next_fresh = u64::MAX / 2;
            while !stop.load(Ordering::Relaxed) {
                let r = m.pin();
                for _ in 0..64 {
                    if fresh {
                        next_fresh = next_fresh.wrapping_mul(6364136223846793005).wrapping_add(1);
                        r.insert(next_fresh, 1);
                    } else {
                        let k = keys[i % keys.len()];
                        r.insert(k, i as u64);
                    }
                    i += 1;
                }
                writes.fetch_add(64, Ordering::Relaxed);
            }
        });
        std::thread::sleep(Duration::from_millis(100));
        let old = pin_if_asked(0);
        let r = f();
        unpin(old);
        stop.store(true, Ordering::Relaxed);
        r
    });
    (r, writes.load(Ordering::Relaxed))
}

/// A snapshot every 10 µs under a writer overwriting a trie of `n` keys (built by this thread).
pub fn paced(n: usize) -> f64 {
    let (m, keys) = filled(n);
    let (per, _) = with_writer(&m, &keys, false, || paced_rounds(&m));
    median(per)
}

/// As [`paced`], but the writer thread builds the trie before it starts overwriting, as the
/// snapshot cache's processing thread does: the nodes the writer frees are then its own
/// allocations. (In [`paced`] they are the snapshot thread's, and with mimalloc that thread then
/// spends its allocations collecting the writer's remote frees of them.)
pub fn paced_writer_filled(n: usize) -> f64 {
    let keys = random_keys(n, 11);
    let m = Map::new();
    let (built, stop) = (AtomicBool::new(false), AtomicBool::new(false));
    std::thread::scope(|s| {
        s.spawn(|| {
            pin_if_asked(1);
            for c in keys.chunks(1024) {
                let r = m.pin();
                for &k in c {
                    r.insert(k, k);
                }
            }
            built.store(true, Ordering::Release);
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let r = m.pin();
                for _ in 0..64 {
                    r.insert(keys[i % keys.len()], i as u64);
                    i += 1;
                }
            }
        });
        while !built.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(100));
        let old = pin_if_asked(0);
        let per = paced_rounds(&m);
        unpin(old);
        stop.store(true, Ordering::Relaxed);
        median(per)
    })
}

/// Five rounds of 20,000 snapshots, one every 10 µs, each dropping the previous one: ns per
/// snapshot (taking it and dropping the previous), per round. With `PACED_SPREAD` set, each
/// round's per-snapshot percentiles go to stderr too (is a mean made of outliers?).
fn paced_rounds(m: &Map) -> Vec<f64> {
    let spread = std::env::var_os("PACED_SPREAD").is_some();
    (0..5)
        .map(|_| {
            let count = 20_000;
            let mut each = Vec::with_capacity(if spread { count } else { 0 });
            let mut spent = Duration::ZERO;
            let mut prev = Some(m.read_only_snapshot());
            for _ in 0..count {
                let start = Instant::now();
                let s = m.read_only_snapshot();
                drop(prev.replace(s));
                let took = start.elapsed();
                spent += took;
                if spread {
                    each.push(took.as_nanos() as u64);
                }
                while start.elapsed() < Duration::from_micros(10) {
                    std::hint::spin_loop();
                }
            }
            if spread {
                each.sort_unstable();
                let at = |q: f64| each[((each.len() - 1) as f64 * q) as usize];
                let over = |t: u64| each.iter().filter(|&&x| x > t).sum::<u64>();
                eprintln!(
                    "  per snapshot (ns): p50 {} p90 {} p99 {} p99.9 {} max {}; share of time in those over 10 µs: {:.0}%",
                    at(0.5),
                    at(0.9),
                    at(0.99),
                    at(0.999),
                    at(1.0),
                    100.0 * over(10_000) as f64 / spent.as_nanos() as f64
                );
            }
            spent.as_nanos() as f64 / count as f64
        })
        .collect()
}

/// Snapshot and drop in a loop with no writer.
pub fn quiescent(n: usize) -> f64 {
    let (m, _) = filled(n);
    median(
        (0..5)
            .map(|_| {
                let count = 200_000;
                let t = Instant::now();
                for _ in 0..count {
                    drop(std::hint::black_box(m.read_only_snapshot()));
                }
                t.elapsed().as_nanos() as f64 / count as f64
            })
            .collect(),
    )
}

/// Snapshot and drop back to back while a writer inserts fresh keys.
pub fn back_to_back(n: usize) -> f64 {
    let (m, keys) = filled(n);
    let (per, _) = with_writer(&m, &keys, true, || {
        (0..5)
            .map(|_| {
                let count = 100_000;
                let t = Instant::now();
                for _ in 0..count {
                    drop(std::hint::black_box(m.read_only_snapshot()));
                }
                t.elapsed().as_nanos() as f64 / count as f64
            })
            .collect::<Vec<_>>()
    });
    median(per)
}

fn iterate_once(m: &Map) -> f64 {
    let s = m.read_only_snapshot();
    let t = Instant::now();
    let (n, sum) = s.iter().fold((0u64, 0u64), |(n, sum), (_, v)| {
        (n + 1, sum.wrapping_add(*v))
    });
    std::hint::black_box(sum);
    t.elapsed().as_nanos() as f64 / n as f64
}

/// One full iteration, quiescent and while a writer inserts fresh keys: ns per entry each.
pub fn iterate(n: usize) -> (f64, f64) {
    let (m, keys) = filled(n);
    let quiet = median((0..5).map(|_| iterate_once(&m)).collect());
    let (busy, _) = with_writer(&m, &keys, true, || {
        (0..5).map(|_| iterate_once(&m)).collect::<Vec<_>>()
    });
    (quiet, median(busy))
}

/// The producer pattern: ns per update for ctrie, and for `imbl::HashMap` cloned every 100.
pub fn producer(n: usize) -> (f64, f64) {
    let keys = random_keys(n, 12);
    let updates = 1_000_000usize;
    let order: Vec<u64> = random_keys(updates, 13)
        .into_iter()
        .map(|r| keys[(r % n as u64) as usize])
        .collect();
    let ctrie_round = || {
        let m = Map::new();
        for c in keys.chunks(1024) {
            let r = m.pin();
            for &k in c {
                r.insert(k, 0);
            }
        }
        let mut snap = Some(m.read_only_snapshot());
        let t = Instant::now();
        for (i, c) in order.chunks(100).enumerate() {
            let r = m.pin();
            for &k in c {
                r.insert(k, i as u64);
            }
            drop(r);
            drop(snap.replace(m.read_only_snapshot()));
        }
        t.elapsed().as_nanos() as f64 / updates as f64
    };
    let imbl_round = || {
        let mut m = imbl::HashMap::<u64, u64>::new();
        for &k in &keys {
            m.insert(k, 0);
        }
        let mut snap = Some(m.clone());
        let t = Instant::now();
        for (i, c) in order.chunks(100).enumerate() {
            for &k in c {
                m.insert(k, i as u64);
            }
            drop(snap.replace(m.clone()));
        }
        std::hint::black_box(&snap);
        t.elapsed().as_nanos() as f64 / updates as f64
    };
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        a.push(ctrie_round());
        b.push(imbl_round());
    }
    (median(a), median(b))
}

/// The command line of the two binaries.
pub fn main(alloc: &str) {
    let mut args = std::env::args().skip(1);
    let workload = args.next().unwrap_or_else(|| "all".into());
    let keys: Option<usize> = args.next().map(|a| a.parse().expect("KEYS: a number"));
    let all = workload == "all";
    let known = [
        "all",
        "paced",
        "paced-writer",
        "quiescent",
        "back-to-back",
        "iterate",
        "producer",
    ];
    assert!(
        known.contains(&workload.as_str()),
        "unknown workload {workload:?}; one of {known:?}"
    );
    if all || workload == "paced" {
        let n = keys.unwrap_or(1_000_000);
        println!(
            "{alloc} paced (snapshot every 10 us, writer overwriting, {n} keys): {:.0} ns/snapshot",
            paced(n)
        );
    }
    if all || workload == "paced" || workload == "paced-writer" {
        let n = keys.unwrap_or(1_000_000);
        println!(
            "{alloc} paced, writer-filled (the writer built the trie, {n} keys): {:.0} ns/snapshot",
            paced_writer_filled(n)
        );
    }
    if all || workload == "quiescent" {
        let sizes = keys.map_or(vec![1_000, 10_000, 100_000, 1_000_000, 10_000_000], |n| {
            vec![n]
        });
        for n in sizes {
            println!(
                "{alloc} quiescent ({n} keys): {:.0} ns/snapshot",
                quiescent(n)
            );
        }
    }
    if all || workload == "back-to-back" {
        let n = keys.unwrap_or(1_000_000);
        println!(
            "{alloc} back-to-back (writer inserting fresh keys, {n} keys): {:.0} ns/snapshot",
            back_to_back(n)
        );
    }
    if all || workload == "iterate" {
        let n = keys.unwrap_or(1_000_000);
        let (q, b) = iterate(n);
        println!("{alloc} iterate ({n} keys): quiescent {q:.1} ns/entry, under a writer {b:.1} ns/entry ({:.2}x)", b / q);
    }
    if all || workload == "producer" {
        let n = keys.unwrap_or(100_000);
        let (c, i) = producer(n);
        println!("{alloc} producer ({n} keys, snapshot every 100 updates): ctrie {c:.0} ns/update, imbl::HashMap cloned {i:.0} ns/update ({:.2}x)", c / i);
    }
}
