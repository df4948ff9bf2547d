#!/usr/bin/env bash
# What access checks cost on `/v2/` (issue 13): the same manifest GET, at 4
# concurrent connections, by a token with a global role (no binding lookups), by a
# token whose only right is a role bound on the repository (two binding lookups), by
# an anonymous caller through `allUsers` bound on the registry, and by the global
# token again with an IP allow-list of 100 entries (127.0.0.1 last). Prints requests
# per second and p50/p99 latency from ApacheBench (`ab`); figures only, never asserted.
#
# Usage: bench/access.sh   (needs ab, curl, skopeo, umoci)
#   REQUESTS=3000 CONCURRENCY=4
#   CRSCAN_BIN=…   the binary to run [default: target/release/crscan when built,
#                  else target/debug/crscan]
#
# Measured 2026-12-05, debug build (no release build on this machine), SQLite, 2 shared
# cores with load average 3-5 from other builds, 3000 GETs at 4 connections:
#   global admin token                 933 r/s   p50 4 ms   p99  9 ms
#   token bound on the repository      744 r/s   p50 5 ms   p99 13 ms
#   anonymous through allUsers         943 r/s   p50 4 ms   p99  9 ms
#   global token, 100-entry IP list    641 r/s   p50 6 ms   p99 13 ms
# Against the branch's base (main at 1c92a1a, same debug build, one global token,
# alternated three times each): 833 / 915 / 1040 r/s before, 814 / 1102 / 996 r/s
# after, so a global token's one extra query (the registry's IP list) is within the
# noise. A first version that also looked the registry up for global tokens cost
# about 15-20 % (987 / 697 / 552 before, 807 / 403 / 641 after); a bound token pays
# for the registry, repository and two binding reads.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
REQUESTS=${REQUESTS:-3000}
CONCURRENCY=${CONCURRENCY:-4}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in ab curl skopeo umoci python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool" >&2; exit 1; }
done
if [ -z "${CRSCAN_BIN:-}" ]; then
  if [ -x "$ROOT/target/release/crscan" ]; then
    CRSCAN_BIN="$ROOT/target/release/crscan"
  else
    (cd "$ROOT" && cargo build -p crscan >&2)
    CRSCAN_BIN="$ROOT/target/debug/crscan"
  fi
fi
echo "binary: $CRSCAN_BIN"

ADMIN=bench-admin-token
CI=bench-ci-token
cat > "$WORK/crscan.toml" <<EOF
[[tokens]]
token = "$ADMIN"
roles = ["admin"]

[[tokens]]
token = "$CI"
subject = "ci"
EOF

CRSCAN_DB_AUTO_UPDATE=0 "$CRSCAN_BIN" serve --config "$WORK/crscan.toml" \
  --data-dir "$WORK/data" --workers 0 --listen 127.0.0.1:0 \
  > "$WORK/stdout" 2> "$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 600); do
  grep -q 'crscan serving on' "$WORK/stdout" 2>/dev/null && break
  sleep 0.1
done
ADDRESS=$(sed -n 's/^crscan serving on http:\/\///p' "$WORK/stdout" | head -1)
URL="http://$ADDRESS"

umoci init --layout "$WORK/layout" >/dev/null
umoci new --image "$WORK/layout:t" >/dev/null
skopeo copy -q --dest-tls-verify=false --dest-creds "user:$ADMIN" \
  "oci:$WORK/layout:t" "docker://$ADDRESS/default/app:t"

api() {
  curl -sS -X "$1" -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    ${3:+--data-binary "$3"} "$URL/container-registry/v1/$2"
}
REGISTRY=$(api GET 'registries?folderId=default' | python3 -c 'import json,sys; print(json.load(sys.stdin)["registries"][0]["id"])')
REPOSITORY=$(api GET "repositories?registryId=$REGISTRY" | python3 -c 'import json,sys; print(json.load(sys.stdin)["repositories"][0]["id"])')
api POST "repositories/$REPOSITORY:setAccessBindings" \
  '{"accessBindings":[{"roleId":"container-registry.images.pusher","subject":{"type":"serviceAccount","id":"ci"}}]}' >/dev/null
api POST "registries/$REGISTRY:setAccessBindings" \
  '{"accessBindings":[{"roleId":"container-registry.images.puller","subject":{"type":"system","id":"allUsers"}}]}' >/dev/null

MANIFEST="$URL/v2/default/app/manifests/t"
ACCEPT='Accept: application/vnd.oci.image.manifest.v1+json'
basic() { printf 'user:%s' "$1" | base64 -w0; }

measure() {
  local name=$1
  shift
  local out
  out=$(ab -q -n "$REQUESTS" -c "$CONCURRENCY" -H "$ACCEPT" "$@" "$MANIFEST" 2>&1)
  local failed non2xx rps p50 p99
  failed=$(sed -n 's/^Failed requests: *//p' <<<"$out")
  non2xx=$(sed -n 's/^Non-2xx responses: *//p' <<<"$out")
  rps=$(sed -n 's/^Requests per second: *\([0-9.]*\).*/\1/p' <<<"$out")
  p50=$(sed -n 's/^ *50% *//p' <<<"$out")
  p99=$(sed -n 's/^ *99% *//p' <<<"$out")
  printf '%-34s %9s r/s   p50 %3s ms   p99 %3s ms   failed %s non-2xx %s\n' \
    "$name" "$rps" "$p50" "$p99" "${failed:-0}" "${non2xx:-0}"
}

echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $REQUESTS GETs of one manifest, $CONCURRENCY connections"
measure "global admin token" -H "Authorization: Basic $(basic "$ADMIN")"
measure "token bound on the repository" -H "Authorization: Basic $(basic "$CI")"
measure "anonymous through allUsers" -H "X-Bench: anonymous"
ENTRIES=$(python3 -c 'import json; print(json.dumps({"ipPermission": [{"action": "PULL", "ip": f"10.0.{i}.0/24"} for i in range(99)] + [{"action": "PULL", "ip": "127.0.0.1"}]}))')
api POST "registries/$REGISTRY:setIpPermission" "$ENTRIES" >/dev/null
measure "global token, 100-entry IP list" -H "Authorization: Basic $(basic "$ADMIN")"
