#!/usr/bin/env bash
# Shows that the plain test suites catch seeded bugs (cfg ctrie_mutant, see VERIFICATION.md):
# each mutant build must make the named test fail. (loom-tests/run.sh does the same for the loom
# models.) ~5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0

# Races are not certain to show in one run: a test gets up to ATTEMPTS (default 5) runs, and
# the number of runs it needed is printed.
ATTEMPTS="${ATTEMPTS:-5}"
expect_failure() {
    local mutant=$1 package=$2 test=$3 filter=$4 attempt
    for attempt in $(seq 1 "$ATTEMPTS"); do
        if ! RUSTFLAGS="--cfg ctrie_mutant=\"$mutant\"" cargo test -q --release -p "$package" \
            --test "$test" --target-dir target/mutant -- "$filter" >/tmp/mutant.log 2>&1; then
            # Only a failing test counts as a catch (not a build error).
            if ! grep -q 'test result: FAILED' /tmp/mutant.log; then
                tail -n 20 /tmp/mutant.log >&2
                echo "FAIL: $package/$test did not run to a test failure under $mutant" >&2
                exit 1
            fi
            echo "ok: seeded bug $mutant caught by $package/$test::$filter (run $attempt): $(grep -m1 -E 'panicked|not linearizable|failed:|never dropped' /tmp/mutant.log | sed 's/^ *//' | cut -c1-100)"
            return
        fi
    done
    echo "FAIL: seeded bug $mutant went unnoticed by $package/$test::$filter in $ATTEMPTS runs" >&2
    exit 1
}

# The seeded bugs of generation intervals (ctrie's reclaim.rs) are caught by the debug oracle,
# which exists in debug builds only: these run without --release (their own target dir).
expect_failure_debug() {
    local mutant=$1 package=$2 test=$3 filter=$4
    if RUSTFLAGS="--cfg ctrie_mutant=\"$mutant\"" cargo test -q -p "$package" --test "$test" \
        --target-dir target/mutant-debug -- "$filter" >/tmp/mutant.log 2>&1; then
        echo "FAIL: seeded bug $mutant went unnoticed by $package/$test::$filter" >&2
        exit 1
    fi
    # A test failure (an abort after a double free counts too: glibc ends the process), not a
    # build error.
    if ! grep -qE 'test result: FAILED|oracle|double free|SIGABRT' /tmp/mutant.log; then
        tail -n 20 /tmp/mutant.log >&2
        echo "FAIL: $package/$test did not run to a test failure under $mutant" >&2
        exit 1
    fi
    echo "ok: seeded bug $mutant caught by $package/$test::$filter: $(grep -m1 -E 'oracle|panicked|double free' /tmp/mutant.log | sed 's/^ *//' | cut -c1-110)"
}
expect_failure_debug death_is_birth lockfree-ctrie drops exactly_once_random_histories
expect_failure_debug interval_check_skipped lockfree-ctrie drops exactly_once_random_histories
expect_failure_debug renewed_main_retired lockfree-ctrie drops exactly_once_random_histories
expect_failure_debug leak_dropped lockfree-ctrie garbage snapshots_dropped_oldest_first
# register_after_rdcss needs the race of a commit with a freeze: loom's
# root_commit_racing_freeze_root catches it (loom-tests/run.sh).

# Grouped by mutant: each distinct RUSTFLAGS value is one build.
expect_failure ro_snapshot_live_root verify linearizability snapshot_heavy_histories_are_linearizable
expect_failure ro_snapshot_live_root lockfree-ctrie concurrent prefix_under_ordered_inserts
expect_failure gcas_no_gen_check verify linearizability snapshot_heavy_histories_are_linearizable
expect_failure gcas_no_gen_check lockfree-ctrie concurrent per_writer_rounds_are_seen_in_order
expect_failure leak_dropped lockfree-ctrie drops exactly_once_random_histories
expect_failure free_early lockfree-ctrie drops not_freed_while_a_pinned_reader_holds_it
# The fuzz seed replay (the fuzz targets' logic) catches a snapshot that reads the live root.
expect_failure ro_snapshot_live_root verify replay ctrie_ops_seeds

# Miri must report the use-after-free of the free_early mutant (a replaced value handed back by
# `insert` is freed at once), with the same flags as ci/miri.sh. The failure must be Miri's
# report, not any failure (a missing Miri once passed for a catch here).
rustup component add --toolchain nightly miri rust-src >/dev/null
export MIRIFLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks -Zmiri-symbolic-alignment-check"
RUSTFLAGS='--cfg ctrie_mutant="free_early"' cargo +nightly miri test -q -p lockfree-ctrie --test reference_scala \
    --target-dir target/mutant-miri >/tmp/mutant.log 2>&1 || true
if ! grep -q 'Undefined Behavior' /tmp/mutant.log; then
    tail -n 20 /tmp/mutant.log >&2
    echo "FAIL: seeded bug free_early went unnoticed by Miri" >&2
    exit 1
fi
echo "ok: seeded bug free_early caught by Miri: $(grep -m1 -E 'Undefined Behavior' /tmp/mutant.log | sed 's/^ *//' | cut -c1-120)"

# The fuzzer itself, from an empty corpus (not the committed seeds), must find the seeded
# read-only snapshot that reads the live root: ~2,000 executions, ~15 s once built.
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
empty=$(mktemp -d)
(cd fuzz && RUSTFLAGS='--cfg ctrie_mutant="ro_snapshot_live_root"' cargo +nightly fuzz run -O \
    --target-dir target/mutant ctrie_ops "$empty" -- -max_total_time=300 >/tmp/mutant.log 2>&1) || true
rm -rf "$empty"
if ! grep -q 'libFuzzer: deadly signal' /tmp/mutant.log; then
    tail -n 20 /tmp/mutant.log >&2
    echo "FAIL: the fuzzer did not find ro_snapshot_live_root in 300 s" >&2
    exit 1
fi
echo "ok: seeded bug ro_snapshot_live_root found by cargo fuzz (ctrie_ops) from an empty corpus: $(grep -m1 -oE '^#[0-9]+' /tmp/mutant.log | tail -1) executions logged before the crash"
