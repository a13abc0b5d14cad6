//! Syncs an etcd prefix into a snapshot cache and prints the cache once it is in sync, in
//! `etcdctl get --prefix` format (key, value, one per line), so that the two can be diffed:
//!
//! ```sh
//! cargo run --release -p snapcache-etcd --example etcd_dump -- http://127.0.0.1:2379 /demo/ \
//!     | diff - <(etcdctl get --prefix /demo/) && echo identical
//! ```
//!
//! Arguments: comma-separated endpoints, then the prefix. With `--follow` it keeps printing the
//! deltas (`PUT key value` / `DELETE key`) as they arrive, until interrupted.

use std::io::Write;
use std::time::Duration;

use snapcache::{Cache, CancelToken, Config, SyncStatus};
use snapcache_etcd::{EtcdConfig, EtcdSyncer};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let follow = args.iter().any(|a| a == "--follow");
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let [endpoints, prefix] = positional[..] else {
        eprintln!(
            "usage: etcd_dump ENDPOINTS PREFIX [--follow]   (e.g. http://127.0.0.1:2379 /demo/)"
        );
        std::process::exit(2);
    };
    let cache = Cache::new(Config::default());
    let config = EtcdConfig::new(endpoints.split(','), prefix.clone().into_bytes());
    let syncer = EtcdSyncer::spawn(config, cache.clone())?;
    let cache2 = cache.clone();
    // Follow the cache from its first breadcrumb until it says InSync (or 60 s pass).
    let printer = std::thread::spawn(move || -> std::io::Result<()> {
        let cancel = CancelToken::new();
        let mut crumb = cache2.current_breadcrumb();
        while crumb.sync_status != SyncStatus::InSync {
            crumb = match crumb.next(&cancel) {
                Ok(next) => next,
                Err(_) => return Ok(()),
            };
        }
        let mut out = std::io::stdout().lock();
        // The snapshot iterates in hash order; etcdctl prints in key order.
        let sorted: std::collections::BTreeMap<_, _> = crumb.kvs.iter().collect();
        for (key, update) in sorted {
            out.write_all(key)?;
            out.write_all(b"\n")?;
            out.write_all(update.value.as_deref().unwrap_or_default())?;
            out.write_all(b"\n")?;
        }
        out.flush()?;
        if !follow {
            return Ok(());
        }
        while let Ok(next) = crumb.next(&cancel) {
            crumb = next;
            for d in &crumb.deltas {
                let key = String::from_utf8_lossy(&d.key);
                match &d.value {
                    Some(v) => writeln!(out, "PUT {key} {}", String::from_utf8_lossy(v))?,
                    None => writeln!(out, "DELETE {key}")?,
                }
            }
            out.flush()?;
        }
        Ok(())
    });
    let waited = syncer
        .wait_for(Duration::from_secs(60), |s| {
            s.phase == snapcache_etcd::Phase::Watching
        })
        .await;
    if let Err(state) = waited {
        eprintln!("not in sync after 60 s: {state:?}");
        std::process::exit(1);
    }
    tokio::task::spawn_blocking(move || printer.join())
        .await?
        .expect("the printer thread")?;
    syncer.stop().await?;
    Ok(())
}
