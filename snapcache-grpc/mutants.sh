#!/usr/bin/env bash
# Seeded bugs of snapcache-grpc: each must make its test fail (see src/seeded.rs and
# VERIFICATION.md). Builds the crate once with the `mutants` feature, then runs each test with
# SNAPCACHE_GRPC_MUTANT=<name>; a test that still passes fails this script. ~2-3 minutes.
#
#   bash snapcache-grpc/mutants.sh            # every seeded bug
#   bash snapcache-grpc/mutants.sh resume_skips   # one
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
export RUST_BACKTRACE=0

# mutant | test target | test name
CASES="
encode_per_client   stream   each_breadcrumb_is_encoded_once_whatever_the_client_count
snapshot_per_client stream   clients_starting_together_share_one_snapshot_encoding
wait_for_slow       faults   a_client_that_stops_reading_is_cut_off_and_released
forget_deletions    faults   a_restarted_server_brings_every_client_to_the_new_state
resume_skips        resume   a_reconnecting_client_resumes_with_deltas_only
resume_any_instance faults   a_restarted_server_brings_every_client_to_the_new_state
no_keepalive        limits   a_black_holed_client_is_detected_by_keepalive
drain_at_once       limits   graceful_shutdown_drains_gradually
no_name_check       tls      a_wrong_client_name_is_refused
no_connection_limit limits   the_connection_over_the_limit_is_refused
"

cargo test -p snapcache-grpc --features mutants --no-run --quiet
failed=0
while read -r mutant target test; do
    [ -z "$mutant" ] && continue
    if [ $# -gt 0 ] && [ "$1" != "$mutant" ]; then continue; fi
    log=$(mktemp)
    if SNAPCACHE_GRPC_MUTANT="$mutant" cargo test -p snapcache-grpc --features mutants --quiet \
        --test "$target" -- --exact "$test" >"$log" 2>&1; then
        echo "NOT CAUGHT: $mutant survived $target::$test"
        failed=1
    elif grep -q "test result: FAILED" "$log"; then
        echo "caught:     $mutant by $target::$test"
    else
        echo "ERROR:      $mutant: $target::$test did not run (build error?)"; tail -20 "$log"
        failed=1
    fi
    rm -f "$log"
done <<<"$CASES"
exit $failed
