//! Bad input: every malformed or refused handshake gets a clear gRPC status and message, and
//! the server keeps serving everyone else.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use snapcache_grpc::proto::{sync_response::Message as M, ResumePoint, Start};
use tonic::Code;

fn one(request: Bytes) -> tokio_stream::Once<Bytes> {
    tokio_stream::once(request)
}

/// After each bad request, a good client is still served.
async fn still_serving(addr: std::net::SocketAddr) {
    match raw_sync(addr, one(encoded(&request("default")))).await {
        Ok(Some(r)) => assert!(matches!(r.message, Some(M::Hello(_))), "{r:?}"),
        other => panic!("a good request was not served: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_statuses_and_the_server_is_unaffected() {
    let cache = cache();
    let server = serve(config(), &cache).await;
    let addr = server.local_addr();
    let long = "x".repeat(300);
    let cases: Vec<(&str, Bytes, Code, &str)> = vec![
        (
            "unknown cache",
            encoded(&request("nope")),
            Code::NotFound,
            "unknown cache \"nope\" (this server serves [\"default\"])",
        ),
        (
            "empty cache name",
            encoded(&request("")),
            Code::InvalidArgument,
            "cache_name is empty",
        ),
        (
            "incompatible version",
            encoded(&snapcache_grpc::proto::SyncRequest {
                protocol_version: 2,
                ..request("default")
            }),
            Code::FailedPrecondition,
            "incompatible protocol version 2 (this server speaks version 1)",
        ),
        (
            "no version (another protocol)",
            encoded(&snapcache_grpc::proto::SyncRequest {
                protocol_version: 0,
                ..request("default")
            }),
            Code::FailedPrecondition,
            "incompatible protocol version 0",
        ),
        (
            "a name too long",
            encoded(&snapcache_grpc::proto::SyncRequest {
                client_name: long.clone(),
                ..request("default")
            }),
            Code::InvalidArgument,
            "limited to 256 bytes",
        ),
        (
            "malformed bytes",
            Bytes::from_static(b"\xff\xff\xff\xff\xff not protobuf"),
            Code::InvalidArgument,
            "malformed SyncRequest",
        ),
        (
            "a resume point ahead of the cache",
            encoded(&snapcache_grpc::proto::SyncRequest {
                resume: Some(ResumePoint {
                    cache_id: server.cache_id("default").unwrap(),
                    sequence_number: 1_000_000,
                }),
                ..request("default")
            }),
            Code::InvalidArgument,
            "resume point 1000000 is ahead of this cache instance",
        ),
    ];
    for (what, bytes, code, message) in cases {
        let status = raw_sync(addr, one(bytes)).await.expect_err(what);
        assert_eq!(status.code(), code, "{what}: {status:?}");
        assert!(status.message().contains(message), "{what}: {status:?}");
        assert_eq!(end_reason(&status), "END_REASON_BAD_REQUEST", "{what}");
        still_serving(addr).await;
    }
    // An oversized request (over the 1 MiB inbound cap) is refused by the transport's limit.
    let huge = encoded(&snapcache_grpc::proto::SyncRequest {
        client_name: "y".repeat(2 << 20),
        ..request("default")
    });
    let status = raw_sync(addr, one(huge)).await.expect_err("oversized");
    assert_eq!(status.code(), Code::OutOfRange, "{status:?}");
    assert!(
        status.message().contains("message length too large"),
        "{status:?}"
    );
    still_serving(addr).await;
    // Counted by the handler: not the malformed and oversized ones, which the codec and the
    // transport refuse before it runs.
    assert_eq!(server.stats().connections_refused, 6);
    // The good clients went away: their streams end even though the cache is idle.
    bounded(|| async { (server.stats().connections_active == 0).then_some(()) }).await;
    server.shutdown().await;
}

/// A resume point from another cache instance (a restarted server) is not an error: the
/// client gets a snapshot, and the hello says why it was not resumed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_point_from_another_instance_gets_a_snapshot_and_a_reason() {
    let cache = cache();
    let server = serve(config(), &cache).await;
    let req = snapcache_grpc::proto::SyncRequest {
        resume: Some(ResumePoint {
            cache_id: "0123456789abcdef0123456789abcdef".into(),
            sequence_number: 5,
        }),
        ..request("default")
    };
    let hello = match raw_sync(server.local_addr(), one(encoded(&req))).await {
        Ok(Some(snapcache_grpc::proto::SyncResponse {
            message: Some(M::Hello(h)),
        })) => h,
        other => panic!("{other:?}"),
    };
    assert_eq!(hello.start, Start::Snapshot as i32);
    assert!(
        hello
            .resume_refused
            .contains("from cache instance 0123456789abcdef0123456789abcdef, not this one"),
        "{hello:?}"
    );
    assert_eq!(server.stats().resumes_refused, 1);
    server.shutdown().await;
}

/// A client that opens the stream but never sends its handshake is dropped after the
/// handshake timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_sends_its_handshake_times_out() {
    let cache = cache();
    let config = snapcache_grpc::server::ServerConfig {
        handshake_timeout: Duration::from_millis(200),
        ..config()
    };
    let server = serve(config, &cache).await;
    let never = tokio_stream::pending::<Bytes>();
    let status = tokio::time::timeout(DEADLINE, raw_sync(server.local_addr(), never))
        .await
        .expect("the server gave up on the handshake")
        .expect_err("refused");
    assert_eq!(status.code(), Code::Cancelled, "{status:?}");
    assert!(status.message().contains("Timeout expired"), "{status:?}");
    bounded(|| async { (server.stats().connections_active == 0).then_some(()) }).await;
    still_serving(server.local_addr()).await;
    server.shutdown().await;
}
