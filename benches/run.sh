#!/usr/bin/env bash
# Runs the benchmark suite, then the report tool (benches/report/report.md + SVG plots).
#
#   benches/run.sh quick   # < 10 minutes on 2 cores: every benchmark at 100k keys (snapshot
#                          # sizes up to 100k), criterion --quick with short times, fan-out
#                          # up to 1,000 followers
#   benches/run.sh full    # everything at 1M keys (hours on 2 cores); BENCH_10M=1 adds 10M
#                          # snapshot sizes
#
# Extra arguments are passed to every criterion run (criterion options; for a subset run
# `cargo bench -p benches --bench maps -- <filter>` directly instead).
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-quick}"
shift || true
start=$(date +%s)
say() { printf '\n=== %s (%ds)\n' "$*" "$(( $(date +%s) - start ))"; }

say "building"
cargo bench -p benches --no-run
# The bench profile (release + debug info), so the binaries share the benches' build.
cargo build --profile bench -p benches --bins

case "$mode" in
quick)
    export BENCH_KEYS=100000 BENCH_SNAPSHOT_MAX=100000
    crit=(--quick --warm-up-time 0.2 --measurement-time 0.5 "$@")
    say "maps (system allocator)"
    cargo bench -p benches --bench maps -- "${crit[@]}"
    say "maps (mimalloc)"
    cargo bench -p benches --bench maps_mimalloc -- "${crit[@]}"
    say "snapshots"
    cargo bench -p benches --bench snapshots -- "${crit[@]}"
    say "fan-out"
    ./target/release/fanout
    say "memory"
    ./target/release/memory | tee target/memory.md
    ;;
full)
    say "maps (system allocator)"
    cargo bench -p benches --bench maps -- "$@"
    say "maps (mimalloc)"
    cargo bench -p benches --bench maps_mimalloc -- "$@"
    say "snapshots"
    cargo bench -p benches --bench snapshots -- "$@"
    say "fan-out"
    ./target/release/fanout --full
    say "memory"
    ./target/release/memory | tee target/memory.md
    ;;
*)
    echo "usage: $0 quick|full [criterion args...]" >&2
    exit 2
    ;;
esac

say "report"
./target/release/report --criterion target/criterion --fanout target/fanout/fanout.json \
    --out benches/report
say "done"
