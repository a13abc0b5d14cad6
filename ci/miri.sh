#!/usr/bin/env bash
# Runs the ctrie test suite (package lockfree-ctrie; or MIRI_PACKAGE's) under Miri.
#
# * Tree Borrows, not Stacked Borrows: crossbeam-epoch trips Stacked Borrows (crossbeam issue
#   #545). Strict provenance is off for the same reason: crossbeam-epoch casts integers to
#   pointers (tagged pointers in its queue and epoch words).
# * -Zmiri-ignore-leaks: garbage still queued in crossbeam-epoch's global collector when the
#   test process exits is reported as leaked even though it is merely unreclaimed. That nothing
#   the crate owns leaks is proven separately by the drop-count tests (every key and value
#   dropped exactly once after the trie and its snapshots are gone).
# * -Zmiri-symbolic-alignment-check: catches code that only works because of lucky alignment.
# * snapcache only: -Zmiri-disable-isolation, because the cache stamps breadcrumbs with
#   SystemTime::now and waits with timeouts (the periodic wake-up), which isolation forbids.
# * ctrie's own tagged pointers use the strict-provenance address APIs; the integer-to-pointer
#   warnings Miri prints come from crossbeam-epoch.
# * The node-level unit tests (`raw::node::tests`), which never pin the epoch, run a second time
#   under Stacked Borrows with strict provenance: they check that the C-node and L-node trailing
#   arrays are read through the allocation's pointer (Stacked Borrows rejects reading past a
#   reference to the header; Tree Borrows does not).
# * Both cores: the unit and integration tests run under cargo-nextest, each test in its own Miri
#   process, MIRI_JOBS (default 2) at a time; Miri itself is single-threaded, so one `cargo miri
#   test` leaves a core idle (ctrie: 34 min that way, 16 with two jobs, 2026-12-02). The doc tests
#   follow, with cargo's own runner (nextest does not run them); MIRI_DOCTESTS=0 skips them
#   (`.ci/run` does for snapcache, whose README examples take minutes each under Miri; ci/long.sh
#   runs them). Arguments are passed to nextest (test filters, say).
# Test sizes shrink under cfg(miri).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0
PACKAGE="${MIRI_PACKAGE:-lockfree-ctrie}"
DEFAULT_FLAGS="-Zmiri-tree-borrows -Zmiri-ignore-leaks -Zmiri-symbolic-alignment-check"
if [ "$PACKAGE" = snapcache ]; then
    DEFAULT_FLAGS="$DEFAULT_FLAGS -Zmiri-disable-isolation"
fi
export MIRIFLAGS="${MIRIFLAGS:-$DEFAULT_FLAGS}"
if ! cargo nextest --version >/dev/null 2>&1; then
    cargo install cargo-nextest --locked
fi
cargo +nightly miri setup >/dev/null
cargo +nightly miri nextest run -p "$PACKAGE" -j "${MIRI_JOBS:-2}" --no-fail-fast "$@"
if [ "${MIRI_DOCTESTS:-1}" != 0 ]; then
    cargo +nightly miri test -p "$PACKAGE" --doc
fi
if [ "$PACKAGE" = lockfree-ctrie ] && [ $# -eq 0 ]; then
    MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check" \
        cargo +nightly miri test -p lockfree-ctrie --lib raw::node::tests
fi
