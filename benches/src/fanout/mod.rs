//! The fan-out comparison behind `src/bin/fanout.rs`: one producer publishes batches of
//! updates to N followers, each of which must end holding the producer's final state.
//!
//! Variants (one module each): [`snap`] (snapcache breadcrumbs), [`broadcast`]
//! (`tokio::sync::broadcast`, resyncing from a shared source of truth on `Lagged`), [`watch`]
//! (`tokio::sync::watch<Arc<imbl::HashMap>>`, followers diff versions; also with imbl's
//! `OrdMap`, whose diff is structural) and [`channels`] (one
//! unbounded `crossbeam-channel` per follower).
//!
//! Followers are blocking threads up to [`MAX_THREADS`], async tasks on a 2-worker tokio
//! runtime beyond (the crossbeam variant instead multiplexes its followers over
//! [`MAX_THREADS`] threads, as its receivers are blocking). Keys are `u32` indices below
//! `keys`, values the update number + 1 (0 = absent), so a follower's state is a `Vec<u32>`.
//!
//! The workload is generated before the clock starts, but every variant builds its own
//! messages from it inside the timed loop (a fresh `Arc<Vec>` per batch, snapcache's owned
//! `Update`s, a new imbl version), so what a stalled follower keeps alive is counted.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

pub mod broadcast;
pub mod channels;
pub mod snap;
pub mod watch;

/// Most blocking follower threads; more followers run as async tasks.
pub const MAX_THREADS: usize = 64;
/// Lag samples are recorded for about this many followers (spread evenly).
const RECORDED: usize = 100;

/// The names of the variants, in run order.
pub const VARIANTS: [&str; 5] = [
    "snapcache",
    "broadcast",
    "watch_imbl",
    "watch_imbl_ord",
    "crossbeam_channels",
];

/// The producer's updates, in batches: `(key, value)` with value 0 for a deletion.
pub struct Workload {
    /// The key space.
    pub keys: usize,
    /// The batches, in publish order.
    pub batches: Vec<Arc<Vec<(u32, u32)>>>,
    /// The state after every batch.
    pub model: Vec<u32>,
}

impl Workload {
    /// `updates` updates in batches of `batch`: every key created first, then random updates,
    /// 10% of them deletions of present keys.
    pub fn new(keys: usize, updates: usize, batch: usize, seed: u64) -> Self {
        let mut x = seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1;
        let mut model = vec![0u32; keys];
        let mut all = Vec::with_capacity(updates);
        for n in 0..updates {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let k = if n < keys {
                n
            } else {
                (x % keys as u64) as usize
            };
            let v = if n >= keys && model[k] != 0 && (x >> 32) % 10 == 0 {
                0
            } else {
                n as u32 + 1
            };
            model[k] = v;
            all.push((k as u32, v));
        }
        let batches = all
            .chunks(batch.max(1))
            .map(|c| Arc::new(c.to_vec()))
            .collect();
        Workload {
            keys,
            batches,
            model,
        }
    }

    /// The number of updates.
    pub fn updates(&self) -> usize {
        self.batches.iter().map(|b| b.len()).sum()
    }
}

/// Applies `(key, value)` updates to a follower's state.
pub fn apply(state: &mut [u32], batch: &[(u32, u32)]) {
    for &(k, v) in batch {
        state[k as usize] = v;
    }
}

/// What one follower does besides following.
#[derive(Clone)]
pub struct Role {
    /// Whether its lags are recorded.
    pub record: bool,
    /// If set, the follower does not read until this becomes true (a stalled follower).
    pub gate: Option<Arc<AtomicBool>>,
    /// Counts the followers that started; the producer waits for all (see [`wait_ready`]).
    pub ready: Arc<AtomicUsize>,
}

impl Role {
    /// Says that this follower runs and has subscribed.
    pub fn started(&self) {
        self.ready.fetch_add(1, Ordering::Release);
    }

    /// Says it started, then blocks until the gate (if any) opens.
    pub fn wait(&self) {
        self.started();
        if let Some(g) = &self.gate {
            while !g.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// What a follower ends with.
pub struct Outcome {
    /// Its final state.
    pub state: Vec<u32>,
    /// Publish-to-follower lags, in microseconds (if recorded).
    pub lags: Vec<u32>,
}

/// Microseconds since `t`.
pub fn lag_us(t: SystemTime) -> u32 {
    SystemTime::now()
        .duration_since(t)
        .unwrap_or_default()
        .as_micros()
        .min(u32::MAX as u128) as u32
}

/// The roles of `n` followers, plus a stalled one when `gate` is given.
pub fn roles(n: usize, gate: Option<&Arc<AtomicBool>>) -> Vec<Role> {
    let stride = n.div_ceil(RECORDED).max(1);
    let ready = Arc::new(AtomicUsize::new(0));
    let mut v: Vec<Role> = (0..n)
        .map(|i| Role {
            record: i % stride == 0,
            gate: None,
            ready: ready.clone(),
        })
        .collect();
    if let Some(g) = gate {
        v.push(Role {
            record: false,
            gate: Some(g.clone()),
            ready,
        });
    }
    v
}

/// Waits until every follower sharing `ready` has started, so that the lags measure delivery,
/// not thread or task start-up.
pub fn wait_ready(ready: &AtomicUsize, n: usize) {
    while ready.load(Ordering::Acquire) < n {
        std::thread::yield_now();
    }
}

/// Running followers: threads or tasks.
pub struct Followers {
    threads: Vec<std::thread::JoinHandle<Outcome>>,
    tasks: Vec<tokio::task::JoinHandle<Outcome>>,
}

impl Followers {
    /// Starts one follower per input: blocking threads if there are at most [`MAX_THREADS`]
    /// of them (or the role has a gate), async tasks on `rt` otherwise.
    pub fn spawn<I, Fut>(
        rt: &tokio::runtime::Runtime,
        inputs: Vec<(I, Role)>,
        blocking: fn(I, Role) -> Outcome,
        task: fn(I, Role) -> Fut,
    ) -> Self
    where
        I: Send + 'static,
        Fut: Future<Output = Outcome> + Send + 'static,
    {
        let as_threads = inputs.len() <= MAX_THREADS;
        let mut f = Followers {
            threads: Vec::new(),
            tasks: Vec::new(),
        };
        for (i, r) in inputs {
            if as_threads || r.gate.is_some() {
                f.threads.push(std::thread::spawn(move || blocking(i, r)));
            } else {
                f.tasks.push(rt.spawn(task(i, r)));
            }
        }
        f
    }

    /// Waits for every follower.
    pub fn join(self, rt: &tokio::runtime::Runtime) -> Vec<Outcome> {
        let mut out: Vec<Outcome> = self
            .threads
            .into_iter()
            .map(|t| t.join().expect("follower thread panicked"))
            .collect();
        rt.block_on(async {
            for t in self.tasks {
                out.push(t.await.expect("follower task panicked"));
            }
        });
        out
    }
}

/// One run to measure.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// Followers (not counting a stalled one).
    pub followers: usize,
    /// Whether one more follower stalls until the producer is done.
    pub stalled: bool,
}

/// What a variant reports back to [`run`].
pub struct Measured {
    /// From the first publish until the last batch is visible to followers.
    pub producer: Duration,
    /// Heap growth (live bytes) from before the first publish to the end of production.
    pub heap_growth: isize,
    /// Every follower's outcome (the stalled one included).
    pub outcomes: Vec<Outcome>,
}

/// Where a variant runs: the runtime for async followers and the heap counter.
pub struct Env<'a> {
    /// A multi-threaded tokio runtime.
    pub rt: &'a tokio::runtime::Runtime,
    /// Live heap bytes now (0 if unknown).
    pub live_bytes: fn() -> isize,
}

/// One line of results.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Record {
    /// The variant's name (see [`VARIANTS`]).
    pub variant: String,
    /// Followers (not counting a stalled one).
    pub followers: usize,
    /// Updates per batch.
    pub batch: usize,
    /// Updates published.
    pub updates: usize,
    /// Whether one follower stalled until the end.
    pub stalled: bool,
    /// Producer time per update, in ns.
    pub producer_ns_per_update: f64,
    /// Publish-to-follower lag, in µs.
    pub lag_p50_us: f64,
    /// 99th percentile lag, in µs.
    pub lag_p99_us: f64,
    /// Number of lag samples.
    pub lag_samples: usize,
    /// Heap growth during production, in bytes.
    pub heap_growth_bytes: isize,
    /// Whether this is one of the memory runs (1 follower, with or without a stalled one)
    /// rather than one of the scaling runs.
    #[serde(default)]
    pub memory_run: bool,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64
}

/// Lets the deferred frees of earlier runs (ctrie's epoch garbage) happen now, so that they do
/// not show as negative heap growth in this one.
pub fn settle() {
    for _ in 0..2_000 {
        ctrie::pin().flush();
    }
}

/// Runs `variant` on `w`, asserts that every follower ended with the final state, and
/// summarises.
pub fn run(variant: &str, w: &Workload, sc: Scenario, env: &Env) -> Record {
    settle();
    let m = match variant {
        "snapcache" => snap::run(w, sc, env),
        "broadcast" => broadcast::run(w, sc, env),
        "watch_imbl" => watch::run::<watch::Hash>(w, sc, env),
        "watch_imbl_ord" => watch::run::<watch::Ord>(w, sc, env),
        "crossbeam_channels" => channels::run(w, sc, env),
        _ => panic!("unknown variant {variant}"),
    };
    assert_eq!(
        m.outcomes.len(),
        sc.followers + usize::from(sc.stalled),
        "{variant}: a follower is missing"
    );
    let mut lags = Vec::new();
    for (i, o) in m.outcomes.into_iter().enumerate() {
        assert!(
            o.state == w.model,
            "{variant}: follower {i} of {} ended in another state than the producer's",
            sc.followers
        );
        lags.extend(o.lags);
    }
    lags.sort_unstable();
    let updates = w.updates();
    Record {
        variant: variant.to_string(),
        followers: sc.followers,
        batch: w.batches.first().map_or(0, |b| b.len()),
        updates,
        stalled: sc.stalled,
        producer_ns_per_update: m.producer.as_nanos() as f64 / updates.max(1) as f64,
        lag_p50_us: percentile(&lags, 0.5),
        lag_p99_us: percentile(&lags, 0.99),
        lag_samples: lags.len(),
        heap_growth_bytes: m.heap_growth,
        memory_run: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_count() -> isize {
        0
    }

    /// Every variant, with threads, with tasks (more than [`MAX_THREADS`] followers) and with
    /// a stalled follower, ends with every follower in the producer's state (`run` asserts it).
    #[test]
    fn every_variant_delivers_the_final_state() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let env = Env {
            rt: &rt,
            live_bytes: no_count,
        };
        let w = Workload::new(50, 600, 7, 3);
        assert_eq!(w.updates(), 600);
        for v in VARIANTS {
            for (followers, stalled) in [(3, false), (MAX_THREADS + 6, false), (1, true)] {
                let r = run(v, &w, Scenario { followers, stalled }, &env);
                assert_eq!((r.followers, r.updates, r.batch), (followers, 600, 7));
            }
        }
    }
}
