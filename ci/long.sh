#!/usr/bin/env bash
# The long verification tier (not run by .ci/run; takes a few hours on 2 cores):
# loom at 3 preemptions with the seeded bugs (~15 min), the seeded bugs of the plain tests and
# Miri (~5 min), the sanitizers with their seeded bug (~12 min), Miri of both crates (~10 min,
# also in .ci/run), longer linearizability stress, and an hour of fuzzing per target (3 hours).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUST_BACKTRACE=0
LOOM_MAX_PREEMPTIONS=3 bash loom-tests/run.sh
bash ci/mutants.sh
bash ci/sanitize.sh
bash ci/miri.sh
MIRI_PACKAGE=snapcache bash ci/miri.sh
cargo bench --workspace --no-run   # the benchmarks build in release (~5 min)
LIN_ROUNDS=50000 cargo test --release -p verify --test linearizability
bash snapcache-grpc/mutants.sh
cargo run --release -p snapcache-grpc --example loopback   # 1,000 gRPC clients, ~4-5 min
FUZZ_SECONDS=3600 bash ci/fuzz.sh
echo "long tier: all passed"
