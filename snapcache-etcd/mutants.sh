#!/usr/bin/env bash
# Shows that each etcd test can fail: runs the suite once per seeded bug (src/mutant.rs,
# chosen by SNAPCACHE_ETCD_MUTANT in debug builds) and checks that the tests named for it
# fail. Exits non-zero if a seeded bug goes uncaught. About 12 minutes on 2 cores (a bug
# that makes the syncer hang is caught by a test's 30 s bounded wait).
#
#   bash snapcache-etcd/mutants.sh            # every seeded bug
#   bash snapcache-etcd/mutants.sh drop_deletes
set -uo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"

# seeded bug -> tests that must fail (space-separated substrings of test names)
declare -A MUST_FAIL=(
    [watch_after_last_seen]="a_deletion_at_exactly_the_compaction_revision a_watch_starts_at_the_last_revision_seen"
    [no_replay_skip]="a_watch_broken_by_restarting_etcd initial_list_of_10000_keys a_watch_starts_at_the_last_revision_seen"
    [rewatch_skips_one]="a_watch_broken_by_restarting_etcd random_operations"
    [header_revision_for_events]="a_lost_connection_resumes_over_a_backlog events_move_to_their_last_mod_revision"
    [created_as_progress]="a_lost_connection_resumes_over_a_backlog the_created_response_is_not_progress"
    [no_resync_deletions]="a_compaction_past_the_watch random_operations a_list_returns_what_it_lacked"
    [insync_before_list]="statuses_go_wait_resync_in_sync"
    [insync_before_deletions]="a_compaction_past_the_watch"
    [pages_at_latest]="initial_list_of_10000_keys"
    [prefix_end_all_above]="keys_outside_the_prefix_never_appear random_operations a_prefix_range_holds"
    [drop_deletes]="puts_overwrites_deletes random_operations"
    [default_message_limit]="large_values_and_binary_keys"
    [lossy_keys]="large_values_and_binary_keys"
    [no_credentials]="a_user_with_read_access_to_the_prefix"
    [no_tls_config]="tls_with_a_client_certificate_syncs"
)

mutants=("$@")
[ ${#mutants[@]} -eq 0 ] && mutants=($(printf '%s\n' "${!MUST_FAIL[@]}" | sort))
cargo test -p snapcache-etcd --no-run -q 2>/dev/null || cargo test -p snapcache-etcd --no-run
uncaught=0
for m in "${mutants[@]}"; do
    [ -n "${MUST_FAIL[$m]:-}" ] || { echo "unknown seeded bug: $m"; exit 2; }
    start=$SECONDS
    out=$(SNAPCACHE_ETCD_MUTANT=$m RUST_BACKTRACE=0 cargo test -p snapcache-etcd --lib --test etcd \
        --no-fail-fast 2>&1)
    failed=$(grep -E '^test .* FAILED$' <<<"$out" | sed -E 's/^test (.*) \.\.\. FAILED$/\1/' | sort -u)
    for t in ${MUST_FAIL[$m]}; do
        if grep -q "$t" <<<"$failed"; then
            echo "caught   $m by $t"
        else
            echo "UNCAUGHT $m: $t passed"
            uncaught=1
        fi
    done
    echo "         $m: $(grep -c . <<<"$failed") tests failed in $((SECONDS - start)) s: $(tr '\n' ' ' <<<"$failed")"
done
exit $uncaught
