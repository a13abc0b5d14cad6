//! Benchmark (not a test): the initial sync of N keys from a real etcd into the cache, and the
//! steady-state rate from etcd writes to a follower of the cache. Numbers go to BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release -p snapcache-etcd --example bench_sync -- [KEYS] [VALUE_BYTES] [ROUNDS]
//! ```
//! (defaults 100000, 100, 5). It starts its own etcd (the test fixture: Debian's etcd-server,
//! data in /dev/shm). Each round times, interleaved: (A) a bare paged list with etcd-client
//! (500 keys a page at one revision, values dropped) and (B) a fresh cache + syncer until a
//! follower sees `InSync`, with this process's CPU time; medians are printed. Then 5 s of
//! steady state: 8 writers put as fast as etcd takes them while a follower counts deltas.
//! Peak RSS is the process's (`ru_maxrss`). The machine is shared and noisy: CPU time is the
//! steadier number.
//!
//! With `SERVER_BIN` and `CLIENT_BIN` set (the `snapcache-server` and `snapcache-client`
//! binaries of snapcache-grpc), it also runs the fan-out: the server with `--etcd` on the same
//! etcd, and 100 `snapcache-client --until-in-sync` processes started at once; it reports the
//! time until all are in sync, and the server's CPU time and peak RSS (from /proc).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{GetOptions, Txn, TxnOp};
use snapcache::{Cache, CancelToken, Config, SyncStatus};
use snapcache_etcd::testing::EtcdServer;
use snapcache_etcd::{EtcdConfig, EtcdSyncer, Phase};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let arg = |i: usize, default: usize| -> usize {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let (keys, value_bytes, rounds) = (arg(1, 100_000), arg(2, 100), arg(3, 5));
    let etcd = EtcdServer::start().await;
    let mut client = etcd.client().await;
    let load = Instant::now();
    let value = vec![b'v'; value_bytes];
    for chunk in (0..keys).collect::<Vec<_>>().chunks(100) {
        let ops: Vec<TxnOp> = chunk
            .iter()
            .map(|i| TxnOp::put(format!("/bench/{i:08}"), value.clone(), None))
            .collect();
        client.txn(Txn::new().and_then(ops)).await.expect("load");
    }
    println!(
        "loaded {keys} keys of {value_bytes} B in {:.2} s",
        load.elapsed().as_secs_f64()
    );

    let (mut list_wall, mut sync_wall, mut sync_cpu, mut etcd_cpu) =
        (vec![], vec![], vec![], vec![]);
    for round in 0..rounds {
        // A: the bare list.
        let t = Instant::now();
        let listed = bare_list(&mut client).await;
        assert_eq!(listed, keys);
        list_wall.push(t.elapsed().as_secs_f64());
        // B: a cache and a syncer, until a follower sees InSync.
        let (cpu0, etcd0) = (cpu_seconds(), etcd_cpu_seconds(&etcd));
        let t = Instant::now();
        let cache = Cache::new(Config::default());
        let syncer =
            EtcdSyncer::spawn(EtcdConfig::new([etcd.endpoint()], "/bench/"), cache.clone())
                .unwrap();
        let follower = {
            let cache = cache.clone();
            tokio::task::spawn_blocking(move || {
                let cancel = CancelToken::new();
                let mut crumb = cache.current_breadcrumb();
                while crumb.sync_status != SyncStatus::InSync {
                    crumb = crumb.next(&cancel).unwrap();
                }
                crumb.kvs.len()
            })
        };
        assert_eq!(follower.await.unwrap(), keys);
        sync_wall.push(t.elapsed().as_secs_f64());
        sync_cpu.push(cpu_seconds() - cpu0);
        etcd_cpu.push(etcd_cpu_seconds(&etcd) - etcd0);
        syncer.stop().await.unwrap();
        cache.shutdown();
        println!(
            "round {round}: list {:.3} s | sync to InSync {:.3} s wall, {:.3} s CPU here, {:.3} s CPU in etcd",
            list_wall[round], sync_wall[round], sync_cpu[round], etcd_cpu[round]
        );
    }
    println!(
        "median of {rounds}: bare list {:.3} s; sync to InSync {:.3} s wall, {:.3} s CPU (syncer + cache), etcd {:.3} s CPU; peak RSS {} MiB",
        median(&mut list_wall),
        median(&mut sync_wall),
        median(&mut sync_cpu),
        median(&mut etcd_cpu),
        peak_rss_kib() / 1024
    );
    steady_state(&etcd).await;
    if let (Ok(server), Ok(client)) = (std::env::var("SERVER_BIN"), std::env::var("CLIENT_BIN")) {
        for round in 0..rounds.min(3) {
            fan_out(&etcd, &server, &client, 100, keys, round).await;
        }
    }
}

/// The server binary on `etcd`, then `clients` client processes at once until in sync.
async fn fan_out(
    etcd: &EtcdServer,
    server: &str,
    client: &str,
    clients: usize,
    keys: usize,
    round: usize,
) {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    let t = Instant::now();
    let mut child = Command::new(server)
        .args(["--listen", "127.0.0.1:0", "--shutdown-timeout", "1"])
        .args(["--etcd", &etcd.endpoint(), "--prefix", "/bench/"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start snapcache-server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect("the server's address")
        .to_owned();
    // The first client alone: the server's initial sync (etcd list + cache) and one snapshot.
    let first = Command::new(client)
        .args(["--server", &addr, "--until-in-sync", "--timeout", "120"])
        .status()
        .unwrap();
    assert!(first.success());
    let synced = t.elapsed().as_secs_f64();
    let server_cpu0 = proc_cpu_seconds(child.id());
    let t = Instant::now();
    let procs: Vec<_> = (0..clients)
        .map(|_| {
            Command::new(client)
                .args(["--server", &addr, "--until-in-sync", "--timeout", "120"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut p in procs {
        assert!(p.wait().unwrap().success());
    }
    let fan = t.elapsed().as_secs_f64();
    let server_cpu = proc_cpu_seconds(child.id()) - server_cpu0;
    let rss = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    let _ = child.kill();
    let _ = child.wait();
    println!(
        "fan-out round {round}: server start to a first client in sync {synced:.2} s ({keys} keys); then {clients} client processes at once, all in sync in {fan:.2} s, server CPU {server_cpu:.2} s; server peak RSS {rss}"
    );
}

/// A process's user + system CPU time, from /proc (clock ticks).
fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 14th field overall.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no memory-safety preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    (ticks(11) + ticks(12)) / hz
}

/// Lists /bench/ in pages of 500 at one revision, as the syncer does, keeping nothing.
async fn bare_list(client: &mut etcd_client::Client) -> usize {
    let mut kv = client.kv_client().max_decoding_message_size(usize::MAX);
    let end = b"/bench0".to_vec();
    let mut start = b"/bench/".to_vec();
    let mut revision = 0;
    let mut n = 0;
    loop {
        let mut options = GetOptions::new().with_range(end.clone()).with_limit(500);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let mut r = kv.get(start.clone(), Some(options)).await.unwrap();
        revision = r.header().unwrap().revision();
        let more = r.more();
        let kvs = r.take_kvs();
        n += kvs.len();
        match kvs.last() {
            Some(last) if more => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => return n,
        }
    }
}

/// 8 writers for 5 s; a follower counts the deltas that reach it.
async fn steady_state(etcd: &EtcdServer) {
    let cache = Cache::new(Config::default());
    let syncer = EtcdSyncer::spawn(
        EtcdConfig::new([etcd.endpoint()], "/steady/"),
        cache.clone(),
    )
    .unwrap();
    syncer
        .wait_for(Duration::from_secs(30), |s| s.phase == Phase::Watching)
        .await
        .unwrap();
    let seen = Arc::new(AtomicU64::new(0));
    let cancel = CancelToken::new();
    let follower = std::thread::spawn({
        let (cache, seen, cancel) = (cache.clone(), seen.clone(), cancel.clone());
        move || {
            let mut crumb = cache.current_breadcrumb();
            while let Ok(next) = crumb.next(&cancel) {
                // Relaxed: a counter read at the end.
                seen.fetch_add(next.deltas.len() as u64, Ordering::Relaxed);
                crumb = next;
            }
        }
    });
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let (cpu0, etcd0) = (cpu_seconds(), etcd_cpu_seconds(etcd));
    let t = Instant::now();
    let mut writers = Vec::new();
    for w in 0..8 {
        let mut client = etcd.client().await;
        let (stop, written) = (stop.clone(), written.clone());
        writers.push(tokio::spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                client
                    .put(format!("/steady/{w}/{}", i % 1000), format!("{i}"), None)
                    .await
                    .unwrap();
                written.fetch_add(1, Ordering::Relaxed);
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    let wrote = written.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.load(Ordering::Relaxed) < wrote && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let elapsed = t.elapsed().as_secs_f64();
    let delivered = seen.load(Ordering::Relaxed);
    println!(
        "steady state: {wrote} writes in 5 s ({:.0}/s, what etcd took from 8 writers); the follower got {delivered} ({:.0}/s over {elapsed:.2} s); CPU here {:.2} s (writers' clients included), etcd {:.2} s",
        wrote as f64 / 5.0,
        delivered as f64 / elapsed,
        cpu_seconds() - cpu0,
        etcd_cpu_seconds(etcd) - etcd0
    );
    cancel.cancel();
    follower.join().unwrap();
    syncer.stop().await.unwrap();
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// This process's user + system CPU time.
fn cpu_seconds() -> f64 {
    let usage = rusage();
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(usage.ru_utime) + t(usage.ru_stime)
}

fn peak_rss_kib() -> i64 {
    rusage().ru_maxrss
}

fn rusage() -> libc::rusage {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole `rusage` into the pointer it is given, which points to
    // one (zero-initialised, so valid even if it wrote nothing).
    unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    }
}

/// etcd's user + system CPU time.
fn etcd_cpu_seconds(etcd: &EtcdServer) -> f64 {
    etcd.pid().map_or(0.0, proc_cpu_seconds)
}
