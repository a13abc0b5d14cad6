#!/usr/bin/env bash
# Loom models of ctrie and snapcache (loom-tests/tests/*.rs), then the seeded bugs each model must
# catch.
#
# Flags: loom needs `--cfg ctrie_loom` / `--cfg snapcache_loom` (our shims) together with
# crossbeam-epoch's `loom` feature (enabled by loom-tests' dependencies) AND `--cfg crossbeam_loom`
# (without it crossbeam-epoch builds but its own atomics are not modelled). Loom builds get
# their own target directory. RUST_BACKTRACE=0: loom failures are long enough.
# `-C debug-assertions`: the crates' internal assertions (e.g. ctrie never acquires a node whose
# count reached zero, never frees an I-node with a pending GCAS) are checked in every interleaving.
#
# Budget, measured on the 2-core CI machine (release build excluded, ~1 min):
#   LOOM_MAX_PREEMPTIONS=2 (default): models ~25 s, seeded bugs ~3 min (three extra builds;
#   LOOM_MUTANTS=0 skips them, as .ci/run does: ci/long.sh runs them)
#   LOOM_MAX_PREEMPTIONS=3 (ci/long.sh): models ~4.5 min (253 s on 2026-11-27 with debug
#   assertions), ~6 min with the seeded bugs (357 s)
# Unbounded preemptions do not finish. Do not set LOOM_MAX_DURATION: it stops early and still
# reports success.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0
export LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}"
FLAGS="--cfg ctrie_loom --cfg crossbeam_loom --cfg snapcache_loom -C debug-assertions"

echo "loom models (LOOM_MAX_PREEMPTIONS=$LOOM_MAX_PREEMPTIONS)"
RUSTFLAGS="$FLAGS" cargo test --release -p loom-tests --target-dir target/loom -- --test-threads=1

if [ "${LOOM_MUTANTS:-1}" = 0 ]; then
    exit 0
fi

# Each seeded bug of ctrie (cfg ctrie_mutant, see VERIFICATION.md) must make the named model fail.
# The snapcache lost wake-up mutants are checked inside the suite above
# (lost_wake_up_is_caught_without_the_recheck, queue_lost_wake_up_is_caught).
expect_failure() {
    local mutant=$1 model=$2 bin out
    RUSTFLAGS="$FLAGS --cfg ctrie_mutant=\"$mutant\"" \
        cargo test --release -p loom-tests --test ctrie --target-dir target/loom-mutant --no-run -q
    bin=$(ls -t target/loom-mutant/release/deps/ctrie-* | grep -v '\.d$' | head -n 1)
    if out=$("$bin" --exact "$model" --test-threads=1 2>&1); then
        echo "FAIL: seeded bug $mutant went unnoticed by $model" >&2
        exit 1
    fi
    # Only loom's own report counts as a catch.
    if ! grep -qE 'leaked|panicked|deadlock' <<<"$out"; then
        echo "FAIL: $model failed under $mutant without a loom report: $out" >&2
        exit 1
    fi
    echo "ok: seeded bug $mutant caught by $model: $(grep -m1 -E 'leaked|failed|deadlock' <<<"$out" | sed 's/^ *//')"
}
expect_failure gcas_no_gen_check write_racing_a_read_only_snapshot_is_all_or_nothing
expect_failure ro_snapshot_live_root write_racing_a_read_only_snapshot_is_all_or_nothing
expect_failure leak_dropped reclamation_with_a_pinned_reader_and_a_live_snapshot
expect_failure register_after_rdcss root_commit_racing_freeze_root
expect_failure slot_reused root_commit_racing_freeze_root
expect_failure death_is_birth retire_attaching_to_a_snapshot_racing_its_drop
expect_failure interval_check_skipped reclamation_with_a_pinned_reader_and_a_live_snapshot
expect_failure renewed_main_retired retire_attaching_to_a_snapshot_racing_its_drop
expect_failure ready_rest_lost a_writer_settling_a_dead_era_racing_its_fallback
expect_failure no_fallback a_writer_settling_a_dead_era_racing_its_fallback
