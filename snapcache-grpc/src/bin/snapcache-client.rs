//! `snapcache-client`: streams a cache from `snapcache-server`(s) (Typha's client role).
//!
//! ```sh
//! snapcache-client --server 127.0.0.1:5473 --until-in-sync
//! snapcache-client --server 127.0.0.1:5473 --dump > state.jsonl
//! ```
//! `--dump` prints, once in sync, the state as one JSON object per line, sorted by key (see
//! `snapcache_grpc::dump` for the exact format), then exits 0. `--until-in-sync` exits 0 once
//! in sync. Either exits 1 if that does not happen within `--timeout`. Without them it follows
//! the cache until interrupted, logging progress.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use snapcache_grpc::client::{ClientTls, SyncClient};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Streams a snapshot cache from snapcache-server (Typha's syncclient)"
)]
struct Args {
    /// Server address(es) `host:port`; repeat or separate with commas. Tried in shuffled order.
    #[arg(long, required = true, value_delimiter = ',')]
    server: Vec<String>,
    /// The cache to stream.
    #[arg(long, default_value = "default")]
    cache_name: String,
    /// Exit 0 once in sync.
    #[arg(long)]
    until_in_sync: bool,
    /// Once in sync, print the state as JSON lines sorted by key, then exit 0.
    #[arg(long)]
    dump: bool,
    /// With --until-in-sync or --dump: give up (exit 1) after this many seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// The name the server logs (default: the hostname).
    #[arg(long)]
    name: Option<String>,
    /// Never resume (every connection starts with a snapshot, as Typha's clients do).
    #[arg(long)]
    no_resume: bool,
    /// TLS: the CA of the server's certificate (PEM).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Mutual TLS: the client's certificate chain (PEM).
    #[arg(long, requires_all = ["tls_ca", "tls_key"])]
    tls_cert: Option<PathBuf>,
    /// Mutual TLS: the client's key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// TLS: the name to check the server's certificate against (default: the address's host).
    #[arg(long, requires = "tls_ca")]
    tls_server_name: Option<String>,
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

async fn run(args: Args) -> Result<(), String> {
    let mut builder = SyncClient::builder()
        .servers(args.server.iter().cloned())
        .cache_name(args.cache_name.clone())
        .resume(!args.no_resume)
        .keep_map(args.dump || !args.until_in_sync);
    if let Some(name) = &args.name {
        builder = builder.client_name(name.clone());
    }
    if let Some(ca) = &args.tls_ca {
        let identity = match (&args.tls_cert, &args.tls_key) {
            (Some(c), Some(k)) => Some((read(c)?, read(k)?)),
            _ => None,
        };
        builder = builder.tls(ClientTls {
            ca_pem: read(ca)?,
            identity,
            server_name: args.tls_server_name.clone(),
        });
    }
    let client = builder.spawn(());
    if args.until_in_sync || args.dump {
        let state = client
            .wait_until(|s| s.in_sync, Duration::from_secs(args.timeout))
            .await
            .map_err(|_| {
                let s = client.state();
                format!(
                    "not in sync after {} s (last error: {})",
                    args.timeout,
                    s.last_error.as_deref().unwrap_or("none")
                )
            })?;
        if args.dump {
            let map = client.map().expect("the client keeps a map with --dump");
            snapcache_grpc::dump::write_dump(&map, std::io::stdout().lock())
                .map_err(|e| format!("writing the dump: {e}"))?;
        }
        tracing::info!(
            server = state.server.as_deref().unwrap_or("?"),
            sequence_number = state.last_sequence_number,
            bytes = state.bytes_received,
            "in sync"
        );
        client.stop().await;
        return Ok(());
    }
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {
                let s = client.state();
                let keys = client.map().map_or(0, |m| m.len());
                tracing::info!(connected = s.connected, in_sync = s.in_sync, sequence_number = s.last_sequence_number, keys, snapshots = s.snapshots, resumes = s.resumes, last_error = s.last_error.as_deref().unwrap_or(""), "state");
            }
        }
    }
    client.stop().await;
    Ok(())
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
