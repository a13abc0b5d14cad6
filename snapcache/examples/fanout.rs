//! The fan-out demo: a synthetic syncer feeds the cache while many followers (blocking threads
//! and async tasks; some slow, some joining late) stream a snapshot and follow the deltas.
//! Every follower's final state is checked against the final snapshot.
//!
//! ```sh
//! cargo run --release -p snapcache --example fanout
//! cargo run --release -p snapcache --example fanout -- --keys 10000 --updates 200000 --threads 8 --tasks 100
//! ```
//! Flags (defaults in brackets): `--keys` [100000], `--updates` [1000000], `--threads` [64],
//! `--tasks` [1000], `--batch` (max_batch_size) [100], `--block` (updates per `on_updates`)
//! [100], `--slow` (percent of slow followers) [10], `--late` (percent joining late) [10],
//! `--seed` [1], `--max-behind` (breadcrumbs a follower may fall behind before it jumps to the
//! newest snapshot, as Typha's server drops clients that fall too far behind; 0 = never) [1000],
//! `--jump` (how a follower that jumps catches up: `diff`, applying what changed between its
//! breadcrumb and the newest with `Breadcrumb::changes_since`; `reload`, reloading the newest
//! snapshot whole; `auto`, the diff unless the updates in between may number more than an
//! eighth of the keys (breadcrumbs behind x `--batch`), when much of the state changed and a
//! reload is cheaper) [auto].
//! Exit status 1 if any follower ends in a state other than the final snapshot.

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ctrie::DiffItem;
use indicatif::{ProgressBar, ProgressStyle};
use snapcache::{Breadcrumb, Bytes, Cache, CancelToken, Config, SyncStatus, Update, UpdateType};

#[derive(Clone, Copy, Debug)]
struct Opts {
    keys: usize,
    updates: usize,
    threads: usize,
    tasks: usize,
    batch: usize,
    block: usize,
    slow: u64,
    late: u64,
    seed: u64,
    max_behind: u64,
    /// How a follower that jumps catches up.
    jump: Jump,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        keys: 100_000,
        updates: 1_000_000,
        threads: 64,
        tasks: 1_000,
        batch: 100,
        block: 100,
        slow: 10,
        late: 10,
        seed: 1,
        max_behind: 1_000,
        jump: Jump::Auto,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(String::new());
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        if flag == "--jump" {
            o.jump = match value.as_str() {
                "diff" => Jump::Diff,
                "reload" => Jump::Reload,
                "auto" => Jump::Auto,
                _ => return Err(format!("--jump: `diff`, `reload` or `auto`, not {value}")),
            };
            continue;
        }
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--keys" => o.keys = n as usize,
            "--updates" => o.updates = n as usize,
            "--threads" => o.threads = n as usize,
            "--tasks" => o.tasks = n as usize,
            "--batch" => o.batch = n as usize,
            "--block" => o.block = n as usize,
            "--slow" => o.slow = n.min(100),
            "--late" => o.late = n.min(100),
            "--seed" => o.seed = n,
            "--max-behind" => o.max_behind = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.keys == 0 || o.block == 0 || o.keys > u32::MAX as usize || o.updates >= u32::MAX as usize {
        return Err("--keys and --block must be positive, --keys and --updates below 2^32".into());
    }
    Ok(o)
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Keys are key indices and values update numbers + 1, both as 4 little-endian bytes: a
/// follower's state is a vector indexed by key of the update number that set it (0 = absent),
/// 4 bytes per key, and applying a delta costs next to nothing, so the demo measures the cache,
/// not the followers' parsing.
fn word(i: usize) -> Bytes {
    Bytes::copy_from_slice(&(i as u32).to_le_bytes())
}

fn decode(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes.try_into().expect("a 4-byte demo key or value")) as usize
}

type State = Vec<u32>;

fn apply(state: &mut State, deltas: &[Update]) {
    for d in deltas {
        state[decode(&d.key)] = d.value.as_deref().map_or(0, |v| decode(v) as u32);
    }
}

fn load(state: &mut State, crumb: &Breadcrumb) {
    state.iter_mut().for_each(|v| *v = 0);
    for (k, u) in &crumb.kvs {
        state[decode(k)] = decode(u.value.as_deref().expect("stored entries have values")) as u32;
    }
}

/// How a follower that fell too far behind catches up with the newest breadcrumb.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Jump {
    /// Apply `changes_since`: time proportional to what changed.
    Diff,
    /// Reload the newest snapshot: time proportional to its size.
    Reload,
    /// The diff, unless the updates in between may number more than an eighth of the keys.
    /// Uniform changes touch nearly every leaf C-node once they reach a few percent of the keys,
    /// and from then on the diff walks both tries whole: `benches/catch_up_100k` measured it 18x
    /// cheaper than a reload 1,000 updates behind, 2x at 10,000 and 0.6x at 100,000.
    Auto,
}

/// Brings a follower's state from `from`'s to `to`'s: by applying what changed in between
/// (`changes_since`, time proportional to the changes), or by reloading `to`'s whole snapshot.
/// Returns what it cost, in microseconds, and whether it used the diff.
/// `batch` is the cache's `max_batch_size`, the most updates one breadcrumb carries.
fn jump(
    state: &mut State,
    from: &Breadcrumb,
    to: &Breadcrumb,
    how: Jump,
    batch: usize,
) -> (u32, bool) {
    let start = Instant::now();
    let by_diff = match how {
        Jump::Diff => true,
        Jump::Reload => false,
        Jump::Auto => {
            let behind = to.sequence_number.saturating_sub(from.sequence_number) as usize;
            behind.saturating_mul(batch) <= state.len() / 8
        }
    };
    if by_diff {
        for d in to.changes_since(from) {
            match d {
                DiffItem::Added(k, u) | DiffItem::Updated { key: k, new: u, .. } => {
                    state[decode(k)] =
                        decode(u.value.as_deref().expect("stored entries have values")) as u32;
                }
                DiffItem::Removed(k, _) => state[decode(k)] = 0,
            }
        }
    } else {
        load(state, to);
    }
    (
        start.elapsed().as_micros().min(u32::MAX as u128) as u32,
        by_diff,
    )
}

/// Lag of a breadcrumb when a follower processes it: time since it was published.
fn lag_us(crumb: &Breadcrumb) -> u32 {
    SystemTime::now()
        .duration_since(crumb.timestamp)
        .unwrap_or_default()
        .as_micros()
        .min(u32::MAX as u128) as u32
}

/// What one follower does, whatever runs it: how it paces itself.
#[derive(Clone, Copy)]
struct Role {
    slow: bool,
    late: bool,
}

fn role(i: usize, o: &Opts) -> Role {
    let r = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    Role {
        slow: r % 100 < o.slow,
        late: (r / 100) % 100 < o.late,
    }
}

struct Outcome {
    state: State,
    lags: Vec<u32>,
    /// What each jump to the newest breadcrumb cost, in microseconds, and whether it used the
    /// diff.
    jumps: Vec<(u32, bool)>,
}

/// If `crumb` is more than `max_behind` breadcrumbs behind the newest, the newest (whose
/// snapshot the follower then reloads). Checked every 64 breadcrumbs: following the chain is
/// what followers do; jumping is for those that cannot keep up, so that they stop holding every
/// breadcrumb since their position alive.
fn too_far_behind(cache: &Cache, crumb: &Breadcrumb, max_behind: u64) -> Option<Arc<Breadcrumb>> {
    if max_behind == 0 || crumb.sequence_number % 64 != 0 {
        return None;
    }
    let newest = cache.current_breadcrumb();
    // Saturating: a follower can reach a breadcrumb through the link before the processing
    // thread has made it the current one, so `newest` may be one behind `crumb`.
    (newest.sequence_number.saturating_sub(crumb.sequence_number) > max_behind).then_some(newest)
}

/// Waits (politely) until at least `fraction` of the updates were sent.
fn until_sent(sent: &AtomicUsize, target: usize) -> bool {
    sent.load(Ordering::Relaxed) >= target
}

fn follower_thread(cache: Cache, o: Opts, r: Role, sent: Arc<AtomicUsize>) -> Outcome {
    if r.late {
        while !until_sent(&sent, o.updates / 2) {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    let token = CancelToken::new();
    let mut crumb = cache.current_breadcrumb();
    let mut state = vec![0; o.keys];
    load(&mut state, &crumb);
    let mut lags = Vec::new();
    let mut jumps = Vec::new();
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb
            .next(&token)
            .expect("the cache outlives its followers");
        apply(&mut state, &crumb.deltas);
        lags.push(lag_us(&crumb));
        if r.slow && crumb.sequence_number % 64 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        if let Some(newest) = too_far_behind(&cache, &crumb, o.max_behind) {
            jumps.push(jump(&mut state, &crumb, &newest, o.jump, o.batch));
            crumb = newest;
        }
    }
    Outcome { state, lags, jumps }
}

async fn follower_task(cache: Cache, o: Opts, r: Role, sent: Arc<AtomicUsize>) -> Outcome {
    if r.late {
        while !until_sent(&sent, o.updates / 2) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let mut crumb = cache.current_breadcrumb();
    let mut state = vec![0; o.keys];
    load(&mut state, &crumb);
    let mut lags = Vec::new();
    let mut jumps = Vec::new();
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb
            .next_async()
            .await
            .expect("the cache outlives its followers");
        apply(&mut state, &crumb.deltas);
        lags.push(lag_us(&crumb));
        if r.slow && crumb.sequence_number % 64 == 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        if let Some(newest) = too_far_behind(&cache, &crumb, o.max_behind) {
            jumps.push(jump(&mut state, &crumb, &newest, o.jump, o.batch));
            crumb = newest;
        }
    }
    Outcome { state, lags, jumps }
}

/// The syncer: a resync of every key (New), then churn (updates, deletions, re-creations),
/// then InSync. Returns its model of the final state.
fn syncer(cache: &Cache, o: &Opts, sent: &AtomicUsize, bar: &ProgressBar) -> State {
    let mut rng = Rng(o.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) | 1);
    let mut model = vec![0u32; o.keys];
    cache
        .on_status_updated(SyncStatus::ResyncInProgress)
        .expect("open");
    let mut block = Vec::with_capacity(o.block);
    for n in 0..o.updates {
        let k = if n < o.keys {
            n
        } else {
            (rng.next() % o.keys as u64) as usize
        };
        let present = model[k] != 0;
        let update = if n >= o.keys && present && rng.next() % 10 == 0 {
            model[k] = 0;
            Update::delete(word(k))
        } else {
            model[k] = n as u32 + 1;
            let t = if present {
                UpdateType::Updated
            } else {
                UpdateType::New
            };
            Update::set(word(k), word(n + 1), t).with_revision(word(n))
        };
        block.push(update);
        if block.len() == o.block || n + 1 == o.updates {
            let len = block.len();
            cache
                .on_updates(std::mem::replace(&mut block, Vec::with_capacity(o.block)))
                .expect("open");
            sent.fetch_add(len, Ordering::Relaxed);
            bar.inc(len as u64);
        }
    }
    cache.on_status_updated(SyncStatus::InSync).expect("open");
    model
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

/// Peak resident memory of this process (Linux), in MiB.
fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("error: {e}");
            }
            eprintln!("usage: fanout [--keys N] [--updates N] [--threads N] [--tasks N] [--batch N] [--block N] [--slow PCT] [--late PCT] [--seed N] [--max-behind N] [--jump diff|reload|auto]");
            return if e.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };
    println!(
        "fan-out: {} keys, {} updates (blocks of {}, max_batch_size {}), {} follower threads + {} async tasks ({}% slow, {}% late)",
        o.keys, o.updates, o.block, o.batch, o.threads, o.tasks, o.slow, o.late
    );
    let cache = Cache::new(Config {
        max_batch_size: o.batch,
        ..Default::default()
    });
    let sent = Arc::new(AtomicUsize::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");

    let tasks: Vec<_> = (0..o.tasks)
        .map(|i| {
            rt.spawn(follower_task(
                cache.clone(),
                o,
                role(o.threads + i, &o),
                sent.clone(),
            ))
        })
        .collect();
    let threads: Vec<_> = (0..o.threads)
        .map(|i| {
            let (cache, sent) = (cache.clone(), sent.clone());
            std::thread::Builder::new()
                .name(format!("follower-{i}"))
                .spawn(move || follower_thread(cache, o, role(i, &o), sent))
                .expect("spawn follower")
        })
        .collect();

    let bar = ProgressBar::new(o.updates as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} updates sent  {per_sec}  eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    let start = Instant::now();
    let model = syncer(&cache, &o, &sent, &bar);
    // Wait until the final (InSync) breadcrumb is out: the end of the syncer's work.
    let token = CancelToken::new();
    let mut crumb = cache.current_breadcrumb();
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb.next(&token).expect("open");
    }
    let elapsed = start.elapsed();
    bar.finish_and_clear();
    let stats = cache.stats();

    let followers_done = AtomicU64::new(0);
    let jumps = Mutex::new(Vec::new());
    let lags = Mutex::new(Vec::new());
    let mut mismatches = 0;
    let mut final_state = vec![0; o.keys];
    load(&mut final_state, &crumb);
    if final_state != model {
        eprintln!("the final snapshot differs from the syncer's own model");
        mismatches += 1;
    }
    let mut check = |out: Outcome| {
        followers_done.fetch_add(1, Ordering::Relaxed);
        jumps.lock().unwrap().extend(out.jumps);
        if out.state != final_state {
            mismatches += 1;
        }
        lags.lock().unwrap().extend(out.lags);
    };
    for t in threads {
        check(t.join().expect("follower thread panicked"));
    }
    rt.block_on(async {
        for t in tasks {
            check(t.await.expect("follower task panicked"));
        }
    });
    let mut lags = lags.into_inner().unwrap();
    lags.sort_unstable();
    let jumps = jumps.into_inner().unwrap();

    let secs = elapsed.as_secs_f64();
    println!("syncer:     {:.0} updates/s, {:.0} breadcrumbs/s ({} updates, {} skipped, {} breadcrumbs in {:.2} s)",
        stats.updates_total as f64 / secs, stats.breadcrumbs_published as f64 / secs,
        stats.updates_total, stats.updates_skipped, stats.breadcrumbs_published, secs);
    println!(
        "followers:  {} done; {} next() without waiting, {} after waiting; {} jumps to the newest snapshot (more than {} breadcrumbs behind)",
        followers_done.load(Ordering::Relaxed),
        stats.next_non_blocking,
        stats.next_blocking,
        jumps.len(),
        o.max_behind
    );
    for (by_diff, how) in [
        (true, "applying changes_since"),
        (false, "reloading the snapshot"),
    ] {
        let mut cost: Vec<u32> = jumps
            .iter()
            .filter(|j| j.1 == by_diff)
            .map(|j| j.0)
            .collect();
        cost.sort_unstable();
        if !cost.is_empty() {
            println!(
                "jump cost:  p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms per jump ({} jumps {how}; --jump {:?})",
                percentile(&cost, 0.5),
                percentile(&cost, 0.99),
                percentile(&cost, 1.0),
                cost.len(),
                o.jump,
            );
        }
    }
    println!(
        "lag:        p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (publish to follower, {} samples)",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        percentile(&lags, 1.0),
        lags.len()
    );
    if let Some(mib) = peak_rss_mib() {
        // Part of the peak is the demo's own bookkeeping, not the cache: every follower keeps a
        // 4-byte slot per key and a 4-byte lag sample per breadcrumb it processed.
        let followers = o.threads + o.tasks;
        let own = (followers * o.keys * 4 + lags.len() * 4) as f64 / (1u64 << 20) as f64;
        println!(
            "memory:     peak RSS {mib:.0} MiB, of which ~{own:.0} MiB is the followers' own state ({followers} x {} keys x 4 bytes, and lag samples)",
            o.keys
        );
    }
    println!(
        "final:      {} keys at sequence number {}",
        crumb.kvs.len(),
        crumb.sequence_number
    );
    if mismatches == 0 {
        println!("verified:   every follower's final state equals the final snapshot");
        ExitCode::SUCCESS
    } else {
        println!("FAILED:     {mismatches} follower(s) ended in another state");
        ExitCode::FAILURE
    }
}
