//! TLS and mutual TLS (rustls): certificates are generated here with rcgen. Refused: no client
//! certificate, one signed by another CA, a wrong name. Served: the right one (by CN, or by
//! URI SAN).

mod common;

use std::time::Duration;

use common::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
    SanType,
};
use snapcache_grpc::client::{ClientTls, SyncClient};
use snapcache_grpc::server::{ClientNames, Server, ServerConfig, ServerHandle, ServerTls};

fn ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

/// A certificate for `localhost` with common name `cn` and the given URI SANs, and its key.
fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, cn: &str, uris: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    for uri in uris {
        params
            .subject_alt_names
            .push(SanType::URI(uri.to_string().try_into().unwrap()));
    }
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, ca).unwrap();
    (cert.pem().into_bytes(), key.serialize_pem().into_bytes())
}

struct Pki {
    ca: CertifiedIssuer<'static, KeyPair>,
    other_ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    fn new() -> Self {
        Pki {
            ca: ca("snapcache test CA"),
            other_ca: ca("another CA"),
        }
    }

    async fn server(&self, cache: &snapcache::Cache, names: ClientNames) -> ServerHandle {
        let (cert_pem, key_pem) = leaf(&self.ca, "server", &[]);
        let config = ServerConfig {
            tls: Some(ServerTls {
                cert_pem,
                key_pem,
                client_ca_pem: Some(self.ca.pem().into_bytes()),
                client_names: names,
            }),
            ..config()
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server::new(config)
            .cache("default", cache.clone())
            .start(listener)
            .unwrap()
    }

    fn client(&self, server: &ServerHandle, identity: Option<(Vec<u8>, Vec<u8>)>) -> SyncClient {
        SyncClient::builder()
            .server(server.local_addr().to_string())
            .tls(ClientTls {
                ca_pem: self.ca.pem().into_bytes(),
                identity,
                server_name: Some("localhost".into()),
            })
            .backoff(Duration::from_millis(50), Duration::from_millis(200))
            .spawn(())
    }
}

/// Waits until the client has failed at least twice, and checks it never connected.
async fn refused(c: &SyncClient) -> String {
    let s = bounded(|| async {
        let s = c.state();
        (s.last_error.is_some() && !s.connected).then_some(s)
    })
    .await;
    assert_eq!(s.connections, 0, "{s:?}");
    s.last_error.unwrap()
}

fn felix() -> ClientNames {
    ClientNames {
        common_name: Some("felix".into()),
        uri_san: Some("spiffe://cluster.local/ns/calico/sa/felix".into()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_right_client_certificate_is_served() {
    let pki = Pki::new();
    let cache = cache();
    churn(&cache, "k", 100, 10);
    in_sync(&cache).await;
    let server = pki.server(&cache, felix()).await;

    let by_cn = pki.client(&server, Some(leaf(&pki.ca, "felix", &[])));
    let by_uri = pki.client(
        &server,
        Some(leaf(
            &pki.ca,
            "node-7",
            &["spiffe://cluster.local/ns/calico/sa/felix"],
        )),
    );
    for c in [&by_cn, &by_uri] {
        converged(c, &cache).await;
        assert_eq!(c.map().unwrap(), state(&cache));
    }

    let anonymous = pki.client(&server, None);
    let why = refused(&anonymous).await;
    assert!(why.contains("refused the client certificate"), "{why}");
    let forged = pki.client(&server, Some(leaf(&pki.other_ca, "felix", &[])));
    refused(&forged).await;
    // Plain TCP to a TLS server fails too.
    let plain = client(&server).spawn(());
    refused(&plain).await;
    assert_eq!(server.stats().connections_accepted, 2);
    server.shutdown().await;
}

/// Caught bug: `no_name_check` (any certificate from the CA is served).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_name_is_refused() {
    let pki = Pki::new();
    let cache = cache();
    in_sync(&cache).await;
    let server = pki.server(&cache, felix()).await;
    let wrong = pki.client(
        &server,
        Some(leaf(&pki.ca, "bird", &["spiffe://elsewhere"])),
    );
    let why = refused(&wrong).await;
    assert!(why.contains("END_REASON_PERMISSION_DENIED"), "{why}");
    assert!(why.contains("CN [\"bird\"]"), "{why}");
    assert!(
        why.contains("do not include the required CN \"felix\" or URI SAN"),
        "{why}"
    );
    assert_eq!(server.stats().connections_accepted, 0);
    server.shutdown().await;
}
