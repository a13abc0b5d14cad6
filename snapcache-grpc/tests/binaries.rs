//! The binaries, as a user runs them: `snapcache-server` with the synthetic source, and
//! `snapcache-client --dump` / `--until-in-sync` against it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use snapcache_grpc::synthetic::{Synthetic, SyntheticConfig};

const DEADLINE: Duration = Duration::from_secs(60);

/// Kills the child if the test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_server(args: &[&str]) -> (Guard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_snapcache-server"))
        .args(["--listen", "127.0.0.1:0", "--shutdown-timeout", "1"])
        .args(args)
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

fn client(args: &[&str]) -> std::process::Output {
    let child = Command::new(env!("CARGO_BIN_EXE_snapcache-client"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start snapcache-client");
    // The client's own --timeout bounds it; wait_with_output then returns.
    child.wait_with_output().unwrap()
}

fn wait_exit(guard: &mut Guard) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            return status;
        }
        assert!(start.elapsed() < DEADLINE, "the server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn the_client_dumps_the_servers_final_state() {
    let (mut server, addr) = start_server(&["--keys", "1000", "--updates", "20000", "--seed", "7"]);
    let out = client(&["--server", &addr, "--dump", "--timeout", "30"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let mut syncer = Synthetic::new(SyntheticConfig {
        keys: 1000,
        updates: 20_000,
        seed: 7,
        block: 100,
    });
    let cache = snapcache::Cache::new(snapcache::Config::default());
    syncer.run(&cache, |_| {}).unwrap();
    cache.shutdown();
    let mut expected = Vec::new();
    snapcache_grpc::dump::write_dump(&syncer.model(), &mut expected).unwrap();
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(expected).unwrap()
    );

    let out = client(&["--server", &addr, "--until-in-sync", "--timeout", "30"]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());

    // Graceful shutdown on SIGTERM, exit status 0.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(wait_exit(&mut server).success());
}

#[test]
fn the_client_reports_a_refusal_and_exits_non_zero() {
    let (_server, addr) = start_server(&["--keys", "10", "--updates", "10"]);
    let out = client(&[
        "--server",
        &addr,
        "--cache-name",
        "nope",
        "--dump",
        "--timeout",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not in sync after 2 s"), "{stderr}");
    assert!(
        stderr.contains("unknown cache \\\"nope\\\"") || stderr.contains("unknown cache \"nope\""),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}
