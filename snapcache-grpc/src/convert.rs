//! Conversions between the cache's types (`snapcache`) and the protocol's (`proto`).

use std::time::Duration;

use snapcache::{SyncStatus, Update, UpdateType};

use crate::proto;

/// The wire form of an update.
pub(crate) fn kv_from_update(u: &Update) -> proto::Kv {
    proto::Kv {
        key: u.key.clone(),
        value: u.value.clone(),
        revision: u.revision.clone(),
        ttl_nanos: u.ttl.map(|t| t.as_nanos().min(u64::MAX as u128) as u64),
        update_type: update_type_to_proto(u.update_type) as i32,
    }
}

/// The cache's form of a wire key/value. Unknown enum values (from a newer server) read as
/// `Unknown`, which changes nothing about how the update applies.
pub(crate) fn update_from_kv(kv: proto::Kv) -> Update {
    Update {
        key: kv.key,
        value: kv.value,
        revision: kv.revision,
        ttl: kv.ttl_nanos.map(Duration::from_nanos),
        update_type: match proto::UpdateType::try_from(kv.update_type) {
            Ok(proto::UpdateType::New) => UpdateType::New,
            Ok(proto::UpdateType::Updated) => UpdateType::Updated,
            Ok(proto::UpdateType::Deleted) => UpdateType::Deleted,
            _ => UpdateType::Unknown,
        },
    }
}

fn update_type_to_proto(t: UpdateType) -> proto::UpdateType {
    match t {
        UpdateType::Unknown => proto::UpdateType::Unknown,
        UpdateType::New => proto::UpdateType::New,
        UpdateType::Updated => proto::UpdateType::Updated,
        UpdateType::Deleted => proto::UpdateType::Deleted,
    }
}

pub(crate) fn status_to_proto(s: SyncStatus) -> proto::SyncStatus {
    match s {
        SyncStatus::WaitForDatastore => proto::SyncStatus::WaitForDatastore,
        SyncStatus::ResyncInProgress => proto::SyncStatus::ResyncInProgress,
        SyncStatus::InSync => proto::SyncStatus::InSync,
    }
}

/// The cache's form of a wire status; `None` for a value this version does not know.
pub(crate) fn status_from_proto(s: i32) -> Option<SyncStatus> {
    match proto::SyncStatus::try_from(s).ok()? {
        proto::SyncStatus::WaitForDatastore => Some(SyncStatus::WaitForDatastore),
        proto::SyncStatus::ResyncInProgress => Some(SyncStatus::ResyncInProgress),
        proto::SyncStatus::InSync => Some(SyncStatus::InSync),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_survive_the_round_trip() {
        let updates = [
            Update::set("k", "v", UpdateType::New)
                .with_revision("7")
                .with_ttl(Duration::from_millis(1500)),
            Update::set("k", "", UpdateType::Updated),
            Update::delete("gone"),
            Update::default(),
        ];
        for u in updates {
            assert_eq!(update_from_kv(kv_from_update(&u)), u);
        }
        for s in [
            SyncStatus::WaitForDatastore,
            SyncStatus::ResyncInProgress,
            SyncStatus::InSync,
        ] {
            assert_eq!(status_from_proto(status_to_proto(s) as i32), Some(s));
        }
        assert_eq!(status_from_proto(99), None);
    }
}
