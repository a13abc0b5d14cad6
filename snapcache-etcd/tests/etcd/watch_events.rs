//! Watch events: puts, overwrites, deletes, deletes of absent keys, multi-key revisions.

use snapcache::UpdateType;
use snapcache_etcd::Phase;

use crate::common::*;

/// Each kind of change reaches the cache as the right update, once, in revision order: a put of
/// a new key is `New`, an overwrite `Updated` (also with an unchanged value, which the cache then
/// skips), a delete a deletion; a delete of an absent key changes nothing in etcd and sends
/// nothing; a transaction's puts and a prefix delete share one revision.
///
/// Seeded bug caught: `drop_deletes` (delete events dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn puts_overwrites_deletes_and_deletes_of_absent_keys_arrive_once_in_order() {
    let etcd = start_etcd().await;
    let mut client = etcd.client().await;
    put(&mut client, "/w/existing", "0").await;
    let rig = Rig::start(etcd, Setup::new("/w/")).await;
    rig.wait("watching", |s| s.phase == Phase::Watching).await;

    let mut writes = Vec::new();
    writes.push(put(&mut client, "/w/a", "1").await); // New
    writes.push(put(&mut client, "/w/a", "2").await); // Updated
    writes.push(put(&mut client, "/w/a", "2").await); // Updated, same value
    writes.push(put(&mut client, "/w/existing", "1").await); // Updated (listed key)
    assert!(
        delete(&mut client, "/w/absent").await.is_none(),
        "etcd deletes nothing"
    );
    writes.extend(delete(&mut client, "/w/a").await); // Deleted
    writes.extend(delete(&mut client, "/w/existing").await); // Deleted (listed key)
    writes.push(put(&mut client, "/w/a", "3").await); // New again
    let kvs: Vec<(Vec<u8>, Vec<u8>)> = (0..5)
        .map(|i| (format!("/w/t{i}").into_bytes(), b"t".to_vec()))
        .collect();
    writes.extend(put_all(&mut client, &kvs).await); // five New at one revision
    writes.extend(delete_prefix(&mut client, b"/w/t").await); // five Deleted at one revision
    assert_eq!(writes.len(), 17);

    let state = rig.converge().await;
    assert_eq!(state.len(), 1);
    let updates = rig.updates_after_in_sync(1);
    assert_updates_are_the_writes(&updates, &writes, b"/w/");
    use UpdateType::*;
    let types: Vec<UpdateType> = updates.iter().map(|u| u.update_type).collect();
    let mut want = vec![New, Updated, Updated, Updated, Deleted, Deleted, New];
    want.extend([New; 5]);
    want.extend([Deleted; 5]);
    assert_eq!(types, want);
    let s = rig.syncer.state();
    assert_eq!((s.lists, s.rewatches, s.keys), (1, 0, 1), "{s:?}");
    // The unchanged overwrite was skipped by the cache: one breadcrumb delta fewer than updates.
    let deltas: usize = rig.recorded_crumbs().iter().map(|c| c.deltas.len()).sum();
    assert_eq!(
        deltas,
        1 + updates.len() - 1,
        "the listed key, then every update but the no-op"
    );
}
