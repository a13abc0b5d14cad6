//! The server's configuration, with Typha's defaults.

use std::time::Duration;

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

/// Configuration of a [`Server`](super::Server). The defaults are Typha's where Typha has the
/// setting.
///
/// ```
/// use std::time::Duration;
/// let config = snapcache_grpc::server::ServerConfig {
///     max_connections: Some(1000),
///     ..Default::default()
/// };
/// assert_eq!(config.max_fall_behind, Duration::from_secs(300));
/// ```
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// How long a client has to send its handshake (default 10 s).
    pub handshake_timeout: Duration,
    /// A client whose oldest unsent breadcrumb is older than this is cut off ("fell behind"),
    /// once its grace period is over (default 300 s).
    pub max_fall_behind: Duration,
    /// Also cut off a client more than this many breadcrumbs behind the newest (default: no
    /// bound; tests set a small one to trigger the rule quickly).
    pub max_fall_behind_breadcrumbs: Option<u64>,
    /// How long after the end of its snapshot a client may be behind without being cut off
    /// (default 300 s).
    pub fall_behind_grace: Duration,
    /// How often a client that cannot take a message is checked against the fall-behind rule
    /// and the write timeout (default 1 s).
    pub liveness_check_interval: Duration,
    /// A client that cannot take a single message for this long is cut off, even in its grace
    /// period or during its snapshot (default 120 s, Typha's write deadline).
    pub write_timeout: Duration,
    /// How long breadcrumbs are kept for resuming clients (default 30 s).
    pub resume_window: Duration,
    /// At most this many breadcrumbs are kept for resuming clients (default 100,000).
    pub resume_window_breadcrumbs: usize,
    /// A snapshot encoding is reused by the clients that start while its breadcrumb is the
    /// newest, and by those that start up to this long after it began even if the cache has
    /// moved on (default 1 s; they then catch up with deltas).
    pub snapshot_reuse: Duration,
    /// Raw (uncompressed) bytes of key/values per snapshot chunk (default 256 KiB).
    pub snapshot_chunk_bytes: usize,
    /// zstd level of snapshot chunks (default 1).
    pub snapshot_zstd_level: i32,
    /// Deltas of several breadcrumbs are coalesced into one message up to about this size
    /// (default 256 KiB; a single breadcrumb bigger than that is still sent whole).
    pub max_message_bytes: usize,
    /// The largest request accepted (default 1 MiB, Typha's inbound cap).
    pub max_request_bytes: usize,
    /// HTTP/2 ping interval (default 10 s).
    pub keepalive_interval: Duration,
    /// A connection whose ping is not answered within this is closed (default 60 s).
    pub keepalive_timeout: Duration,
    /// Most streams served at once; more are refused with `RESOURCE_EXHAUSTED` (default: no
    /// limit, as Typha's).
    pub max_connections: Option<usize>,
    /// Graceful shutdown drains clients over 95% of this (default 300 s).
    pub shutdown_timeout: Duration,
    /// TLS, and which clients are accepted (default: plain TCP).
    pub tls: Option<ServerTls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            handshake_timeout: Duration::from_secs(10),
            max_fall_behind: Duration::from_secs(300),
            max_fall_behind_breadcrumbs: None,
            fall_behind_grace: Duration::from_secs(300),
            liveness_check_interval: Duration::from_secs(1),
            write_timeout: Duration::from_secs(120),
            resume_window: Duration::from_secs(30),
            resume_window_breadcrumbs: 100_000,
            snapshot_reuse: Duration::from_secs(1),
            snapshot_chunk_bytes: 256 << 10,
            snapshot_zstd_level: 1,
            max_message_bytes: 256 << 10,
            max_request_bytes: 1 << 20,
            keepalive_interval: Duration::from_secs(10),
            keepalive_timeout: Duration::from_secs(60),
            max_connections: None,
            shutdown_timeout: Duration::from_secs(300),
            tls: None,
        }
    }
}

/// The server's TLS identity and, for mutual TLS, the client CA and accepted client names.
#[derive(Clone)]
pub struct ServerTls {
    /// The server's certificate chain (PEM).
    pub cert_pem: Vec<u8>,
    /// The server's private key (PEM).
    pub key_pem: Vec<u8>,
    /// If set, clients must present a certificate signed by this CA (PEM).
    pub client_ca_pem: Option<Vec<u8>>,
    /// If not empty, the client certificate must also carry one of these names.
    pub client_names: ClientNames,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("mutual", &self.client_ca_pem.is_some())
            .field("client_names", &self.client_names)
            .finish_non_exhaustive()
    }
}

/// Which client certificates are accepted, by name (Typha's `ClientCN` and `ClientURISAN`): a
/// certificate is accepted if its subject common name is `common_name` or one of its URI
/// subject alternative names is `uri_san`. Both `None`: any certificate the CA signed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientNames {
    /// The required subject common name.
    pub common_name: Option<String>,
    /// The required URI subject alternative name.
    pub uri_san: Option<String>,
}

impl ClientNames {
    /// Whether any name is required.
    pub fn is_empty(&self) -> bool {
        self.common_name.is_none() && self.uri_san.is_none()
    }
}

impl ServerTls {
    pub(crate) fn tonic_config(&self) -> Result<ServerTlsConfig, crate::Error> {
        if !self.client_names.is_empty() && self.client_ca_pem.is_none() {
            return Err(crate::Error::Config(
                "client names are required but no client CA is set (mutual TLS is needed to check them)".into(),
            ));
        }
        let mut config =
            ServerTlsConfig::new().identity(Identity::from_pem(&self.cert_pem, &self.key_pem));
        if let Some(ca) = &self.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        Ok(config)
    }
}
