//! The worst pause a concurrent writer sees while another thread drops (or clears) a large trie.
//!
//! ```text
//! cargo run --release -p benches --bin drop_pause [-- KEYS [clear]]
//! ```
//!
//! Builds a trie of `KEYS` (default 10,000,000) `u64` keys, then starts a writer that overwrites
//! the keys of its own small trie (10,000 keys) in a loop, one guard per 64 writes, timing every
//! write. After one second the main thread drops the big trie (or `clear`s it) and hands its
//! deferred work to the epoch; the writer goes on for five more seconds, collecting garbage as
//! every writer does, so it runs whatever deferred frees are due. Prints the writer's longest
//! write and its 99.99th percentile before and after the drop, and how many writes took longer
//! than 1 ms. Each write is timed twice: on the wall clock, and on the writer thread's own CPU
//! clock, which does not count the time the thread spent descheduled (on a loaded machine the
//! wall-clock maximum is mostly the scheduler's doing; the CPU-clock maximum is the work the
//! write itself did, deferred frees included).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctrie::Ctrie;

/// This thread's CPU time, in nanoseconds.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

#[derive(Default)]
struct Window {
    wall_ns: Vec<u64>,
    cpu_ns: Vec<u64>,
}

impl Window {
    fn report(&mut self, name: &str) {
        for (clock, lat) in [("wall", &mut self.wall_ns), ("cpu", &mut self.cpu_ns)] {
            lat.sort_unstable();
            let n = lat.len();
            let max = lat.last().copied().unwrap_or(0);
            let p9999 = lat[(n * 9999 / 10000).min(n - 1)];
            let over = lat.iter().filter(|&&l| l > 1_000_000).count();
            println!(
                "{name:>7} {clock:>4}: {n:>9} writes, max {:>9.3} ms, p99.99 {:>7.1} us, {over} over 1 ms",
                max as f64 / 1e6,
                p9999 as f64 / 1e3
            );
        }
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let keys: u64 = args.next().map_or(10_000_000, |a| a.parse().expect("KEYS"));
    let clear = args.next().as_deref() == Some("clear");

    let t = Instant::now();
    let big: Ctrie<u64, u64> = Ctrie::new();
    for chunk in (0..keys).collect::<Vec<_>>().chunks(1024) {
        let m = big.pin();
        for &k in chunk {
            m.insert(k.wrapping_mul(0x9E37_79B9_7F4A_7C15), k);
        }
    }
    // Collect the garbage of the build (replaced C-nodes), so that the writer's window measures
    // the drop and nothing else.
    for _ in 0..100_000 {
        ctrie::pin().flush();
    }
    println!("built {keys} keys in {:.1} s", t.elapsed().as_secs_f64());

    let dropped = Arc::new(AtomicBool::new(false));
    let writer = {
        let dropped = dropped.clone();
        std::thread::spawn(move || {
            let small: Ctrie<u64, u64> = Ctrie::new();
            let (mut before, mut after) = (Window::default(), Window::default());
            let mut end = None;
            let mut i = 0u64;
            loop {
                let m = small.pin();
                for _ in 0..64 {
                    let (t, c) = (Instant::now(), thread_cpu_ns());
                    m.insert(i % 10_000, i);
                    let (wall, cpu) = (t.elapsed().as_nanos() as u64, thread_cpu_ns() - c);
                    i += 1;
                    let w = if dropped.load(Ordering::Relaxed) {
                        &mut after
                    } else {
                        &mut before
                    };
                    w.wall_ns.push(wall);
                    w.cpu_ns.push(cpu);
                }
                drop(m);
                if dropped.load(Ordering::Relaxed) {
                    let e = *end.get_or_insert_with(|| Instant::now() + Duration::from_secs(5));
                    if Instant::now() >= e {
                        return (before, after);
                    }
                }
            }
        })
    };
    std::thread::sleep(Duration::from_secs(1));
    let (t, c) = (Instant::now(), thread_cpu_ns());
    if clear {
        big.clear();
        dropped.store(true, Ordering::Relaxed);
    } else {
        dropped.store(true, Ordering::Relaxed);
        drop(big);
    }
    // Hand this thread's deferred functions to the global queue, where the writer finds them.
    ctrie::pin().flush();
    println!(
        "{} and flush returned after {:.3} ms ({:.3} ms of CPU)",
        if clear { "clear" } else { "drop" },
        t.elapsed().as_secs_f64() * 1e3,
        (thread_cpu_ns() - c) as f64 / 1e6
    );
    let (mut before, mut after) = writer.join().expect("writer");
    before.report("before");
    after.report("after");
}
