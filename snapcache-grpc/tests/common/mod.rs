//! Helpers shared by the integration tests: a server on 127.0.0.1, clients with short
//! timeouts, bounded waits.
#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use snapcache::{Cache, Config, SyncStatus, Update, UpdateType};
use snapcache_grpc::client::{SyncClient, SyncClientBuilder};
use snapcache_grpc::server::{Server, ServerConfig, ServerHandle};

/// Every wait in the tests ends by this deadline (a failing test fails, it does not hang).
pub const DEADLINE: Duration = Duration::from_secs(30);

/// A cache with small breadcrumbs (so that tests make many).
pub fn cache() -> Cache {
    Cache::new(Config {
        max_batch_size: 10,
        ..Default::default()
    })
}

/// Server settings with short timers for tests.
pub fn config() -> ServerConfig {
    ServerConfig {
        liveness_check_interval: Duration::from_millis(20),
        shutdown_timeout: Duration::from_secs(2),
        keepalive_interval: Duration::from_secs(1),
        keepalive_timeout: Duration::from_secs(2),
        ..Default::default()
    }
}

/// Starts a server for `cache` (as "default") on an ephemeral port of 127.0.0.1.
pub async fn serve(config: ServerConfig, cache: &Cache) -> ServerHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    Server::new(config)
        .cache("default", cache.clone())
        .start(listener)
        .expect("the server starts")
}

/// Starts a server for `cache` on a given address (to restart one on the same port).
pub async fn serve_on(
    config: ServerConfig,
    cache: &Cache,
    addr: std::net::SocketAddr,
) -> ServerHandle {
    // The old listener may take a moment to be released.
    let listener = bounded(|| async { tokio::net::TcpListener::bind(addr).await.ok() }).await;
    Server::new(config)
        .cache("default", cache.clone())
        .start(listener)
        .expect("the server starts")
}

/// A client builder for `server` with short backoff.
pub fn client(server: &ServerHandle) -> SyncClientBuilder {
    client_at(server.local_addr())
}

/// A client builder for a server at `addr` (a proxy, say) with short backoff.
pub fn client_at(addr: std::net::SocketAddr) -> SyncClientBuilder {
    SyncClient::builder()
        .server(addr.to_string())
        .cache_name("default")
        .client_name("test")
        .backoff(Duration::from_millis(20), Duration::from_millis(200))
        .connect_timeout(Duration::from_secs(5))
}

/// Polls `f` every 10 ms until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn bounded<T, F, Fut>(mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(t) = f().await {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not met within {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (bounded) until `client` is in sync at the cache's newest breadcrumb.
pub async fn converged(client: &SyncClient, cache: &Cache) {
    let target = cache.current_breadcrumb().sequence_number;
    client
        .wait_until(
            |s| s.in_sync && s.last_sequence_number >= Some(target),
            DEADLINE,
        )
        .await
        .expect("the client converges");
}

/// Waits (bounded) until `client` is in sync at the cache's newest breadcrumb, streaming from
/// `server`'s instance of the cache (not an old server's).
pub async fn converged_to(client: &SyncClient, cache: &Cache, server: &ServerHandle) {
    let target = cache.current_breadcrumb().sequence_number;
    let id = server.cache_id("default");
    client
        .wait_until(
            |s| s.in_sync && s.cache_id == id && s.last_sequence_number >= Some(target),
            DEADLINE,
        )
        .await
        .expect("the client converges");
}

/// The cache's current state as a map (key to value).
pub fn state(cache: &Cache) -> HashMap<Bytes, Bytes> {
    cache
        .current_breadcrumb()
        .kvs
        .iter()
        .map(|(k, u)| (k.clone(), u.value.clone().unwrap()))
        .collect()
}

/// Sends `n` updates of keys `prefix<i % keys>` in blocks of 10.
pub fn churn(cache: &Cache, prefix: &str, n: usize, keys: usize) {
    let updates: Vec<Update> = (0..n)
        .map(|i| {
            Update::set(
                format!("{prefix}{}", i % keys),
                format!("v{i}"),
                UpdateType::Updated,
            )
        })
        .collect();
    for block in updates.chunks(10) {
        cache.on_updates(block.to_vec()).unwrap();
    }
}

/// Sends `InSync` and waits until the cache has published it.
pub async fn in_sync(cache: &Cache) {
    cache.on_status_updated(SyncStatus::InSync).unwrap();
    bounded(|| async {
        (cache.current_breadcrumb().sync_status == SyncStatus::InSync).then_some(())
    })
    .await;
}

/// Waits (bounded) until the cache has published everything sent so far: a marker update
/// (key `~settled`, a new value each time) goes through the queue behind it, then `InSync`.
pub async fn settled(cache: &Cache) {
    static ROUND: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let round = ROUND
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        .to_string();
    cache
        .on_updates(vec![Update::set(
            "~settled",
            round.clone(),
            UpdateType::Updated,
        )])
        .unwrap();
    cache.on_status_updated(SyncStatus::InSync).unwrap();
    bounded(|| async {
        let crumb = cache.current_breadcrumb();
        let marked = crumb
            .kvs
            .get(&Bytes::from_static(b"~settled"))
            .is_some_and(|u| u.value.as_deref() == Some(round.as_bytes()));
        (marked && crumb.sync_status == SyncStatus::InSync).then_some(())
    })
    .await;
}

/// A TCP proxy on 127.0.0.1 in front of a server: it can cut every connection through it (the
/// network drops the stream) or black-hole them (nothing gets through, in either direction, and
/// the sockets stay open; what was sent is delivered once the hole closes, as TCP would).
pub struct Proxy {
    pub addr: std::net::SocketAddr,
    cut: tokio::sync::watch::Sender<u64>,
    black_hole: tokio::sync::watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (cut, cut_rx) = tokio::sync::watch::channel(0u64);
        let (black_hole, hole_rx) = tokio::sync::watch::channel(false);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                    continue;
                };
                let mut cut = cut_rx.clone();
                cut.mark_unchanged();
                let hole = hole_rx.clone();
                tokio::spawn(async move {
                    let (ri, wi) = inbound.into_split();
                    let (ro, wo) = outbound.into_split();
                    let pump =
                        |mut r: tokio::net::tcp::OwnedReadHalf,
                         mut w: tokio::net::tcp::OwnedWriteHalf,
                         mut hole: tokio::sync::watch::Receiver<bool>| async move {
                            use tokio::io::{AsyncReadExt, AsyncWriteExt};
                            let mut buf = vec![0u8; 64 << 10];
                            loop {
                                // While black-holed, nothing is read: the bytes wait in the
                                // kernel's buffers and the peer hears nothing.
                                if hole.wait_for(|h| !*h).await.is_err() {
                                    return;
                                }
                                let n = match r.read(&mut buf).await {
                                    Ok(0) | Err(_) => return,
                                    Ok(n) => n,
                                };
                                if hole.wait_for(|h| !*h).await.is_err() {
                                    return;
                                }
                                if w.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        };
                    tokio::select! {
                        _ = pump(ri, wo, hole.clone()) => {}
                        _ = pump(ro, wi, hole) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            addr,
            cut,
            black_hole,
            accept,
        }
    }

    /// Closes every connection through the proxy now (new ones still go through).
    pub fn cut(&self) {
        self.cut.send_modify(|g| *g += 1);
    }

    /// Starts or stops holding every byte back (the connections stay open).
    pub fn black_hole(&self, on: bool) {
        self.black_hole.send_replace(on);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// A client-side codec that sends raw bytes as the request (to send malformed ones) and
/// decodes `SyncResponse`s.
#[derive(Default)]
pub struct RawCodec;

pub struct RawEncoder;
pub struct ResponseDecoder;

impl tonic::codec::Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for ResponseDecoder {
    type Item = snapcache_grpc::proto::SyncResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Self::Item>, tonic::Status> {
        use prost::Message;
        Self::Item::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl tonic::codec::Codec for RawCodec {
    type Encode = Bytes;
    type Decode = snapcache_grpc::proto::SyncResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

/// Opens the Sync RPC with `messages` as the request body (raw bytes, several or none) and
/// returns the first response message or the status.
pub async fn raw_sync(
    addr: std::net::SocketAddr,
    messages: impl futures_core::Stream<Item = Bytes> + Send + 'static,
) -> Result<Option<snapcache_grpc::proto::SyncResponse>, tonic::Status> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel).max_encoding_message_size(usize::MAX);
    grpc.ready().await.unwrap();
    let path = tonic::codegen::http::uri::PathAndQuery::from_static("/snapcache.v1.Sync/Sync");
    let mut stream = grpc
        .streaming(tonic::Request::new(messages), path, RawCodec)
        .await?
        .into_inner();
    stream.message().await
}

/// A well-formed request.
pub fn request(cache_name: &str) -> snapcache_grpc::proto::SyncRequest {
    snapcache_grpc::proto::SyncRequest {
        client_name: "test".into(),
        client_version: "0".into(),
        protocol_version: snapcache_grpc::PROTOCOL_VERSION,
        cache_name: cache_name.into(),
        ..Default::default()
    }
}

/// The request, encoded.
pub fn encoded(request: &snapcache_grpc::proto::SyncRequest) -> Bytes {
    use prost::Message;
    request.encode_to_vec().into()
}

/// The end reason the server put in a status's metadata.
pub fn end_reason(status: &tonic::Status) -> String {
    status
        .metadata()
        .get(snapcache_grpc::END_REASON_METADATA_KEY)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// A client that reads the hello and then stops reading (its stream is held, never polled).
pub async fn stalled_client(
    addr: std::net::SocketAddr,
) -> tonic::Streaming<snapcache_grpc::proto::SyncResponse> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = snapcache_grpc::proto::sync_client::SyncClient::new(channel);
    let mut stream = grpc.sync(request("default")).await.unwrap().into_inner();
    let hello = stream.message().await.unwrap();
    assert!(hello.is_some());
    stream
}
