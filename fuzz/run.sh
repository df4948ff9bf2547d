#!/usr/bin/env bash
# Runs every fuzz target of crscan-fuzz for a bounded time (default 60 s each) and
# prints executions and crashes per target. Not part of CI. Crashing inputs are saved
# under fuzz/artifacts/TARGET/; replay one with
#   fuzz/run.sh replay TARGET FILE...
# Usage: fuzz/run.sh [SECONDS [TARGET...]]
set -euo pipefail
cd "$(dirname "$0")"
# The workspace's lock file pins the same dependency versions the crates are tested with.
cp ../Cargo.lock Cargo.lock
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-../target/fuzz}"
cargo build --release --quiet
driver="$CARGO_TARGET_DIR/release/crscan-fuzz"
if [ "${1:-}" = replay ]; then
    shift
    exec "$driver" replay "$@"
fi
seconds="${1:-60}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <("$driver" list)
fi
status=0
for target in "${targets[@]}"; do
    "$driver" run "$target" "$seconds" || status=1
done
exit "$status"
