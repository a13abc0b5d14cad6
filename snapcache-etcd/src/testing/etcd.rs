//! A real etcd server for one test.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What to do when the `etcd` binary is missing.
pub const ETCD_INSTALL_HINT: &str = "the etcd tests need a real etcd server: install Debian's \
    etcd-server package (`apt-get update && apt-get install -y etcd-server`, as .ci/run does), \
    or point ETCD_BIN at an etcd binary";
/// What to do when `etcdctl` is missing.
pub const ETCDCTL_INSTALL_HINT: &str = "the etcd tests need etcdctl: install Debian's \
    etcd-client package (`apt-get install -y etcd-client`, as .ci/run does), or point \
    ETCDCTL_BIN at an etcdctl binary";

/// How long etcd may take to answer after it is started.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// An etcd server on free loopback ports with its own temporary data directory, killed when
/// dropped. Started with progress notifications every 100 ms (etcd's default is 10 minutes),
/// so that tests see them.
#[derive(Debug)]
pub struct EtcdServer {
    child: Option<Child>,
    dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    /// With TLS: the certificates etcd and its clients use.
    tls: Option<Pki>,
}

/// A test CA, etcd's certificate (for `localhost` and 127.0.0.1) and a client certificate
/// (common name `typha`), all PEM.
#[derive(Clone, Debug)]
struct Pki {
    ca: Vec<u8>,
    server: (Vec<u8>, Vec<u8>),
    client: (Vec<u8>, Vec<u8>),
}

impl Pki {
    fn generate() -> Pki {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "snapcache-etcd test CA");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("a CA key"))
            .expect("a CA certificate");
        let leaf = |cn: &str| {
            let mut params =
                CertificateParams::new(vec!["localhost".to_string()]).expect("leaf parameters");
            params
                .subject_alt_names
                .push(rcgen::SanType::IpAddress(Ipv4Addr::LOCALHOST.into()));
            params.distinguished_name.push(DnType::CommonName, cn);
            let key = KeyPair::generate().expect("a key");
            let cert = params.signed_by(&key, &ca).expect("a certificate");
            (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
        };
        Pki {
            server: leaf("etcd"),
            client: leaf("typha"),
            ca: ca.pem().into_bytes(),
        }
    }
}

impl EtcdServer {
    /// Starts etcd and waits (bounded) until it answers. Panics, saying how to install etcd,
    /// if there is no `etcd` binary; panics with etcd's log if it does not come up.
    pub async fn start() -> EtcdServer {
        Self::start_with(None).await
    }

    /// Like [`start`](Self::start), but etcd serves clients over TLS only (`https://`) and
    /// requires a client certificate signed by its test CA; [`tls_config`](Self::tls_config)
    /// has what a client needs.
    pub async fn start_tls() -> EtcdServer {
        Self::start_with(Some(Pki::generate())).await
    }

    async fn start_with(tls: Option<Pki>) -> EtcdServer {
        // Prefer a RAM-backed directory: etcd fsyncs every write.
        let shm = Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            tempfile::Builder::new()
                .prefix("snapcache-etcd-")
                .tempdir_in(shm)
        } else {
            tempfile::Builder::new().prefix("snapcache-etcd-").tempdir()
        }
        .expect("create a temporary directory for etcd");
        let mut server = EtcdServer {
            child: None,
            dir,
            client_port: 0,
            peer_port: 0,
            tls,
        };
        let mut last_error = String::new();
        // Free ports are found by binding and releasing them, so another process can take one
        // in between: try a few times.
        for _ in 0..3 {
            server.client_port = free_port();
            server.peer_port = free_port();
            match server.launch().await {
                Ok(()) => return server,
                Err(e) => {
                    last_error = e;
                    server.kill();
                    let _ = std::fs::remove_dir_all(server.dir.path().join("data"));
                }
            }
        }
        panic!("etcd did not start: {last_error}");
    }

    /// The client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr())
    }

    /// With TLS: the CA and client certificate to reach this server with.
    pub fn tls_config(&self) -> Option<crate::TlsConfig> {
        self.tls.as_ref().map(|pki| crate::TlsConfig {
            ca_pem: Some(pki.ca.clone()),
            identity_pem: Some(pki.client.clone()),
            domain: None,
        })
    }

    fn connect_options(&self) -> Option<etcd_client::ConnectOptions> {
        let tls = self.tls_config()?;
        let config = crate::EtcdConfig::new([self.endpoint()], "").with_tls(tls);
        config.connect_options().ok()
    }

    /// The client address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.client_port))
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// A client connected to this server.
    pub async fn client(&self) -> etcd_client::Client {
        etcd_client::Client::connect([self.endpoint()], self.connect_options())
            .await
            .expect("connect to the test etcd")
    }

    /// Kills the server (SIGKILL: a crash, recovered from its write-ahead log on restart).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same ports and data directory.
    pub async fn restart(&mut self) {
        self.kill();
        if let Err(e) = self.launch().await {
            panic!("etcd did not restart: {e}");
        }
    }

    /// Runs `etcdctl` against this server and returns its standard output; panics with its
    /// standard error if it fails, and with an install hint if there is no `etcdctl`.
    pub fn etcdctl(&self, args: &[&str]) -> Vec<u8> {
        let bin = std::env::var_os("ETCDCTL_BIN").unwrap_or_else(|| "etcdctl".into());
        let out = Command::new(&bin)
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={}", self.endpoint()))
            .arg("--command-timeout=20s")
            .args(self.tls.as_ref().map_or_else(Vec::new, |_| {
                let file = |name: &str| self.dir.path().join(name).display().to_string();
                vec![
                    format!("--cacert={}", file("ca.pem")),
                    format!("--cert={}", file("client.pem")),
                    format!("--key={}", file("client-key.pem")),
                ]
            }))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    panic!("{}: {ETCDCTL_INSTALL_HINT}", bin.to_string_lossy())
                }
                _ => panic!("cannot run etcdctl: {e}"),
            });
        assert!(
            out.status.success(),
            "etcdctl {args:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("etcd.log")
    }

    /// Spawns etcd and waits until it answers a request.
    async fn launch(&mut self) -> Result<(), String> {
        let bin = std::env::var_os("ETCD_BIN").unwrap_or_else(|| "etcd".into());
        let client = format!(
            "{}://127.0.0.1:{}",
            if self.tls.is_some() { "https" } else { "http" },
            self.client_port
        );
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let mut tls_args = Vec::new();
        if let Some(pki) = &self.tls {
            let write = |name: &str, pem: &[u8]| -> Result<String, String> {
                let path = self.dir.path().join(name);
                std::fs::write(&path, pem).map_err(|e| format!("write {name}: {e}"))?;
                Ok(path.display().to_string())
            };
            tls_args = vec![
                format!("--trusted-ca-file={}", write("ca.pem", &pki.ca)?),
                format!("--cert-file={}", write("server.pem", &pki.server.0)?),
                format!("--key-file={}", write("server-key.pem", &pki.server.1)?),
                "--client-cert-auth".to_string(),
            ];
            write("client.pem", &pki.client.0)?;
            write("client-key.pem", &pki.client.1)?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .map_err(|e| format!("cannot open etcd's log: {e}"))?;
        let child = Command::new(&bin)
            .arg("--name=snapcache-test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={client}"))
            .arg(format!("--advertise-client-urls={client}"))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=snapcache-test={peer}"))
            .arg("--initial-cluster-state=new")
            .arg("--experimental-watch-progress-notify-interval=100ms")
            .arg("--logger=zap")
            .args(&tls_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    panic!("{}: {ETCD_INSTALL_HINT}", bin.to_string_lossy())
                }
                _ => panic!("cannot run etcd: {e}"),
            });
        self.child = Some(child);
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                return Err(format!(
                    "etcd exited ({status}); its log:\n{}",
                    self.log_tail()
                ));
            }
            if self.answers().await {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "etcd did not answer within {START_DEADLINE:?}; its log:\n{}",
                    self.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn answers(&self) -> bool {
        let probe = async {
            let mut c = etcd_client::Client::connect([self.endpoint()], self.connect_options())
                .await
                .ok()?;
            c.get("snapcache-test-probe", None).await.ok()
        };
        matches!(
            tokio::time::timeout(Duration::from_secs(2), probe).await,
            Ok(Some(_))
        )
    }

    fn log_tail(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            let _ = f.read_to_string(&mut s);
        }
        let start = s.len().saturating_sub(4000);
        let start = (start..s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        s[start..].to_string()
    }
}

impl Drop for EtcdServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free loopback port")
}
