//! Faults: etcd restarted under the watch, a connection lost over a long backlog, a
//! compaction past the watch's revision while the syncer is cut off.

use snapcache::SyncStatus;
use snapcache_etcd::testing::Sent;
use snapcache_etcd::Phase;

use crate::common::*;

/// etcd killed (SIGKILL) and restarted on the same data directory: the syncer re-watches from
/// the revision after the last one it had, and gets every write exactly once, without a resync.
///
/// Seeded bugs caught: `rewatch_from_last_seen` (the replayed revision is taken for a gap: a
/// needless resync, and a duplicate without the gap check), `rewatch_skips_one` (the first
/// write after the restart is lost).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_broken_by_restarting_etcd_resumes_after_the_last_revision_without_losing_an_event()
{
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    load(&mut client, "/r/", 100).await;
    let mut rig = Rig::start(etcd, Setup::new("/r/")).await;
    rig.wait("watching", |s| s.phase == Phase::Watching).await;

    let mut writes = Vec::new();
    for i in 0..30 {
        writes.push(put(&mut client, format!("/r/{:05}", i % 7), format!("a{i}")).await);
    }
    // Ends with a create and a delete: a replay of either would show.
    writes.push(put(&mut client, "/r/new", "n").await);
    writes.extend(delete(&mut client, "/r/00050").await);
    // Kill etcd right away: the syncer may not have all of these yet.
    rig.etcd.restart().await;
    rig.wait("a lost connection noticed", |s| {
        s.phase == Phase::Retrying || s.rewatches > 0
    })
    .await;
    let mut client = rig.etcd.client().await;
    for i in 0..30 {
        writes.push(put(&mut client, format!("/r/{:05}", i % 11), format!("b{i}")).await);
    }
    writes.extend(delete(&mut client, "/r/new").await);

    rig.converge().await;
    let s = rig.syncer.state();
    assert_eq!(
        s.lists, 1,
        "a restart without compaction needs no resync: {s:?}"
    );
    assert!(s.rewatches >= 1, "{s:?}");
    assert_updates_are_the_writes(&rig.updates_after_in_sync(1), &writes, b"/r/");
}

/// The syncer cut off (a TCP proxy closes its connections) while 2,500 revisions are written:
/// on reconnecting, etcd replays them in responses of up to 1,000 revisions, each headed with
/// etcd's current revision. The syncer must count only the events' revisions as seen, and must
/// not take the creation response's header for progress.
///
/// Seeded bugs caught: `header_revision_for_events`, `created_as_progress` (each makes the
/// replay look like a gap: a resync).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_resumes_over_a_backlog_of_2500_revisions_counting_only_event_revisions()
{
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    load(&mut client, "/b/", 100).await;
    let rig = Rig::start(etcd, Setup::new("/b/").via_proxy()).await;
    rig.wait("watching", |s| s.phase == Phase::Watching).await;
    rig.proxy().cut();
    rig.wait("the cut noticed", |s| s.phase == Phase::Retrying)
        .await;

    // 2,500 single-key revisions, from 5 writers at once (each write is its own revision).
    let mut tasks = Vec::new();
    for w in 0..5 {
        let mut client = rig.etcd.client().await;
        tasks.push(tokio::spawn(async move {
            let mut writes = Vec::new();
            for i in 0..500 {
                writes.push(
                    put(
                        &mut client,
                        format!("/b/{:05}", (w * 500 + i) % 150),
                        format!("{w}.{i}"),
                    )
                    .await,
                );
            }
            writes
        }));
    }
    let mut writes = Vec::new();
    for t in tasks {
        writes.extend(t.await.unwrap());
    }
    writes.sort_by_key(|w| w.revision);
    // Writes outside the prefix too, so that etcd's revision runs ahead of the prefix's.
    for i in 0..20 {
        put(&mut client, format!("/other/{i}"), "x").await;
    }
    rig.proxy().restore();

    rig.converge().await;
    let s = rig.syncer.state();
    assert_eq!(
        s.lists, 1,
        "a reconnect over a backlog needs no resync: {s:?}"
    );
    assert!(s.rewatches >= 1, "{s:?}");
    assert_updates_are_the_writes(&rig.updates_after_in_sync(1), &writes, b"/b/");
}

/// While the syncer is cut off, keys are deleted, created and changed, and etcd compacts past
/// the syncer's revision. On reconnecting the watch is refused (compacted): the syncer resyncs,
/// sending `ResyncInProgress`, the new list, a deletion for each key the cache holds that the
/// list lacks, and only then `InSync`.
///
/// Seeded bugs caught: `no_resync_deletions` (deleted keys stay in the cache),
/// `insync_before_deletions` (InSync while the cache still holds deleted keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_past_the_watch_while_disconnected_resyncs_with_deletions() {
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    load(&mut client, "/c/", 100).await;
    let rig = Rig::start(etcd, Setup::new("/c/").via_proxy()).await;
    rig.converge().await;
    rig.proxy().cut();
    rig.wait("the cut noticed", |s| s.phase == Phase::Retrying)
        .await;

    let mut deleted = Vec::new();
    for i in 0..10 {
        deleted.push(
            delete(&mut client, format!("/c/{:05}", i * 3))
                .await
                .unwrap()
                .key,
        );
    }
    for i in 0..10 {
        put(&mut client, format!("/c/new{i}"), "n").await;
        put(&mut client, format!("/c/{:05}", 50 + i), "changed").await;
    }
    let at = put(&mut client, "/c/last", "l").await.revision;
    client
        .compact(
            at,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
        .expect("compact");
    rig.proxy().restore();

    rig.wait("the resync", |s| s.lists == 2 && s.phase == Phase::Watching)
        .await;
    rig.converge().await;
    let s = rig.syncer.state();
    assert_eq!(s.lists, 2, "{s:?}");
    use SyncStatus::*;
    assert_eq!(
        rig.sink.statuses(),
        [
            WaitForDatastore,
            ResyncInProgress,
            InSync,
            ResyncInProgress,
            InSync
        ]
    );
    // The resync sent a deletion for each key deleted while cut off, between its
    // ResyncInProgress and its InSync (the cache would hide a late InSync when both land in
    // one batch, so this is checked on what the syncer sent).
    let mut deletions: Vec<_> = rig
        .sink
        .log()
        .into_iter()
        .skip_while(|s| *s != Sent::Status(InSync))
        .skip_while(|s| *s != Sent::Status(ResyncInProgress))
        .take_while(|s| *s != Sent::Status(InSync))
        .flat_map(|s| match s {
            Sent::Updates(u) => u,
            _ => Vec::new(),
        })
        .filter(|u| u.value.is_none())
        .map(|u| u.key)
        .collect();
    deletions.sort();
    assert_eq!(
        deletions, deleted,
        "the resync's deletions before its InSync"
    );
    // The cache said InSync again only once it equalled etcd at the new list's revision.
    let last = rig.recorder.in_sync_transitions().pop().unwrap();
    assert_snapshot_is_a_revision(&rig, &last, s.list_revision, &mut client).await;
}

/// etcd 3.4.23 (Debian bookworm's) drops a deletion at the compaction revision from its history
/// (etcd issue 18089). The syncer, cut off at revision `S`, misses a deletion at `S + 1`, and
/// etcd is compacted at exactly `S + 1`. A watch from `S + 1` would be accepted and never
/// deliver that deletion; the syncer's watch from `S` is refused as compacted, and the resync
/// deletes the key.
///
/// Seeded bug caught: `watch_after_last_seen` (watching from `S + 1`, as the design
/// said: the key stays in the cache for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_at_exactly_the_compaction_revision_is_not_lost() {
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    load(&mut client, "/x/", 10).await;
    let rig = Rig::start(etcd, Setup::new("/x/").via_proxy()).await;
    rig.converge().await;
    let s = rig.syncer.state().revision;
    rig.proxy().cut();
    rig.wait("the cut noticed", |s| s.phase == Phase::Retrying)
        .await;
    let deleted = delete(&mut client, "/x/00003").await.unwrap();
    assert_eq!(deleted.revision, s + 1, "nothing else was written");
    client
        .compact(
            deleted.revision,
            Some(etcd_client::CompactionOptions::new().with_physical()),
        )
        .await
        .expect("compact");
    rig.proxy().restore();

    let state = rig.converge().await;
    assert_eq!(state.len(), 9);
    assert_eq!(
        rig.syncer.state().lists,
        2,
        "the watch was refused, so the syncer relisted"
    );
}
