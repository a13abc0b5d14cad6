//! The loopback demo: a server and N clients (default 1,000 connections) in one process over
//! real TCP on 127.0.0.1. The synthetic syncer feeds the cache (100,000 keys, 1,000,000
//! updates, then `InSync`); some clients are slow, some join late, some are disconnected and
//! reconnect mid-stream (resuming). At the end every client's state is checked against the
//! final snapshot; the exit status is 1 if any differs (or a client never gets there).
//!
//! ```sh
//! cargo run --release -p snapcache-grpc --example loopback
//! cargo run --release -p snapcache-grpc --example loopback -- --clients 100 --keys 10000 --updates 100000
//! cargo run --release -p snapcache-grpc --example loopback -- --herd   # the thundering herd
//! ```
//! Flags (defaults in brackets): `--clients` [1000], `--keys` [100000], `--updates` [1000000],
//! `--batch` (max_batch_size) [100], `--slow` (percent of slow clients) [10], `--late`
//! (percent joining half-way) [10], `--flaky` (percent disconnected three times mid-stream)
//! [10], `--seed` [1], `--resume-window` (seconds of breadcrumbs the server keeps for resuming
//! clients) [300: here clients run minutes behind, being 1,000 on 2 cores; the server's default
//! is 30], `--herd` (load the cache first, then connect every client at once: measures the
//! snapshot phase).
//!
//! The server and the clients run on separate 2-thread tokio runtimes (`srv`, `cli`), so the
//! server's CPU time is read from its own threads (`/proc/self/task`).

#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use indicatif::{ProgressBar, ProgressStyle};
use snapcache::{Cache, Config, SyncStatus, Update};
use snapcache_grpc::client::{BatchInfo, BatchKind, SyncClient, SyncHandler};
use snapcache_grpc::server::{Server, ServerConfig};
use snapcache_grpc::synthetic::{key_index, parse_value, Synthetic, SyntheticConfig};

#[derive(Clone, Copy, Debug)]
struct Opts {
    clients: usize,
    keys: usize,
    updates: usize,
    batch: usize,
    slow: u64,
    late: u64,
    flaky: u64,
    seed: u64,
    herd: bool,
    resume_window: u64,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        clients: 1000,
        keys: 100_000,
        updates: 1_000_000,
        batch: 100,
        slow: 10,
        late: 10,
        flaky: 10,
        seed: 1,
        herd: false,
        resume_window: 300,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--herd" => {
                o.herd = true;
                continue;
            }
            _ => {}
        }
        let value = args.next().ok_or(format!("{flag} needs a value"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("{flag}: not a number: {value}"))?;
        match flag.as_str() {
            "--clients" => o.clients = n as usize,
            "--keys" => o.keys = n as usize,
            "--updates" => o.updates = n as usize,
            "--batch" => o.batch = n as usize,
            "--slow" => o.slow = n.min(100),
            "--late" => o.late = n.min(100),
            "--flaky" => o.flaky = n.min(100),
            "--seed" => o.seed = n,
            "--resume-window" => o.resume_window = n,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if o.keys == 0 || o.clients == 0 || o.keys > u32::MAX as usize {
        return Err("--keys and --clients must be positive, --keys below 2^32".into());
    }
    Ok(o)
}

/// What one client does.
#[derive(Clone, Copy, Debug, Default)]
struct Role {
    slow: bool,
    late: bool,
    flaky: bool,
}

fn role(i: usize, o: &Opts) -> Role {
    let r = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
    Role {
        slow: r % 100 < o.slow,
        late: !o.herd && (r / 100) % 100 < o.late,
        flaky: !o.herd && (r / 10_000) % 100 < o.flaky,
    }
}

/// A client's state, compact (4 bytes per key for the value, 4 for the snapshot generation
/// that last confirmed it), so that 1,000 clients of 100,000 keys fit in memory; it reconciles
/// fresh snapshots itself (the client keeps no map).
#[derive(Default)]
struct Compact {
    values: Vec<u32>,
    seen: Vec<u32>,
    generation: u32,
    deliveries: u64,
    lags_us: Vec<u32>,
    batches: u64,
}

struct Handler {
    state: Arc<Mutex<Compact>>,
    slow: bool,
}

impl SyncHandler for Handler {
    fn on_updates(&mut self, updates: &[Update], info: &BatchInfo) {
        let pause = self.apply(updates, info);
        if pause {
            // A slow consumer: 2 ms of (blocking) work every 64 batches.
            tokio::task::block_in_place(|| std::thread::sleep(Duration::from_millis(2)));
        }
    }

    fn on_snapshot_start(&mut self) {
        self.state.lock().unwrap().generation += 1;
    }

    fn on_snapshot_end(&mut self) {
        let mut s = self.state.lock().unwrap();
        let g = s.generation;
        let Compact { values, seen, .. } = &mut *s;
        for (v, seen) in values.iter_mut().zip(seen.iter()) {
            if *seen != g {
                *v = 0;
            }
        }
    }
}

impl Handler {
    /// Applies a batch; whether a slow client pauses now.
    fn apply(&mut self, updates: &[Update], info: &BatchInfo) -> bool {
        let mut s = self.state.lock().unwrap();
        let s = &mut *s;
        s.deliveries += updates.len() as u64;
        for u in updates {
            let k = key_index(&u.key).expect("a synthetic key");
            let v = u
                .value
                .as_deref()
                .map_or(0, |v| parse_value(v).expect("a number") as u32);
            s.values[k] = v;
            s.seen[k] = s.generation;
        }
        if info.kind == BatchKind::Deltas {
            s.batches += 1;
            if let Some(p) = info.published {
                let lag = SystemTime::now().duration_since(p).unwrap_or_default();
                if s.lags_us.len() < 200_000 {
                    s.lags_us.push(lag.as_micros().min(u32::MAX as u128) as u32);
                }
            }
            return self.slow && s.batches.is_multiple_of(64);
        }
        false
    }
}

/// CPU seconds (user + system) of this process's threads whose name starts with `prefix`.
fn cpu_secs(prefix: &str) -> f64 {
    let (user, sys) = cpu_split(prefix);
    user + sys
}

/// CPU seconds (user, system) of this process's threads whose name starts with `prefix`.
fn cpu_split(prefix: &str) -> (f64, f64) {
    let ticks = clock_ticks();
    let (mut user, mut sys) = (0u64, 0u64);
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return (f64::NAN, f64::NAN);
    };
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with(prefix) {
            continue;
        }
        let stat = std::fs::read_to_string(path.join("stat")).unwrap_or_default();
        // Fields after the parenthesised name: state is field 3; utime 14, stime 15.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let utime: u64 = fields.get(11).and_then(|f| f.parse().ok()).unwrap_or(0);
        let stime: u64 = fields.get(12).and_then(|f| f.parse().ok()).unwrap_or(0);
        user += utime;
        sys += stime;
    }
    (user as f64 / ticks, sys as f64 / ticks)
}

/// Clock ticks per second for `/proc` times (`sysconf(_SC_CLK_TCK)`).
fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions; it only reads a system constant.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// Raises the open-files limit to what `clients` connections need (each loopback connection
/// is two descriptors in this process), or says why it cannot.
fn raise_fd_limit(clients: usize) -> Result<(), String> {
    let need = (clients as u64) * 2 + 256;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err("getrlimit(RLIMIT_NOFILE) failed".into());
    }
    if lim.rlim_cur >= need {
        return Ok(());
    }
    if lim.rlim_max < need {
        return Err(format!(
            "{clients} connections need ~{need} open files, but the hard limit is {}; raise it (ulimit -Hn) or use fewer --clients",
            lim.rlim_max
        ));
    }
    lim.rlim_cur = need;
    // SAFETY: `lim` is a valid rlimit, with the soft limit below the hard one.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
        return Err(format!("setrlimit(RLIMIT_NOFILE, {need}) failed"));
    }
    Ok(())
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize] as f64 / 1000.0
}

fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn usage(e: &str) -> ExitCode {
    if !e.is_empty() {
        eprintln!("error: {e}");
    }
    eprintln!("usage: loopback [--clients N] [--keys N] [--updates N] [--batch N] [--slow PCT] [--late PCT] [--flaky PCT] [--seed N] [--resume-window SECS] [--herd]");
    if e.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

struct Client {
    client: SyncClient,
    state: Arc<Mutex<Compact>>,
}

fn main() -> ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => return usage(&e),
    };
    if let Err(e) = raise_fd_limit(o.clients) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    let roles: Vec<Role> = (0..o.clients).map(|i| role(i, &o)).collect();
    let count = |f: fn(&Role) -> bool| roles.iter().filter(|r| f(r)).count();
    println!(
        "loopback: {} keys, {} updates (max_batch_size {}), {} clients over TCP on 127.0.0.1 ({} slow, {} joining half-way, {} disconnected 3 times mid-stream){}",
        o.keys, o.updates, o.batch, o.clients, count(|r| r.slow), count(|r| r.late), count(|r| r.flaky),
        if o.herd { "; herd: the cache is loaded first, then every client connects at once" } else { "" }
    );
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("srv")
        .enable_all()
        .build()
        .expect("server runtime");
    let client_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cli")
        .enable_all()
        .build()
        .expect("client runtime");

    let cache = Cache::new(Config {
        max_batch_size: o.batch,
        ..Default::default()
    });
    let server = server_rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        Server::new(ServerConfig {
            resume_window: Duration::from_secs(o.resume_window),
            ..Default::default()
        })
        .cache("default", cache.clone())
        .start(listener)
        .expect("start the server")
    });
    let addr = server.local_addr().to_string();
    let mut syncer = Synthetic::new(SyntheticConfig {
        keys: o.keys,
        updates: o.updates,
        seed: o.seed,
        block: 100,
    });
    let sent = Arc::new(AtomicUsize::new(0));
    let bar = ProgressBar::new(o.updates as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}  {per_sec}  eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );

    let make_client = |i: usize| {
        let r = role(i, &o);
        let state = Arc::new(Mutex::new(Compact {
            values: vec![0; o.keys],
            seen: vec![0; o.keys],
            ..Default::default()
        }));
        let _guard = client_rt.enter();
        let client = SyncClient::builder()
            .server(addr.clone())
            .client_name(format!("client-{i}"))
            .keep_map(false)
            // 1,000 clients share 2 threads here (not one process each, as in production): a
            // client's own timers would fire while it waits for those threads.
            .handshake_timeout(Duration::from_secs(120))
            .keepalive(Duration::from_secs(10), Duration::from_secs(120))
            .backoff(Duration::from_millis(50), Duration::from_secs(1))
            .spawn(Handler {
                state: state.clone(),
                slow: r.slow,
            });
        Client { client, state }
    };

    let server_cpu0 = cpu_secs("srv");
    let mut herd_cpu = None;
    let mut clients: Vec<Option<Client>> = Vec::new();
    let start = Instant::now();
    if o.herd {
        bar.set_message("updates sent (loading the cache)");
        syncer.run(&cache, |n| bar.inc(n as u64)).expect("open");
        wait_published(&cache);
        bar.finish_and_clear();
        let (u0, s0) = cpu_split("srv");
        let t0 = Instant::now();
        clients = (0..o.clients).map(|i| Some(make_client(i))).collect();
        let ok = wait_all_in_sync(&client_rt, &clients, &cache, Duration::from_secs(600));
        let (u1, s1) = cpu_split("srv");
        println!(
            "herd:       {} clients streamed a {}-key snapshot in {:.2} s; server CPU {:.3} s for the snapshot phase ({:.3} user, {:.3} system){}",
            o.clients,
            cache.current_breadcrumb().kvs.len(),
            t0.elapsed().as_secs_f64(),
            (u1 - u0) + (s1 - s0),
            u1 - u0,
            s1 - s0,
            if ok { "" } else { " (NOT all in sync)" }
        );
        herd_cpu = Some((u1 - u0) + (s1 - s0));
    } else {
        for (i, r) in roles.iter().enumerate() {
            clients.push((!r.late).then(|| make_client(i)));
        }
        bar.set_message("updates sent");
        let status = |s| cache.on_status_updated(s).expect("open");
        status(SyncStatus::ResyncInProgress);
        let block = 10_000.min(o.updates.max(1));
        let mut done = 0;
        while done < o.updates {
            let n = block.min(o.updates - done);
            syncer.send(&cache, n, |k| bar.inc(k as u64)).expect("open");
            done += n;
            sent.store(done, Ordering::Relaxed);
            if done >= o.updates / 2 {
                for (i, r) in roles.iter().enumerate() {
                    if r.late && clients[i].is_none() {
                        clients[i] = Some(make_client(i));
                    }
                }
            }
            if done == block {
                // Flaky clients are disconnected when they have received a quarter, a half
                // and three quarters of the updates (they then resume).
                let flaky: Vec<_> = roles
                    .iter()
                    .zip(&clients)
                    .filter(|(r, _)| r.flaky)
                    .filter_map(|(_, c)| c.as_ref())
                    .map(|c| (c.client.reconnecter(), c.state.clone()))
                    .collect();
                client_rt.spawn(disconnect_flaky(flaky, o.updates as u64));
            }
        }
        status(SyncStatus::InSync);
        wait_published(&cache);
        bar.finish_and_clear();
    }
    let syncer_secs = start.elapsed().as_secs_f64();
    let stats = cache.stats();

    let in_sync = wait_all_in_sync(&client_rt, &clients, &cache, Duration::from_secs(600));
    let all_done = start.elapsed().as_secs_f64();
    let server_cpu = cpu_secs("srv") - server_cpu0;
    let client_cpu = cpu_secs("cli");
    let sstats = server.stats();

    // Verify.
    let final_crumb = cache.current_breadcrumb();
    let mut expected = vec![0u32; o.keys];
    for (k, u) in &final_crumb.kvs {
        expected[key_index(k).unwrap()] = parse_value(u.value.as_deref().unwrap()).unwrap() as u32;
    }
    let mut mismatches = 0;
    let model = syncer.model();
    if model.len() != final_crumb.kvs.len() {
        eprintln!("the final snapshot differs from the syncer's model");
        mismatches += 1;
    }
    let mut lags = Vec::new();
    let (mut deliveries, mut snapshots, mut resumes, mut connections) = (0u64, 0u64, 0u64, 0u64);
    for c in clients.iter().flatten() {
        let s = c.state.lock().unwrap();
        if s.values != expected {
            mismatches += 1;
        }
        deliveries += s.deliveries;
        lags.extend_from_slice(&s.lags_us);
        let st = c.client.state();
        snapshots += st.snapshots;
        resumes += st.resumes;
        connections += st.connections;
    }
    lags.sort_unstable();
    let n = clients.iter().flatten().count();

    println!(
        "syncer:     {:.0} updates/s ({} updates, {} skipped, {} breadcrumbs in {:.2} s)",
        stats.updates_total as f64 / syncer_secs,
        stats.updates_total,
        stats.updates_skipped,
        stats.breadcrumbs_published,
        syncer_secs
    );
    println!(
        "clients:    {n} ({} in sync at breadcrumb {} after {:.2} s); {} connections, {} snapshots received, {} resumes (deltas only); {} cut off for falling behind",
        if in_sync { "all" } else { "NOT all" },
        final_crumb.sequence_number,
        all_done,
        connections,
        snapshots,
        resumes,
        sstats.connections_fell_behind,
    );
    println!(
        "deliveries: {:.1} M updates delivered ({:.1} M in deltas, in {} messages; the rest in snapshots)",
        deliveries as f64 / 1e6,
        sstats.delta_kvs_sent as f64 / 1e6,
        sstats.delta_messages_sent
    );
    println!(
        "lag:        p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (publish to client, {} samples)",
        percentile(&lags, 0.5),
        percentile(&lags, 0.99),
        percentile(&lags, 1.0),
        lags.len()
    );
    println!(
        "snapshots:  {} encodings for {} sends ({} reused); {} delta encodings for {} breadcrumbs",
        sstats.snapshots_generated,
        sstats.snapshots_sent,
        sstats.snapshots_reused,
        sstats.delta_encodings,
        final_crumb.sequence_number
    );
    println!(
        "cpu:        server {:.2} s ({:.2} s per million deliveries), clients {:.2} s, cache processing thread {:.2} s",
        server_cpu,
        server_cpu / (deliveries as f64 / 1e6).max(1e-9),
        client_cpu,
        cpu_secs("snapcache-proc")
    );
    if let Some(h) = herd_cpu {
        println!("herd cpu:   {h:.2} s");
    }
    println!(
        "wire:       {:.1} MiB sent ({:.1} MiB of snapshot chunks)",
        sstats.bytes_sent as f64 / (1 << 20) as f64,
        sstats.snapshot_bytes_sent as f64 / (1 << 20) as f64
    );
    if let Some(mib) = peak_rss_mib() {
        let own = (n * o.keys * 8 + lags.len() * 4) as f64 / (1u64 << 20) as f64;
        println!(
            "memory:     peak RSS {mib:.0} MiB, of which ~{own:.0} MiB is the clients' own state ({n} x {} keys x 8 bytes, and lag samples)",
            o.keys
        );
    }
    drop(clients);
    server_rt.block_on(server.kill());
    cache.shutdown();
    if mismatches == 0 && in_sync {
        println!("verified:   every client's final state equals the final snapshot");
        ExitCode::SUCCESS
    } else {
        println!(
            "FAILED:     {mismatches} client(s) ended in another state{}",
            if in_sync {
                ""
            } else {
                "; not every client got in sync"
            }
        );
        ExitCode::FAILURE
    }
}

/// Disconnects each client three times, as it passes a quarter, a half and three quarters of
/// `updates` delivered (bounded: gives up after 10 minutes).
async fn disconnect_flaky(
    clients: Vec<(snapcache_grpc::client::Reconnecter, Arc<Mutex<Compact>>)>,
    updates: u64,
) {
    let marks = [updates / 4, updates / 2, 3 * updates / 4];
    let mut next = vec![0; clients.len()];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while next.iter().any(|&n| n < marks.len()) && tokio::time::Instant::now() < deadline {
        for (i, (reconnect, state)) in clients.iter().enumerate() {
            if next[i] < marks.len() && state.lock().unwrap().deliveries >= marks[next[i]] {
                next[i] += 1;
                reconnect.reconnect();
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the cache has published everything sent (its current breadcrumb is `InSync`).
fn wait_published(cache: &Cache) {
    let token = snapcache::CancelToken::new();
    let mut crumb = cache.current_breadcrumb();
    while crumb.sync_status != SyncStatus::InSync {
        crumb = crumb.next(&token).expect("open");
    }
}

/// Waits until every client is in sync at the final breadcrumb, with a progress bar.
fn wait_all_in_sync(
    rt: &tokio::runtime::Runtime,
    clients: &[Option<Client>],
    cache: &Cache,
    timeout: Duration,
) -> bool {
    let target = cache.current_breadcrumb().sequence_number;
    let bar = ProgressBar::new(clients.iter().flatten().count() as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} clients in sync  {elapsed}")
            .expect("template")
            .progress_chars("=> "),
    );
    let done = AtomicU64::new(0);
    let ok = rt.block_on(async {
        let deadline = tokio::time::Instant::now() + timeout;
        for c in clients.iter().flatten() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if c.client
                .wait_until(
                    |s| s.in_sync && s.last_sequence_number >= Some(target),
                    left,
                )
                .await
                .is_err()
            {
                return false;
            }
            done.fetch_add(1, Ordering::Relaxed);
            bar.inc(1);
        }
        true
    });
    bar.finish_and_clear();
    ok
}
