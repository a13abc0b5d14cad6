#!/usr/bin/env bash
# Runs the ctrie test suite (or MIRI_PACKAGE's) under Miri.
#
# * Tree Borrows, not Stacked Borrows: crossbeam-epoch trips Stacked Borrows (crossbeam issue
#   #545). Strict provenance is off for the same reason: crossbeam-epoch casts integers to
#   pointers (tagged pointers in its queue and epoch words).
# * -Zmiri-ignore-leaks: garbage still queued in crossbeam-epoch's global collector when the
#   test process exits is reported as leaked even though it is merely unreclaimed. That nothing
#   the crate owns leaks is proven separately by the drop-count tests (every key and value
#   dropped exactly once after the trie and its snapshots are gone).
# * -Zmiri-symbolic-alignment-check: catches code that only works because of lucky alignment.
# Test sizes shrink under cfg(miri).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0
export MIRIFLAGS="${MIRIFLAGS:--Zmiri-tree-borrows -Zmiri-ignore-leaks -Zmiri-symbolic-alignment-check}"
cargo +nightly miri setup >/dev/null
cargo +nightly miri test -p "${MIRI_PACKAGE:-ctrie}" "$@"
