//! Generates the protocol's Rust code from `proto/snapcache.proto` with a pure-Rust protobuf
//! compiler (`protox`): no system `protoc` needed.
//!
//! * Messages and the client come from `tonic-prost-build` (`snapcache.v1.rs`).
//! * The server comes from `tonic-build`'s manual service builder (`snapcache.v1.Sync.rs`), so
//!   that its responses can be pre-encoded bytes ([`crate::wire::Frame`]) sent through our own
//!   codec: each breadcrumb is encoded once, whatever the number of clients.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/snapcache.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_client(true)
        .bytes(".")
        .compile_fds(fds)?;

    let sync = tonic_build::manual::Service::builder()
        .name("Sync")
        .package("snapcache.v1")
        .comment(
            "Streams a cache: a snapshot (or, on resume, only what was missed), then every change.",
        )
        .method(
            tonic_build::manual::Method::builder()
                .name("sync")
                .route_name("Sync")
                .input_type("crate::proto::SyncRequest")
                .output_type("crate::wire::Frame")
                .codec_path("crate::codec::ServerCodec")
                .server_streaming()
                .build(),
        )
        .build();
    tonic_build::manual::Builder::new()
        .build_client(false)
        .build_server(true)
        .compile(&[sync]);
    Ok(())
}
