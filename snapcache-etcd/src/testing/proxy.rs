//! A TCP proxy on loopback that a test can cut, to take the syncer off etcd while etcd stays
//! up (and can be written to and compacted meanwhile).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards connections from its own loopback port to `upstream`. [`cut`](Self::cut) closes
/// every open connection and refuses new ones until [`restore`](Self::restore). Stops when
/// dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
    /// Bumped by every cut; connection tasks end when it changes.
    cuts: watch::Sender<u64>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `upstream` on the current tokio runtime.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let open = Arc::new(AtomicBool::new(true));
        let (cuts, _) = watch::channel(0u64);
        let accept = tokio::spawn({
            let open = open.clone();
            let cuts = cuts.clone();
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    // Relaxed: a connection accepted just as a cut happens may live until the
                    // cut's signal reaches it, which it does through `cuts`.
                    if !open.load(Ordering::Relaxed) {
                        drop(client);
                        continue;
                    }
                    tokio::spawn(forward(client, upstream, cuts.subscribe()));
                }
            }
        });
        Proxy {
            addr,
            open,
            cuts,
            accept,
        }
    }

    /// The proxy's client URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Closes every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.store(false, Ordering::Relaxed);
        self.cuts.send_modify(|n| *n += 1);
    }

    /// Accepts connections again.
    pub fn restore(&self) {
        self.open.store(true, Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

async fn forward(mut client: TcpStream, upstream: SocketAddr, mut cuts: watch::Receiver<u64>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    cuts.mark_unchanged();
    tokio::select! {
        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
        _ = cuts.changed() => {}
    }
}
