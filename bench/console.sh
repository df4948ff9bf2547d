#!/usr/bin/env bash
# Benchmark of the web console (issue 16): the response time of each page for a
# repository of IMAGES images (each with a finished scan) and a scan with FINDINGS
# findings, next to the REST call that answers the same question in the same run
# (the peer), as a ratio. Figures are printed, never asserted. Target: every page
# under 100 ms.
#
# Usage: bench/console.sh              (from anywhere; needs curl, python3)
#   IMAGES=1000       images in the repository
#   FINDINGS=2000     findings of the big scan
#   RUNS=20           requests per page (median and 95th percentile reported)
#   PROFILE=release   cargo profile of the server and the seeder (dev: no rebuild
#                     when a debug build exists, and slower pages)
#   KEEP=1            keep the work directory (data dir, server log)
#
# The store is seeded through crscan-store's API (`cargo run --example
# console_seed`): the rows a push and a scan would leave, without image blobs (the
# image page then has no layer history to read; everything else is as after real
# pushes). The server runs with `--workers 0` and no tokens, on SQLite, on loopback.
set -euo pipefail

IMAGES=${IMAGES:-1000}
FINDINGS=${FINDINGS:-2000}
RUNS=${RUNS:-20}
PROFILE=${PROFILE:-release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crscan-console-bench.XXXXXX")
SERVER_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

cd "$ROOT"
echo "building crscan and the seeder ($PROFILE)…"
cargo build --quiet --profile "$PROFILE" -p crscan --bin crscan --example console_seed
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
OUT_DIR=$TARGET_DIR/$([ "$PROFILE" = dev ] && echo debug || echo "$PROFILE")
CRSCAN=$OUT_DIR/crscan
SEED=$OUT_DIR/examples/console_seed

start=$(date +%s.%N)
"$SEED" "$WORK/data" "$IMAGES" "$FINDINGS" > "$WORK/ids"
echo "seeded $IMAGES images and a scan of $FINDINGS findings in $(python3 -c "print(round($(date +%s.%N) - $start, 1))") s"
# shellcheck disable=SC1091
. "$WORK/ids"

CRSCAN_DB_AUTO_UPDATE=0 NO_COLOR=1 "$CRSCAN" serve --data-dir "$WORK/data" --workers 0 \
  --listen 127.0.0.1:0 > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  if grep -q "crscan serving on" "$WORK/serve.out"; then break; fi
  sleep 0.1
done
URL=$(sed -n 's/^crscan serving on //p' "$WORK/serve.out" | head -1)
[ -n "$URL" ] || { echo "the server did not start:"; cat "$WORK/serve.log"; exit 1; }
echo "server at $URL; load average: $(cut -d' ' -f1-3 /proc/loadavg)"

# measure PATH: RUNS timed GETs after one warm-up; prints "median p95 bytes" in ms.
measure() {
  curl -s -o /dev/null "$URL$1"
  for _ in $(seq 1 "$RUNS"); do
    curl -s -o /dev/null -w '%{http_code} %{time_total} %{size_download}\n' "$URL$1"
  done | python3 -c '
import sys
rows = [line.split() for line in sys.stdin if line.strip()]
bad = [r[0] for r in rows if r[0] != "200"]
if bad:
    sys.exit("HTTP " + bad[0] + " from " + sys.argv[1])
times = sorted(float(r[1]) * 1000 for r in rows)
median = times[len(times) // 2]
p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
print(f"{median:.1f} {p95:.1f} {rows[-1][2]}")
' "$1"
}

# The REST peer of the scan page: every finding, page by page (1000 a page).
measure_findings_rest() {
  local path="/container-registry/v1/scans/$SCAN:listVulnerabilities?pageSize=1000"
  for _ in $(seq 1 "$RUNS"); do
    python3 - "$URL$path" <<'PY'
import json, sys, time, urllib.request
url = sys.argv[1]
started = time.perf_counter()
token, size = "", 0
while True:
    with urllib.request.urlopen(url + ("&pageToken=" + token if token else "")) as answer:
        body = answer.read()
    size += len(body)
    token = json.loads(body).get("nextPageToken", "")
    if not token:
        break
print(f"200 {time.perf_counter() - started} {size}")
PY
  done | python3 -c '
import sys
rows = [line.split() for line in sys.stdin if line.strip()]
times = sorted(float(r[1]) * 1000 for r in rows)
print(f"{times[len(times) // 2]:.1f} {times[min(len(times) - 1, int(len(times) * 0.95))]:.1f} {rows[-1][2]}")
'
}

REPOSITORY_NAME_ENC=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$REPOSITORY_NAME")
printf '%-34s %10s %9s %10s   %-46s %10s %7s\n' page median_ms p95_ms bytes "REST peer" median_ms ratio
row() {
  local label=$1 page=$2 peer_label=$3 peer=$4
  read -r median p95 bytes < <(measure "$page")
  if [ -n "$peer" ]; then
    if [ "$peer" = findings ]; then
      read -r peer_median _ _ < <(measure_findings_rest)
    else
      read -r peer_median _ _ < <(measure "$peer")
    fi
    ratio=$(python3 -c "print(f'{$median / $peer_median:.2f}')")
  else
    peer_median=-; ratio=-
  fi
  printf '%-34s %10s %9s %10s   %-46s %10s %7s\n' "$label" "$median" "$p95" "$bytes" "$peer_label" "$peer_median" "$ratio"
}
row "dashboard /ui/" "/ui/" "" ""
row "registries" "/ui/registries" "ListRegistries" "/container-registry/v1/registries?folderId=default"
row "registry (1 repository)" "/ui/registries/$REGISTRY" "ListRepositories" "/container-registry/v1/repositories?registryId=$REGISTRY"
row "repository ($((IMAGES + 1)) images)" "/ui/repositories/$REPOSITORY" "ListImages pageSize=1000" "/container-registry/v1/images?repositoryName=$REPOSITORY_NAME_ENC&pageSize=1000"
row "image (its scan history)" "/ui/images/$IMAGE" "ListScanResults of the image" "/container-registry/v1/scans?imageId=$IMAGE"
row "scan ($FINDINGS findings)" "/ui/scans/$SCAN" "ListVulnerabilities, every page" "findings"
row "scan ?severity=CRITICAL" "/ui/scans/$SCAN?severity=CRITICAL" "ListVulnerabilities filter=CRITICAL" "/container-registry/v1/scans/$SCAN:listVulnerabilities?pageSize=1000&filter=severity%3D%22CRITICAL%22"
row "scan sorted by package, desc" "/ui/scans/$SCAN?sort=package&dir=desc" "" ""
row "download JSON" "/ui/scans/$SCAN/download?format=json" "" ""
row "download CSV" "/ui/scans/$SCAN/download?format=csv" "" ""
row "download SARIF" "/ui/scans/$SCAN/download?format=sarif" "" ""
row "download CycloneDX" "/ui/scans/$SCAN/download?format=cyclonedx" "" ""
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
