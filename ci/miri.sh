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
cargo +nightly miri setup >/dev/null
cargo +nightly miri test -p "$PACKAGE" "$@"
if [ "$PACKAGE" = lockfree-ctrie ] && [ $# -eq 0 ]; then
    MIRIFLAGS="-Zmiri-strict-provenance -Zmiri-symbolic-alignment-check" \
        cargo +nightly miri test -p lockfree-ctrie --lib raw::node::tests
fi
