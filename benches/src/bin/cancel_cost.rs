//! What one `CancelToken::cancel()` costs while many followers are blocked in
//! `Breadcrumb::next` on the same cache.
//!
//! ```text
//! cargo run --release -p benches --bin cancel_cost [-- FOLLOWERS]
//! ```
//!
//! Starts `FOLLOWERS` (default 10,000) threads, each blocked in `next` with its own token on
//! one idle cache, then cancels the tokens one at a time, five times. For each cancellation
//! it prints how long until the cancelled follower has returned, and the CPU time the whole
//! process spent meanwhile and in the 200 ms after (user + system, from `getrusage`): the cost
//! of waking the followers that were not cancelled.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use snapcache::{Cache, CancelToken, Config};

fn process_cpu() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value to be overwritten.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `ru` is a valid, writable rusage.
    assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) }, 0);
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(10_000, |a| a.parse().expect("FOLLOWERS"));
    let cache = Cache::new(Config {
        // Long enough that no periodic wake-up lands inside a measurement.
        wake_up_interval: Duration::from_secs(3600),
        ..Config::default()
    });
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    let tokens: Vec<CancelToken> = (0..n).map(|_| CancelToken::new()).collect();
    let threads: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let (cache, token, done) = (cache.clone(), token.clone(), done_tx.clone());
            std::thread::Builder::new()
                .stack_size(64 * 1024)
                .spawn(move || {
                    let crumb = cache.current_breadcrumb();
                    assert!(crumb.next(&token).is_err(), "no breadcrumb is published");
                    done.send(i).expect("main waits");
                })
                .expect("spawn a follower")
        })
        .collect();
    // Let every follower reach its futex wait.
    std::thread::sleep(Duration::from_secs(3));
    let idle = process_cpu();
    std::thread::sleep(Duration::from_millis(200));
    println!(
        "{n} blocked followers; idle: {:.1} ms of CPU in 200 ms",
        (process_cpu() - idle).as_secs_f64() * 1e3
    );
    for (round, token) in tokens.iter().take(5).enumerate() {
        let (t, c) = (Instant::now(), process_cpu());
        token.cancel();
        let woken = done_rx.recv().expect("the cancelled follower returns");
        assert_eq!(woken, round, "another follower returned");
        let latency = t.elapsed();
        std::thread::sleep(Duration::from_millis(200));
        println!(
            "cancel {round}: follower returned after {:.3} ms; process CPU {:.1} ms",
            latency.as_secs_f64() * 1e3,
            (process_cpu() - c).as_secs_f64() * 1e3
        );
    }
    for token in &tokens {
        token.cancel();
    }
    for t in threads {
        t.join().expect("follower");
    }
    cache.shutdown();
}
