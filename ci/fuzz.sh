#!/usr/bin/env bash
# Runs every cargo-fuzz target for FUZZ_SECONDS (default 60) each, starting from the committed
# seeds. Installs cargo-fuzz (and nightly) if missing. A crash leaves its input in
# fuzz/artifacts/<target>/ and fails the script. `ci/long.sh` runs it for an hour per target.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
export RUST_BACKTRACE=0
SECONDS_EACH="${FUZZ_SECONDS:-60}"
if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo +nightly fuzz build -O
for target in ctrie_ops ctrie_threads snapcache_stream; do
    mkdir -p "corpus/$target"
    log="target/fuzz-$target.log"
    mkdir -p target
    # New inputs go to corpus/ (ignored by git); the committed seeds are read too.
    if ! cargo +nightly fuzz run -O "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$SECONDS_EACH" >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    echo "fuzz $target: $(grep -E '^Done' "$log")"
done
