#!/usr/bin/env bash
# Installs Garage (S3-compatible object storage, crates.io) for the tests that run
# crscan on S3 (crates/crscan-blob/tests/conformance.rs, crates/crscan/tests/cluster.rs),
# into a cache outside the repository: ~8 minutes to build once per machine.
# Idempotent: does nothing when the cached binary exists. Prints its path on stdout.
set -euo pipefail

cache=${CRSCAN_TOOLS_CACHE:-$HOME/.cache/crscan-tools}
root="$cache/garage"
binary="$root/bin/garage"
if [ ! -x "$binary" ]; then
    mkdir -p "$root"
    cargo install garage --locked --root "$root" >&2
fi
echo "$binary"
