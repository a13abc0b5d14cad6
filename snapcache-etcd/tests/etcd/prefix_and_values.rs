//! What reaches the cache: only the prefix's keys; values of any size and keys of any bytes.

use bytes::Bytes;
use snapcache_etcd::testing::Sent;
use snapcache_etcd::Phase;

use crate::common::*;

/// Keys next to the prefix on both sides ("/a" without the slash, "/a0", "/a.", "/b/...") are
/// written before the list and during the watch; none reaches the cache.
///
/// Seeded bug caught: `prefix_end_all_above` (the range runs from the prefix to the end of the
/// key space).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_outside_the_prefix_never_appear() {
    const OUTSIDE: [&str; 6] = ["/a", "/a0", "/a.", "/b/x", "/`", "/a0/x"];
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    for k in OUTSIDE {
        put(&mut client, k, "outside").await;
    }
    put(&mut client, "/a/", "the prefix itself").await;
    put(&mut client, "/a/x", "in").await;
    let rig = Rig::start(etcd, Setup::new("/a/")).await;
    rig.wait("watching", |s| s.phase == Phase::Watching).await;
    for k in OUTSIDE {
        put(&mut client, k, "outside again").await;
        delete(&mut client, k).await;
    }
    put(&mut client, "/a/y", "in").await;

    let state = rig.converge().await;
    assert_eq!(
        state.keys().cloned().collect::<Vec<_>>(),
        [Bytes::from("/a/"), Bytes::from("/a/x"), Bytes::from("/a/y")]
    );
    for sent in rig.sink.log() {
        if let Sent::Updates(updates) = sent {
            for u in updates {
                assert!(u.key.starts_with(b"/a/"), "{:?} reached the cache", u.key);
            }
        }
    }
}

/// 1 MiB values (six in one page of the list: 6 MiB, over tonic's default 4 MiB message limit,
/// and two more through the watch) and keys that are not UTF-8 (0x00, 0xff, a lone
/// continuation byte) under a binary prefix arrive byte for byte.
///
/// Seeded bugs caught: `default_message_limit` (the list's page is refused), `lossy_keys`
/// (keys through a lossy UTF-8 conversion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_values_and_binary_keys_arrive_byte_for_byte() {
    let prefix: &[u8] = b"\xfe\x00bin/";
    let key = |tail: &[u8]| [prefix, tail].concat();
    let big = |seed: u8| -> Vec<u8> {
        (0..1 << 20)
            .map(|i: u32| (i as u8).wrapping_mul(seed) ^ seed)
            .collect()
    };
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    for i in 0..6u8 {
        put(&mut client, key(&[b'L', i]), big(i + 1)).await;
    }
    for tail in [
        &b"\x00"[..],
        b"\xff\xff",
        b"\x80lone",
        b"caf\xc3\xa9",
        b"\xc3\x28",
    ] {
        put(&mut client, key(tail), tail.to_vec()).await;
    }
    put(&mut client, b"\xfe\x00bio".to_vec(), "outside").await;
    let rig = Rig::start(etcd, Setup::new(Bytes::copy_from_slice(prefix))).await;
    rig.wait("watching", |s| s.phase == Phase::Watching).await;
    put(&mut client, key(b"W\xff"), big(77)).await;
    put(&mut client, key(b"W\x00"), big(78)).await;
    put(&mut client, key(b"\x00"), b"\x00\xff".to_vec()).await;

    let state = rig.converge().await;
    assert_eq!(state.len(), 6 + 5 + 2);
    assert_eq!(state[&Bytes::from(key(b"W\xff"))].len(), 1 << 20);
}
