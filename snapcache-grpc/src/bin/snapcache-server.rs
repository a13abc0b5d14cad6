//! `snapcache-server`: serves a snapshot cache over gRPC (Typha's role).
//!
//! ```sh
//! snapcache-server --listen 127.0.0.1:5473 --keys 100000 --updates 1000000
//! snapcache-server --churn-rate 1000 --metrics 127.0.0.1:9093
//! snapcache-server --etcd http://127.0.0.1:2379 --prefix /registry/
//! ```
//! The cache is fed by a *source* (see [`Source`]); today the synthetic syncer of the fan-out
//! demo. It sends its updates, then `InSync`, then stays idle (or keeps changing
//! `--churn-rate` keys per second), so every client that waits for `InSync` sees the same
//! final state. Prints `listening on ADDR` on stdout once serving. SIGINT/SIGTERM: graceful
//! shutdown over `--shutdown-timeout`; a second signal stops at once.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use snapcache::{Cache, Config};
use snapcache_grpc::server::{ClientNames, Server, ServerConfig, ServerTls};
use snapcache_grpc::synthetic::{Synthetic, SyntheticConfig};

#[derive(Parser, Debug)]
#[command(
    version,
    about = "Serves a snapshot cache over gRPC (Typha's syncserver)"
)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:5473")]
    listen: SocketAddr,
    /// The name clients ask for (Typha's syncer type).
    #[arg(long, default_value = "default")]
    cache_name: String,
    /// The cache's max_batch_size (updates per breadcrumb).
    #[arg(long, default_value_t = 100)]
    batch: usize,

    // --- Source: the synthetic syncer (the default). ---
    /// Synthetic source: distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: usize,
    /// Synthetic source: updates before InSync (the resync of every key included).
    #[arg(long, default_value_t = 1_000_000)]
    updates: usize,
    /// Synthetic source: seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Synthetic source: after InSync, keep changing this many keys per second (0: stay idle).
    #[arg(long, default_value_t = 0)]
    churn_rate: u64,
    // --- Source: etcd (snapcache-etcd's syncer), instead of the synthetic one. ---
    /// Serve an etcd key prefix: the etcd endpoints (comma-separated URLs).
    #[arg(long, value_delimiter = ',', requires = "prefix")]
    etcd: Option<Vec<String>>,
    /// With --etcd: the key prefix to serve (keys keep it).
    #[arg(long, requires = "etcd")]
    prefix: Option<String>,

    // --- Serving. ---
    /// Serve Prometheus metrics (Typha's names) on this address, at /metrics.
    #[arg(long)]
    metrics: Option<SocketAddr>,
    /// Most streams at once (default: no limit).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Cut off clients further behind than this (seconds).
    #[arg(long, default_value_t = 300)]
    max_fall_behind: u64,
    /// Grace period after a client's snapshot (seconds).
    #[arg(long, default_value_t = 300)]
    fall_behind_grace: u64,
    /// How long breadcrumbs are kept for resuming clients (seconds).
    #[arg(long, default_value_t = 30)]
    resume_window: u64,
    /// Graceful shutdown drains clients over 95% of this (seconds).
    #[arg(long, default_value_t = 300)]
    shutdown_timeout: u64,
    /// TLS: the server's certificate chain (PEM).
    #[arg(long, requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS: the server's key (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Mutual TLS: the CA that signs client certificates (PEM).
    #[arg(long, requires = "tls_cert")]
    tls_client_ca: Option<PathBuf>,
    /// Mutual TLS: accept only clients whose certificate has this common name (or the URI SAN).
    #[arg(long, requires = "tls_client_ca")]
    client_cn: Option<String>,
    /// Mutual TLS: accept only clients whose certificate has this URI SAN (or the CN).
    #[arg(long, requires = "tls_client_ca")]
    client_uri_san: Option<String>,
}

/// Where the cache's data comes from.
///
/// To plug in another source (a datastore syncer): add a variant, build it in
/// [`Source::from_args`] from its flags, and start it in [`Source::start`], where it gets the
/// cache to feed. The server does not care who feeds the cache.
#[derive(Debug)]
enum Source {
    /// The fan-out demo's synthetic syncer.
    Synthetic {
        config: SyntheticConfig,
        churn_rate: u64,
    },
    /// snapcache-etcd's syncer: an etcd prefix, listed then watched.
    Etcd(Box<snapcache_etcd::EtcdConfig>),
}

impl Source {
    fn from_args(args: &Args) -> Result<Source, String> {
        if let (Some(endpoints), Some(prefix)) = (&args.etcd, &args.prefix) {
            let config = snapcache_etcd::EtcdConfig::new(endpoints.clone(), prefix.clone());
            config.validate().map_err(|e| e.to_string())?;
            return Ok(Source::Etcd(Box::new(config)));
        }
        if args.keys == 0 {
            return Err("--keys must be positive".into());
        }
        Ok(Source::Synthetic {
            config: SyntheticConfig {
                keys: args.keys,
                updates: args.updates,
                seed: args.seed,
                block: 100,
            },
            churn_rate: args.churn_rate,
        })
    }

    /// Starts feeding `cache`; the source stops when the cache shuts down.
    fn start(self, cache: Cache) {
        match self {
            Source::Synthetic { config, churn_rate } => {
                std::thread::Builder::new()
                    .name("synthetic-syncer".into())
                    .spawn(move || synthetic(cache, config, churn_rate))
                    .expect("spawn the syncer thread");
            }
            Source::Etcd(config) => {
                // On the server's runtime, with a configuration checked in `from_args`.
                let syncer = snapcache_etcd::EtcdSyncer::spawn(*config, cache)
                    .expect("start the etcd syncer");
                tokio::spawn(async move {
                    let mut state = syncer.subscribe();
                    let _ = state
                        .wait_for(|s| s.phase == snapcache_etcd::Phase::Stopped)
                        .await;
                    if let Err(e) = syncer.stop().await {
                        tracing::error!("etcd syncer stopped: {e}");
                    }
                });
            }
        }
    }
}

fn synthetic(cache: Cache, config: SyntheticConfig, churn_rate: u64) {
    let mut syncer = Synthetic::new(config);
    let started = std::time::Instant::now();
    if syncer.run(&cache, |_| {}).is_err() {
        return;
    }
    tracing::info!(
        updates = syncer.sent(),
        secs = started.elapsed().as_secs_f64(),
        "synthetic syncer: in sync"
    );
    if churn_rate == 0 {
        return;
    }
    // Ten ticks a second.
    let per_tick = (churn_rate / 10).max(1) as usize;
    let tick = Duration::from_secs_f64(per_tick as f64 / churn_rate as f64);
    let mut next = std::time::Instant::now();
    loop {
        next += tick;
        if syncer.send(&cache, per_tick, |_| {}).is_err() {
            return;
        }
        std::thread::sleep(next.saturating_duration_since(std::time::Instant::now()));
    }
}

fn read(path: &Option<PathBuf>) -> Result<Option<Vec<u8>>, String> {
    path.as_ref()
        .map(|p| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display())))
        .transpose()
}

fn server_config(args: &Args) -> Result<ServerConfig, String> {
    let tls = match (read(&args.tls_cert)?, read(&args.tls_key)?) {
        (Some(cert_pem), Some(key_pem)) => Some(ServerTls {
            cert_pem,
            key_pem,
            client_ca_pem: read(&args.tls_client_ca)?,
            client_names: ClientNames {
                common_name: args.client_cn.clone(),
                uri_san: args.client_uri_san.clone(),
            },
        }),
        _ => None,
    };
    Ok(ServerConfig {
        max_connections: args.max_connections,
        max_fall_behind: Duration::from_secs(args.max_fall_behind),
        fall_behind_grace: Duration::from_secs(args.fall_behind_grace),
        resume_window: Duration::from_secs(args.resume_window),
        shutdown_timeout: Duration::from_secs(args.shutdown_timeout),
        tls,
        ..Default::default()
    })
}

async fn run(args: Args) -> Result<(), String> {
    let source = Source::from_args(&args)?;
    let config = server_config(&args)?;
    if let Some(addr) = args.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| format!("--metrics {addr}: {e}"))?;
        tracing::info!(%addr, "metrics at /metrics");
    }
    let cache = Cache::new(Config {
        max_batch_size: args.batch,
        health_name: args.cache_name.clone(),
        ..Default::default()
    });
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("--listen {}: {e}", args.listen))?;
    let server = Server::new(config)
        .cache(args.cache_name.clone(), cache.clone())
        .start(listener)
        .map_err(|e| e.to_string())?;
    println!("listening on {}", server.local_addr());
    source.start(cache.clone());

    shutdown_signal().await;
    tracing::info!("shutting down gracefully (a second signal stops at once)");
    tokio::select! {
        _ = server.shutdown() => {}
        _ = shutdown_signal() => tracing::warn!("second signal: stopping at once"),
    }
    cache.shutdown();
    Ok(())
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("install a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("snapcache-server")
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
