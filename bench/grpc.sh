#!/usr/bin/env bash
# Benchmark of the gRPC API on loopback (issue 11): `ScannerService/GetLast` and
# `OperationService/Get` over gRPC at 4 and 16 concurrent connections, p50 and p99,
# next to the same questions over REST (`GET …/images/{id}:lastScanResult`,
# `GET /operations/{id}`), measured in the same run against the same server by one
# load client (crates/crscan/examples/grpc_load.rs: tonic for gRPC, one HTTP/2
# connection per worker; reqwest for REST, one HTTP/1.1 keep-alive connection per
# worker). Figures and gRPC/REST ratios are printed, never asserted.
#
# Usage: bench/grpc.sh                 (from anywhere; needs python3)
#   DURATION=10          seconds per measurement (after 1 s of warm-up)
#   CONNECTIONS="4 16"   connection counts
#   CRSCAN_BIN=… LOAD_BIN=…  use these binaries instead of building them (release)
#   KEEP=1               keep the work directory (data dir, server log)
#
# The server (`crscan serve --listen 127.0.0.1:0`, SQLite, one worker, no tokens)
# gets the end-to-end test image (as bench/api.sh builds it) pushed over /v2/ and
# scanned once; GetLast asks for that image's result, Get for that scan's done
# operation. The load client runs on the same cores as the server (2 threads), so the
# machine's load is printed before each run.
#
# Measured 2026-12-05 (release build, 2 shared cores, load average 10-14 from other
# builds; DURATION=10):
#   question              conns  gRPC p50/p99 ms  r/s    REST p50/p99 ms  r/s    p50, p99 gRPC/REST
#   GetLast                   4   0.63 / 1.62      5867   0.57 / 1.45      6507   1.11, 1.11
#   GetLast                  16   2.69 / 13.13     5342   2.26 / 8.78      6007   1.19, 1.50
#   OperationService/Get      4   0.28 / 1.10     11813   0.22 / 1.88     13498   1.25, 0.59
#   OperationService/Get     16   1.05 / 4.37     14032   0.77 / 2.00     19066   1.35, 2.19
# p99 is under 5 ms at 4 connections for both; at 16 connections on this loaded
# machine GetLast's p99 is over it, over gRPC and REST alike.
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-"4 16"}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${CRSCAN_SHARED_DATA:-$ROOT/../shared/data}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crscan-grpc-bench.XXXXXX")
SERVER_PID=

cleanup() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

command -v python3 >/dev/null || { echo "bench/grpc.sh: needs python3" >&2; exit 1; }
[ -d "$DATA/vulndb" ] || { echo "bench/grpc.sh: shared data not found at $DATA (set CRSCAN_SHARED_DATA)" >&2; exit 1; }
if [ -z "${CRSCAN_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
  echo "building crscan and the load client (release)" >&2
  (cd "$ROOT" && cargo build --release -q -p crscan --bin crscan --example grpc_load)
  CRSCAN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crscan"
  LOAD_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/grpc_load"
fi

mkdir -p "$WORK/data/vulndb"
"$CRSCAN_BIN" db build --db "$WORK/data/vulndb/crscan.db" \
  --from "$DATA/vulndb/alpine-secdb/v3.4/main.yaml" "$DATA/vulndb/pypa-advisory-database/vulns/jinja2" \
  "$DATA/vulndb/github-advisory-database-subset" > "$WORK/db.out" 2>&1

env -u CRSCAN_TOKENS -u CRSCAN_CONFIG CRSCAN_DB_AUTO_UPDATE=0 NO_COLOR=1 RUST_LOG=warn \
  "$CRSCAN_BIN" serve --listen 127.0.0.1:0 --data-dir "$WORK/data" --workers 1 \
  > "$WORK/serve.out" 2> "$WORK/serve.log" &
SERVER_PID=$!
for _ in $(seq 1 300); do
  grep -q '^crscan serving on ' "$WORK/serve.out" 2>/dev/null && break
  sleep 0.1
done
URL=$(sed -n 's/^crscan serving on //p' "$WORK/serve.out")
[ -n "$URL" ] || { echo "bench/grpc.sh: the server did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }

# Push the test image over /v2/ and scan it once: prints "IMAGE_ID OPERATION_ID".
read -r IMAGE_ID OPERATION_ID < <(DATA="$DATA" URL="$URL" python3 - <<'PY'
import gzip, hashlib, http.client, io, json, os, tarfile, time, urllib.parse

DATA, url = os.environ["DATA"], urllib.parse.urlparse(os.environ["URL"])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

def call(method, path, body=None, headers=None, expect=200):
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    payload = response.read()
    if response.status != expect:
        raise SystemExit(f"{method} {path}: HTTP {response.status} {payload[:200]!r}")
    return payload

def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()

def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, contents in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(contents), 0o644
            tar.addfile(info, io.BytesIO(contents))
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0), sha(raw.getvalue())

installed = open(f"{DATA}/catalog/apk/trivy/installed", "rb").read()
os_release = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME="Alpine Linux v3.4"\n'
lock = json.dumps({"name": "app", "version": "1.0.0", "lockfileVersion": 2,
    "packages": {"": {"name": "app", "version": "1.0.0"}, "node_modules/lodash": {"version": "4.17.15"},
                 "node_modules/minimist": {"version": "1.2.5"}}}).encode()
layers = [layer([("etc/os-release", os_release), ("lib/apk/db/installed", installed)]),
          layer([("usr/lib/python3.5/site-packages/Jinja2-2.10.dist-info/METADATA",
                  b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n"), ("app/package-lock.json", lock)])]
config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                     "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]}}).encode()
for data in [data for data, _ in layers] + [config]:
    call("POST", f"/v2/default/bench-app/blobs/uploads/?digest={sha(data)}", data,
         {"Content-Type": "application/octet-stream"}, expect=201)
manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(data), "size": len(data)}
               for data, _ in layers]}).encode()
call("PUT", "/v2/default/bench-app/manifests/1.0", manifest,
     {"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, expect=201)
images = json.loads(call("GET", "/container-registry/v1/images?folderId=default"))["images"]
image_id = next(image["id"] for image in images if image["digest"] == sha(manifest))
operation = json.loads(call("POST", "/container-registry/v1/scans", json.dumps({"imageId": image_id}).encode(),
                            {"Content-Type": "application/json"}))
for _ in range(600):
    if json.loads(call("GET", f"/operations/{operation['id']}")).get("done"):
        break
    time.sleep(0.1)
else:
    raise SystemExit("the scan did not finish")
print(image_id, operation["id"])
PY
)

echo "server $URL; image $IMAGE_ID; operation $OPERATION_ID; load $(cut -d' ' -f1-3 /proc/loadavg)"
# shellcheck disable=SC2086
"$LOAD_BIN" "$URL" "$IMAGE_ID" "$OPERATION_ID" "$DURATION" $CONNECTIONS
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
