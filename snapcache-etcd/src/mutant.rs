//! Seeded bugs, for showing that each test can fail (see `mutants.sh` and VERIFICATION.md).
//!
//! In debug builds (which is what `cargo test` builds) the environment variable
//! `SNAPCACHE_ETCD_MUTANT` may name one of these bugs; the syncer then behaves wrongly in that
//! one way. Release builds compile every check to `false`. An unknown name panics, so that a
//! misspelt mutant cannot pass for a caught one.

/// One seeded bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mutant {
    /// Watch from the revision after the last one seen (instead of from it, replaying it): a
    /// deletion at the compaction revision is then lost (etcd issue 18089).
    WatchAfterLastSeen,
    /// The replayed events of a watch's start revision are not skipped.
    NoReplaySkip,
    /// Take a response's header revision as seen even when it carries events.
    HeaderRevisionForEvents,
    /// Take the "watch created" response's header revision as progress.
    CreatedAsProgress,
    /// A resync sends no deletions for the keys the new list lacks.
    NoResyncDeletions,
    /// `InSync` is sent when the list starts instead of when it has been fed.
    InSyncBeforeList,
    /// `InSync` is sent after a list's keys but before its deletions.
    InSyncBeforeDeletions,
    /// Pages after the first are read at the newest revision instead of the list's.
    PagesAtLatest,
    /// The prefix's range has no upper bound (every key from the prefix on).
    PrefixEndAllAbove,
    /// Delete events are dropped.
    DropDeletes,
    /// etcd responses are limited to tonic's default 4 MiB.
    DefaultMessageLimit,
    /// Keys go through a lossy UTF-8 conversion.
    LossyKeys,
    /// Re-watch from two past the last revision seen (skips one revision).
    RewatchSkipsOne,
    /// The configured user and password are not sent.
    NoCredentials,
    /// The configured TLS CA and client certificate are not used.
    NoTlsConfig,
}

const ALL: [(Mutant, &str); 15] = [
    (Mutant::WatchAfterLastSeen, "watch_after_last_seen"),
    (Mutant::NoReplaySkip, "no_replay_skip"),
    (
        Mutant::HeaderRevisionForEvents,
        "header_revision_for_events",
    ),
    (Mutant::CreatedAsProgress, "created_as_progress"),
    (Mutant::NoResyncDeletions, "no_resync_deletions"),
    (Mutant::InSyncBeforeList, "insync_before_list"),
    (Mutant::InSyncBeforeDeletions, "insync_before_deletions"),
    (Mutant::PagesAtLatest, "pages_at_latest"),
    (Mutant::PrefixEndAllAbove, "prefix_end_all_above"),
    (Mutant::DropDeletes, "drop_deletes"),
    (Mutant::DefaultMessageLimit, "default_message_limit"),
    (Mutant::LossyKeys, "lossy_keys"),
    (Mutant::RewatchSkipsOne, "rewatch_skips_one"),
    (Mutant::NoCredentials, "no_credentials"),
    (Mutant::NoTlsConfig, "no_tls_config"),
];

/// Whether `m` is the seeded bug in force.
#[cfg(debug_assertions)]
pub(crate) fn active(m: Mutant) -> bool {
    static ACTIVE: std::sync::OnceLock<Option<Mutant>> = std::sync::OnceLock::new();
    let active = ACTIVE.get_or_init(|| {
        let name = std::env::var("SNAPCACHE_ETCD_MUTANT").ok()?;
        if name.is_empty() {
            return None;
        }
        match ALL.iter().find(|(_, n)| *n == name) {
            Some((m, _)) => Some(*m),
            None => panic!(
                "SNAPCACHE_ETCD_MUTANT={name} names no seeded bug; known: {:?}",
                ALL.map(|(_, n)| n)
            ),
        }
    });
    *active == Some(m)
}

/// Whether `m` is the seeded bug in force: never, in a release build.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub(crate) fn active(_: Mutant) -> bool {
    let _ = ALL;
    false
}
