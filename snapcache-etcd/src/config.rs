//! What the syncer connects to and how: endpoints, key prefix, TLS, credentials, paging.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::error::Error;
use crate::mutant::{self, Mutant};

/// Default [`EtcdConfig::page_size`]: keys per page of the initial list (kube-rs's and the
/// Kubernetes reflector's default).
pub const DEFAULT_PAGE_SIZE: usize = 500;
/// Default [`EtcdConfig::batch_size`]: updates per [`Cache::on_updates`](snapcache::Cache::on_updates)
/// call while listing.
pub const DEFAULT_BATCH_SIZE: usize = 500;
/// Default [`EtcdConfig::max_message_size`]: the largest etcd response accepted, as the Go
/// client's (`math.MaxInt32`). tonic's own default, 4 MiB, would refuse a page of a few large
/// values, or a watch response catching up on many.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = i32::MAX as usize;

/// Configuration of an [`EtcdSyncer`](crate::EtcdSyncer).
///
/// ```
/// use snapcache_etcd::EtcdConfig;
/// let config = EtcdConfig::new(["http://127.0.0.1:2379"], "/calico/v1/")
///     .with_user("typha", "secret")
///     .with_page_size(1000);
/// assert_eq!(config.batch_size, snapcache_etcd::DEFAULT_BATCH_SIZE);
/// assert!(!format!("{config:?}").contains("secret"));
/// ```
#[derive(Clone)]
pub struct EtcdConfig {
    /// etcd client URLs (`http://host:port`, or `https://` with [`tls`](Self::tls)).
    pub endpoints: Vec<String>,
    /// Only keys starting with these bytes are synced; keys reach the cache with the prefix
    /// kept. Empty means every key.
    pub prefix: Bytes,
    /// TLS to etcd, if any.
    pub tls: Option<TlsConfig>,
    /// etcd user name and password, if authentication is on.
    pub credentials: Option<Credentials>,
    /// Keys per page of a list (default 500). Every page is read at the list's one revision.
    pub page_size: usize,
    /// Updates per call into the cache while listing (default 500).
    pub batch_size: usize,
    /// Largest etcd response accepted, in bytes (default `i32::MAX`).
    pub max_message_size: usize,
    /// Time allowed for one unary request (a page of a list); the watch stream has none, it is
    /// kept honest by HTTP/2 keep-alive instead (default 30 s).
    pub request_timeout: Duration,
    /// Time allowed to open a connection (default 5 s).
    pub connect_timeout: Duration,
    /// HTTP/2 keep-alive ping interval and timeout, so that a black-holed connection is noticed
    /// (default 10 s and 20 s).
    pub keep_alive: Option<(Duration, Duration)>,
    /// Waits between failed attempts: doubles from `min` to `max` (default 100 ms to 5 s), back
    /// to `min` after a success.
    pub backoff: Backoff,
}

/// Exponential back-off bounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first wait.
    pub min: Duration,
    /// The longest wait.
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            min: Duration::from_millis(100),
            max: Duration::from_secs(5),
        }
    }
}

/// An etcd user and password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub user: String,
    /// Password (never printed by `Debug`).
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS to etcd (needs the crate's `tls` feature, on by default). PEM-encoded.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// CA certificates to trust; `None` trusts none (so set it, etcd's are usually private).
    pub ca_pem: Option<Vec<u8>>,
    /// Client certificate chain and private key, for etcd's `--client-cert-auth`.
    pub identity_pem: Option<(Vec<u8>, Vec<u8>)>,
    /// The server name to verify, when it differs from the endpoint's host.
    pub domain: Option<String>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("ca_pem", &self.ca_pem.as_ref().map(|c| c.len()))
            .field("identity_pem", &self.identity_pem.as_ref().map(|_| "<set>"))
            .field("domain", &self.domain)
            .finish()
    }
}

impl EtcdConfig {
    /// A configuration for `endpoints` and `prefix`, everything else default.
    pub fn new<E: Into<String>>(
        endpoints: impl IntoIterator<Item = E>,
        prefix: impl Into<Bytes>,
    ) -> Self {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            prefix: prefix.into(),
            tls: None,
            credentials: None,
            page_size: DEFAULT_PAGE_SIZE,
            batch_size: DEFAULT_BATCH_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            request_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            keep_alive: Some((Duration::from_secs(10), Duration::from_secs(20))),
            backoff: Backoff::default(),
        }
    }

    /// Sets the user and password.
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some(Credentials {
            user: user.into(),
            password: password.into(),
        });
        self
    }

    /// Sets TLS.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the page size of lists.
    pub fn with_page_size(mut self, page_size: usize) -> Self {
        self.page_size = page_size;
        self
    }

    /// Sets the number of updates per call into the cache.
    pub fn with_batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Checks the configuration, with an error saying what is wrong.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |why: String| Err(Error::Config(why));
        if self.endpoints.is_empty() {
            return bad("no etcd endpoints".into());
        }
        if self.page_size == 0 || self.page_size > i64::MAX as usize {
            return bad(format!(
                "page size {} is not in 1..=i64::MAX",
                self.page_size
            ));
        }
        if self.batch_size == 0 {
            return bad("batch size 0".into());
        }
        if self.backoff.min.is_zero() || self.backoff.min > self.backoff.max {
            return bad(format!("back-off {:?} is not 0 < min <= max", self.backoff));
        }
        if self.tls.is_some() && !cfg!(feature = "tls") {
            return bad("TLS needs snapcache-etcd's `tls` feature".into());
        }
        Ok(())
    }

    /// The etcd-client connection options this configuration stands for.
    pub(crate) fn connect_options(&self) -> Result<etcd_client::ConnectOptions, Error> {
        let mut options =
            etcd_client::ConnectOptions::new().with_connect_timeout(self.connect_timeout);
        if let Some((interval, timeout)) = self.keep_alive {
            options = options
                .with_keep_alive(interval, timeout)
                .with_keep_alive_while_idle(true);
        }
        let credentials = self
            .credentials
            .as_ref()
            .filter(|_| !mutant::active(Mutant::NoCredentials));
        if let Some(c) = credentials {
            // etcd's simple tokens expire (5 minutes by default): fetch a new one when refused.
            options = options
                .with_user(c.user.clone(), c.password.clone())
                .with_auto_token_refresh(true);
        }
        #[cfg(feature = "tls")]
        if let Some(tls) = self
            .tls
            .as_ref()
            .filter(|_| !mutant::active(Mutant::NoTlsConfig))
        {
            let mut t = etcd_client::TlsOptions::new();
            if let Some(ca) = &tls.ca_pem {
                t = t.ca_certificate(etcd_client::Certificate::from_pem(ca));
            }
            if let Some((cert, key)) = &tls.identity_pem {
                t = t.identity(etcd_client::Identity::from_pem(cert, key));
            }
            if let Some(domain) = &tls.domain {
                t = t.domain_name(domain.clone());
            }
            options = options.with_tls(t);
        }
        Ok(options)
    }
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .field("tls", &self.tls)
            .field("credentials", &self.credentials)
            .field("page_size", &self.page_size)
            .field("batch_size", &self.batch_size)
            .field("max_message_size", &self.max_message_size)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("keep_alive", &self.keep_alive)
            .field("backoff", &self.backoff)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_says_what_is_wrong() {
        let ok = EtcdConfig::new(["http://127.0.0.1:2379"], "/p/");
        assert!(ok.validate().is_ok());
        let no_endpoints = EtcdConfig::new(Vec::<String>::new(), "/p/");
        assert!(no_endpoints
            .validate()
            .unwrap_err()
            .to_string()
            .contains("endpoints"));
        let zero_page = ok.clone().with_page_size(0);
        assert!(zero_page
            .validate()
            .unwrap_err()
            .to_string()
            .contains("page size"));
        let zero_batch = ok.clone().with_batch_size(0);
        assert!(zero_batch
            .validate()
            .unwrap_err()
            .to_string()
            .contains("batch"));
    }
}
