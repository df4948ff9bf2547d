#!/usr/bin/env bash
# Blob backends: push and pull of the ~90 MiB 3-layer image of bench/registry.sh with
# skopeo through `crscan serve` on the filesystem backend, on S3 (a one-node Garage on
# loopback) streaming through crscan, and on S3 with `blobs_redirect` (pulls fetch
# presigned URLs from Garage). Prints the medians and the S3/filesystem ratios.
#
# Usage: bench/s3.sh [RUNS]   (default 5; needs skopeo, umoci, and Garage from
# scripts/install-garage.sh). The crscan binary is $CRSCAN_BIN, else
# `cargo build --release`.
set -euo pipefail

RUNS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
SERVER_PID=
GARAGE_PID=
kill_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
cleanup() {
  kill_server
  if [ -n "$GARAGE_PID" ]; then
    kill "$GARAGE_PID" 2>/dev/null || true
    wait "$GARAGE_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in skopeo umoci python3 bc; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y $tool)" >&2; exit 1; }
done
GARAGE=${CRSCAN_GARAGE:-$("$ROOT/scripts/install-garage.sh")}
if [ -z "${CRSCAN_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p crscan >&2)
  CRSCAN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crscan"
fi

# Garage: one node, replication_factor 1, bucket "bench" and a key allowed on it.
RPC_PORT=5392
S3_PORT=5393
cat > "$WORK/garage.toml" <<TOML
metadata_dir = "$WORK/garage/meta"
data_dir = "$WORK/garage/data"
replication_factor = 1
rpc_bind_addr = "127.0.0.1:$RPC_PORT"
rpc_public_addr = "127.0.0.1:$RPC_PORT"
rpc_secret = "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$S3_PORT"
root_domain = ".s3.garage.localhost"
TOML
garage() { RUST_LOG=warn "$GARAGE" -c "$WORK/garage.toml" "$@"; }
RUST_LOG=garage=warn "$GARAGE" -c "$WORK/garage.toml" server >"$WORK/garage.log" 2>&1 &
GARAGE_PID=$!
for _ in $(seq 100); do garage status >/dev/null 2>&1 && break; sleep 0.2; done
NODE=$(garage node id -q | cut -d@ -f1)
garage layout assign -z dc1 -c 10G "$NODE" >/dev/null
garage layout apply --version 1 >/dev/null
garage bucket create bench >/dev/null
KEY=$(garage key create bench-key)
export AWS_ACCESS_KEY_ID=$(echo "$KEY" | awk -F': *' '/Key ID/ { print $2 }')
export AWS_SECRET_ACCESS_KEY=$(echo "$KEY" | awk -F': *' '/Secret key/ { print $2 }')
export AWS_REGION=garage
export AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
garage bucket allow --read --write --owner bench --key bench-key >/dev/null

# The image: three layers of incompressible data, ~30 MiB each.
LAYOUT="$WORK/layout"
umoci init --layout "$LAYOUT"
umoci new --image "$LAYOUT:t"
for i in 1 2 3; do
  head -c $((30 * 1024 * 1024)) /dev/urandom > "$WORK/payload-$i"
  umoci insert --image "$LAYOUT:t" "$WORK/payload-$i" "/data/payload-$i" >/dev/null
  rm "$WORK/payload-$i"
done
SIZE=$(skopeo inspect --raw "oci:$LAYOUT:t" | python3 -c 'import json,sys; print(sum(l["size"] for l in json.load(sys.stdin)["layers"]))')
echo "image: 3 layers, $((SIZE / 1024 / 1024)) MiB compressed"

PORT=5391
start_server() { # kind data_dir run
  local args=()
  case "$1" in
    s3) args=(--blobs "s3://bench/run-$3") ;;
    s3-redirect) args=(--blobs "s3://bench/redirect-$3" --blobs-redirect true) ;;
  esac
  CRSCAN_DB_AUTO_UPDATE=0 RUST_LOG=error "$CRSCAN_BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$2" --workers 0 "${args[@]}" >/dev/null &
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server $1 did not start" >&2
  exit 1
}

now() { date +%s.%N; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

declare -A RESULTS
KINDS=(file s3 s3-redirect)
for kind in "${KINDS[@]}"; do
  pushes=() pulls=()
  for run in $(seq "$RUNS"); do
    data="$WORK/data-$kind-$run"
    mkdir -p "$data"
    start_server "$kind" "$data" "$run"
    start=$(now)
    skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:t" "docker://127.0.0.1:$PORT/default/app:t"
    end=$(now)
    pushes+=("$(echo "$end - $start" | bc)")
    start=$(now)
    skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PORT/default/app:t" "oci:$WORK/pulled-$kind-$run:t"
    end=$(now)
    pulls+=("$(echo "$end - $start" | bc)")
    kill_server
    rm -rf "$data" "$WORK/pulled-$kind-$run"
  done
  RESULTS[$kind-push]=$(median "${pushes[@]}")
  RESULTS[$kind-pull]=$(median "${pulls[@]}")
  echo "$kind: push runs ${pushes[*]} s; pull runs ${pulls[*]} s"
done

printf '\n%-12s %10s %10s\n' backend push_s pull_s
for kind in "${KINDS[@]}"; do
  printf '%-12s %10.3f %10.3f\n' "$kind" "${RESULTS[$kind-push]}" "${RESULTS[$kind-pull]}"
done
printf '\nratio s3/file (lower is better): push %.2f, pull %.2f; s3-redirect/file: pull %.2f\n' \
  "$(echo "${RESULTS[s3-push]} / ${RESULTS[file-push]}" | bc -l)" \
  "$(echo "${RESULTS[s3-pull]} / ${RESULTS[file-pull]}" | bc -l)" \
  "$(echo "${RESULTS[s3-redirect-pull]} / ${RESULTS[file-pull]}" | bc -l)"
