#!/usr/bin/env bash
# Registry throughput: push and pull a ~90 MiB 3-layer image with skopeo, against
# `crscan serve` and Debian's `docker-registry` (the reference distribution registry),
# on the same machine in the same run. Prints medians, crscan/reference ratios, and the
# server's CPU seconds and peak RSS per push.
#
# Usage: bench/registry.sh [RUNS]   (default 5; needs skopeo, umoci, docker-registry)
# The crscan binary is taken from $CRSCAN_BIN, else built with `cargo build --release`.
set -euo pipefail

RUNS=${1:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d)
SERVER_PID=
kill_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
trap 'kill_server; rm -rf "$WORK"' EXIT

for tool in skopeo umoci python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install -y $tool)" >&2; exit 1; }
done
if ! command -v docker-registry >/dev/null; then
  apt-get install -y docker-registry >/dev/null
fi
if [ -z "${CRSCAN_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p crscan >&2)
  CRSCAN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crscan"
fi

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

start_server() { # kind data_dir
  case "$1" in
    crscan)
      RUST_LOG=warn "$CRSCAN_BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$2" &
      ;;
    reference)
      cat > "$2.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $2
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$PORT
YAML
      docker-registry serve "$2.yml" >/dev/null 2>&1 &
      ;;
  esac
  SERVER_PID=$!
  for _ in $(seq 100); do
    curl -fs "http://127.0.0.1:$PORT/v2/" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server $1 did not start" >&2
  exit 1
}

cpu_seconds() { # pid -> utime+stime in seconds
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.3f", ($14 + $15) / hz }' "/proc/$1/stat"
}

peak_rss_mib() {
  awk '/VmHWM/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"
}

now() { date +%s.%N; }

declare -A RESULTS
for kind in crscan reference; do
  pushes=() pulls=() cpus=() rsses=()
  for run in $(seq "$RUNS"); do
    data="$WORK/data-$kind-$run"
    mkdir -p "$data"
    start_server "$kind" "$data"
    cpu_before=$(cpu_seconds "$SERVER_PID")
    start=$(now)
    skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:t" "docker://127.0.0.1:$PORT/default/app:t"
    end=$(now)
    pushes+=("$(echo "$end - $start" | bc)")
    cpus+=("$(echo "$(cpu_seconds "$SERVER_PID") - $cpu_before" | bc)")
    rsses+=("$(peak_rss_mib "$SERVER_PID")")
    start=$(now)
    skopeo copy -q --src-tls-verify=false "docker://127.0.0.1:$PORT/default/app:t" "oci:$WORK/pulled-$kind-$run:t"
    end=$(now)
    pulls+=("$(echo "$end - $start" | bc)")
    kill_server
    rm -rf "$data" "$WORK/pulled-$kind-$run"
  done
  median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
  RESULTS[$kind-push]=$(median "${pushes[@]}")
  RESULTS[$kind-pull]=$(median "${pulls[@]}")
  RESULTS[$kind-cpu]=$(median "${cpus[@]}")
  RESULTS[$kind-rss]=$(median "${rsses[@]}")
  echo "$kind: push runs ${pushes[*]} s; pull runs ${pulls[*]} s"
done

printf '\n%-10s %10s %10s %16s %18s\n' server push_s pull_s push_cpu_s peak_rss_MiB
for kind in crscan reference; do
  printf '%-10s %10.3f %10.3f %16.3f %18.1f\n' "$kind" "${RESULTS[$kind-push]}" "${RESULTS[$kind-pull]}" "${RESULTS[$kind-cpu]}" "${RESULTS[$kind-rss]}"
done
printf '\nratio crscan/reference (lower is better): push %.2f, pull %.2f\n' \
  "$(echo "${RESULTS[crscan-push]} / ${RESULTS[reference-push]}" | bc -l)" \
  "$(echo "${RESULTS[crscan-pull]} / ${RESULTS[reference-pull]}" | bc -l)"
