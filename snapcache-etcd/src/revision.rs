//! Where a watch stands: the last revision whose changes the cache has, where a (re-)watch
//! starts, and how each watch response moves it.
//!
//! "Last revision seen" is the revision `S` such that the cache holds every change to the
//! prefix's keys up to and including `S`, and none after.
//!
//! * A list at revision `R` sets `S = R`.
//! * A response with events sets `S` to its last event's mod revision. Not to the header's
//!   revision: a watcher catching up on history gets responses of at most 1,000 revisions
//!   each, every one with the header of the store's *current* revision, so taking the header
//!   would skip everything still to come.
//! * A progress notification (no events, not the creation, not a cancellation) promises that
//!   every change up to its header revision has been sent: `S` becomes that revision, if it is
//!   higher (etcd may repeat the last event's revision, and a member that is behind may report
//!   an older one: etcd issues 15220 and 20221).
//! * The "created" response carries the current revision too, but the watcher may still be
//!   catching up from its start revision: it says nothing about progress.
//! * etcd never splits one revision's events across responses (unless `fragment` is asked,
//!   and this syncer does not ask), so after a response the whole of `S` has been seen.
//!
//! # Why a watch starts at `S`, not `S + 1`
//!
//! A watch from `S + 1` is what the change feed calls for, and etcd accepts it whenever
//! `S + 1` is not below the compaction revision `C`. But etcd before 3.4.34 / 3.5.15 (so
//! Debian bookworm's 3.4.23) drops a deletion *at* the compaction revision from the history
//! (etcd issue 18089: the tombstone at `C` is compacted away with everything below `C`). With
//! `C = S + 1` the watch from `S + 1` is accepted and silently misses that deletion, and the
//! cache keeps the key for good. A watch from `S` is accepted only if `C <= S`, when
//! everything after `S` is intact; otherwise etcd answers "compacted" and the syncer resyncs.
//! The events at `S` it replays first are already in the cache and are skipped.
//!
//! Anything else is a *gap*: an event below the start, at or below `S` once past the replay,
//! or revisions going backwards within a response. The cache's state can then no longer be
//! trusted to match any revision, and the syncer resyncs.

use crate::mutant::{self, Mutant};

/// What a watch response tells the syncer, reduced to what decides the revision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResponseView {
    pub(crate) created: bool,
    pub(crate) canceled: bool,
    pub(crate) compact_revision: i64,
    pub(crate) header_revision: i64,
    /// The events' mod revisions, in order.
    pub(crate) revisions: Vec<i64>,
}

impl ResponseView {
    pub(crate) fn of(r: &etcd_client::WatchResponse) -> Self {
        ResponseView {
            created: r.created(),
            canceled: r.canceled(),
            compact_revision: r.compact_revision(),
            header_revision: r.header().map_or(0, |h| h.revision()),
            revisions: r
                .events()
                .iter()
                .map(|e| e.kv().map_or(0, |kv| kv.mod_revision()))
                .collect(),
        }
    }
}

/// What to do with a response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The watch is open; nothing to apply.
    Created,
    /// Apply the events after the first `skip` (a replay of the start revision); the position
    /// has moved to the last one.
    Apply {
        /// Leading events at the start revision, already in the cache.
        skip: usize,
    },
    /// A progress notification (the position may have moved).
    Progress,
    /// The start revision has been compacted away (at the given revision): resync.
    Compacted(i64),
    /// etcd cancelled the watch for another reason.
    Canceled,
    /// The events do not follow the position: resync. The message says how.
    Gap(String),
}

/// The last revision seen, and the replay expected at the start of a watch (see the module
/// docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    last_seen: i64,
    /// The revision the current watch started at, while its events may still be replayed.
    replay: Option<i64>,
}

impl Position {
    /// After a list at `revision`.
    pub(crate) fn listed_at(revision: i64) -> Self {
        Position {
            last_seen: revision,
            replay: None,
        }
    }

    /// The last revision seen.
    pub(crate) fn last_seen(&self) -> i64 {
        self.last_seen
    }

    /// Starts a (re-)watch: returns its start revision, the last revision seen, whose events
    /// it will replay and [`judge`](Self::judge) will skip.
    pub(crate) fn start_watch(&mut self) -> i64 {
        // The seeded bugs watch from later revisions, with nothing to skip.
        if mutant::active(Mutant::WatchAfterLastSeen) {
            self.replay = None;
            return self.last_seen + 1;
        }
        if mutant::active(Mutant::RewatchSkipsOne) {
            self.replay = None;
            return self.last_seen + 2;
        }
        self.replay = Some(self.last_seen);
        self.last_seen
    }

    /// Judges a response and moves the position past what it delivers.
    pub(crate) fn judge(&mut self, r: &ResponseView) -> Verdict {
        if r.compact_revision != 0 {
            return Verdict::Compacted(r.compact_revision);
        }
        if r.canceled {
            return Verdict::Canceled;
        }
        if r.revisions.is_empty() {
            if r.created {
                if mutant::active(Mutant::CreatedAsProgress) {
                    self.last_seen = self.last_seen.max(r.header_revision);
                }
                return Verdict::Created;
            }
            self.last_seen = self.last_seen.max(r.header_revision);
            return Verdict::Progress;
        }
        let mut skip = 0;
        let mut previous = None;
        for &rev in &r.revisions {
            let replayed = previous.is_none() && self.replay == Some(rev);
            if replayed && !mutant::active(Mutant::NoReplaySkip) {
                skip += 1;
                continue;
            }
            if rev <= self.last_seen {
                return Verdict::Gap(format!(
                    "event at revision {rev}, but revision {} was already seen",
                    self.last_seen
                ));
            }
            if previous.is_some_and(|p| rev < p) {
                return Verdict::Gap(format!(
                    "event at revision {rev} after one at {}",
                    previous.unwrap_or_default()
                ));
            }
            previous = Some(rev);
        }
        if let Some(last) = previous {
            self.last_seen = last;
            self.replay = None;
        }
        if mutant::active(Mutant::HeaderRevisionForEvents) {
            self.last_seen = self.last_seen.max(r.header_revision);
        }
        Verdict::Apply { skip }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(header: i64, revisions: &[i64]) -> ResponseView {
        ResponseView {
            created: false,
            canceled: false,
            compact_revision: 0,
            header_revision: header,
            revisions: revisions.to_vec(),
        }
    }

    fn progress(header: i64) -> ResponseView {
        events(header, &[])
    }

    #[test]
    fn a_watch_starts_at_the_last_revision_seen_and_skips_its_replay() {
        let mut p = Position::listed_at(41);
        assert_eq!(p.start_watch(), 41);
        // The list's revision replayed (a transaction of two keys), then what is new.
        assert_eq!(
            p.judge(&events(43, &[41, 41, 42, 43])),
            Verdict::Apply { skip: 2 }
        );
        assert_eq!(p.last_seen(), 43);
        // Past the replay, the same revision again is a gap.
        assert!(matches!(p.judge(&events(43, &[43])), Verdict::Gap(_)));
        assert_eq!(p.start_watch(), 43);
        assert_eq!(p.judge(&events(43, &[43])), Verdict::Apply { skip: 1 });
        assert_eq!(p.last_seen(), 43);
        assert_eq!(p.judge(&events(44, &[44])), Verdict::Apply { skip: 0 });
    }

    #[test]
    fn events_move_to_their_last_mod_revision_not_the_header() {
        let mut p = Position::listed_at(10);
        p.start_watch();
        // Catching up: the header is the store's current revision, far ahead.
        assert_eq!(
            p.judge(&events(5000, &[11, 12, 12, 13])),
            Verdict::Apply { skip: 0 }
        );
        assert_eq!(p.last_seen(), 13);
        assert_eq!(p.start_watch(), 13);
    }

    #[test]
    fn the_created_response_is_not_progress() {
        let mut p = Position::listed_at(10);
        p.start_watch();
        let created = ResponseView {
            created: true,
            ..progress(5000)
        };
        assert_eq!(p.judge(&created), Verdict::Created);
        assert_eq!(p.last_seen(), 10);
    }

    #[test]
    fn progress_notifications_only_move_forward() {
        let mut p = Position::listed_at(10);
        p.start_watch();
        assert_eq!(p.judge(&progress(20)), Verdict::Progress);
        assert_eq!(p.last_seen(), 20);
        // A repeat, and an older revision from a member that is behind.
        assert_eq!(p.judge(&progress(20)), Verdict::Progress);
        assert_eq!(p.judge(&progress(15)), Verdict::Progress);
        assert_eq!(p.last_seen(), 20);
        assert_eq!(p.judge(&events(22, &[21])), Verdict::Apply { skip: 0 });
        assert_eq!(p.last_seen(), 21);
    }

    #[test]
    fn a_replayed_or_backward_event_is_a_gap() {
        let mut p = Position::listed_at(10);
        p.start_watch();
        assert!(matches!(p.judge(&events(12, &[9])), Verdict::Gap(_)));
        assert!(matches!(p.judge(&events(12, &[12, 11])), Verdict::Gap(_)));
        assert!(matches!(p.judge(&events(12, &[11, 10])), Verdict::Gap(_)));
        assert_eq!(p.last_seen(), 10, "a gap does not move the position");
        assert_eq!(p.judge(&events(12, &[11, 12])), Verdict::Apply { skip: 0 });
        // The same revision again in the next response is a replay too.
        assert!(matches!(p.judge(&events(12, &[12])), Verdict::Gap(_)));
    }

    #[test]
    fn compaction_wins_over_everything_else() {
        let mut p = Position::listed_at(10);
        p.start_watch();
        let compacted = ResponseView {
            created: true,
            canceled: true,
            compact_revision: 30,
            ..progress(40)
        };
        assert_eq!(p.judge(&compacted), Verdict::Compacted(30));
        let canceled = ResponseView {
            canceled: true,
            ..progress(40)
        };
        assert_eq!(p.judge(&canceled), Verdict::Canceled);
        assert_eq!(p.last_seen(), 10);
    }
}
