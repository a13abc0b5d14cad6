//! `snapcache-server --etcd ENDPOINTS --prefix PREFIX` end to end: a real etcd (the
//! `snapcache_etcd::testing` fixture), snapcache-etcd's syncer inside the server binary, and
//! `snapcache-client --dump`, whose output must be exactly what `etcdctl get --prefix` lists
//! (converted to the dump's JSON lines), after a seeded random mix of etcd operations,
//! compactions included.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use snapcache_etcd::testing::etcd_client::{CompactionOptions, DeleteOptions, Txn, TxnOp};
use snapcache_etcd::testing::{etcdctl_state, EtcdServer};

const DEADLINE: Duration = Duration::from_secs(60);

/// Kills the server if the test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(etcd: &EtcdServer, prefix: &str) -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snapcache-server"))
        .args(["--listen", "127.0.0.1:0", "--shutdown-timeout", "1"])
        .args(["--etcd", &etcd.endpoint(), "--prefix", prefix])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start snapcache-server");
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).unwrap();
    let addr = line
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .trim()
        .to_owned();
    (Guard(child), addr)
}

/// `snapcache-client --dump` against `addr`.
fn dump(addr: &str) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_snapcache-client"))
        .args(["--server", addr, "--dump", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .expect("run snapcache-client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// What etcdctl lists under `prefix`, in the dump's format.
fn etcdctl_dump(etcd: &EtcdServer, prefix: &str) -> String {
    etcdctl_state(etcd, prefix)
        .iter()
        .map(|(k, v)| snapcache_grpc::dump::dump_line(k, v) + "\n")
        .collect()
}

/// Dumps until the dump equals etcdctl's listing (a new client sees the server's cache, which
/// follows etcd a moment behind), for at most `DEADLINE`.
fn assert_dump_converges(addr: &str, etcd: &EtcdServer, prefix: &str, when: &str) -> usize {
    let expected = etcdctl_dump(etcd, prefix);
    let start = Instant::now();
    loop {
        let got = dump(addr);
        if got == expected {
            return got.lines().count();
        }
        if start.elapsed() > DEADLINE {
            panic!("{when}: the client's dump is not what etcdctl lists:\n--- dump\n{got}--- etcdctl\n{expected}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// SplitMix64, so that a failing seed can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

/// Seeded bugs caught (`SNAPCACHE_ETCD_MUTANT`, which the server binary inherits):
/// `drop_deletes`, `prefix_end_all_above`, `lossy_keys`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_dump_of_an_etcd_backed_server_is_what_etcdctl_lists() {
    let etcd = EtcdServer::start().await;
    let mut client = etcd.client().await;
    let prefix = "/e2e/";
    for i in 0..1000 {
        client
            .put(format!("/e2e/k{i:04}"), format!("v{i}"), None)
            .await
            .unwrap();
    }
    // Binary keys and values, and keys beside the prefix.
    client
        .put(b"/e2e/\xff\x00bin".to_vec(), b"\x00\xc3(".to_vec(), None)
        .await
        .unwrap();
    client
        .put("/e2e/quote\"", "line\nbreak", None)
        .await
        .unwrap();
    client.put("/e2e", "outside", None).await.unwrap();
    client.put("/e2e0", "outside", None).await.unwrap();

    let (_server, addr) = start_server(&etcd, prefix);
    let n = assert_dump_converges(&addr, &etcd, prefix, "after the initial list");
    assert_eq!(n, 1002);

    // A seeded random mix, checked along the way.
    let mut rng = Rng(15);
    for round in 0..4 {
        for op in 0..50 {
            let key = format!("/e2e/k{:04}", rng.below(1200));
            match rng.below(10) {
                0..=4 => {
                    client
                        .put(key, format!("r{round}.{op}"), None)
                        .await
                        .unwrap();
                }
                5..=7 => {
                    client.delete(key, None).await.unwrap();
                }
                8 => {
                    let ops: Vec<TxnOp> = (0..3)
                        .map(|i| {
                            TxnOp::put(format!("/e2e/t{}", rng.below(20) * 3 + i), "txn", None)
                        })
                        .collect();
                    client.txn(Txn::new().and_then(ops)).await.unwrap();
                }
                _ => {
                    client
                        .delete("/e2e/t", Some(DeleteOptions::new().with_prefix()))
                        .await
                        .unwrap();
                }
            }
        }
        let at = client
            .put("/e2e0", "outside", None)
            .await
            .unwrap()
            .header()
            .unwrap()
            .revision();
        client
            .compact(at, Some(CompactionOptions::new().with_physical()))
            .await
            .unwrap();
        assert_dump_converges(&addr, &etcd, prefix, &format!("after round {round}"));
    }
}
