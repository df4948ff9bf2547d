#!/usr/bin/env bash
# Benchmark of scale-out (issue 14): scans per minute with one and with two worker
# nodes on 50 distinct images, and a rescan of 500 stored images after a database
# change on two nodes. Figures are printed, never asserted.
#
# Usage: bench/cluster.sh            (from anywhere; needs curl, python3, psql)
#   IMAGES=50           distinct images per throughput phase
#   RESCAN_IMAGES=500   images in the rescan phase
#   WORKERS=1           scan workers per worker node
#   BLOBS=file          `file`: the nodes share one data dir's blobs; `s3`: a one-node
#                       Garage on loopback holds them (binary: $CRSCAN_GARAGE, else
#                       garage on PATH, else ~/.cache/crscan-tools/garage/bin/garage)
#   CRSCAN_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test  (a database
#                       named crscan_bench_<pid> is created beside it and dropped)
#   CRSCAN_BIN=...      use this crscan binary instead of `cargo build --release -p crscan`
#   KEEP=1              keep the work directory (data dir, node logs)
#
# Layout: every node is `crscan serve` on one PostgreSQL database and one data dir
# (blobs, the layer cache and the vulnerability database file are shared on disk; with
# the S3 backend they would be a bucket). An API node (`--workers 0`) takes the pushes
# and the Scan calls; the worker nodes (`--workers $WORKERS`) take the jobs from the
# store's queue.
#  1. one worker node: IMAGES distinct images (the scanner_e2e test image plus one
#     layer that differs per image) are pushed, IMAGES scans queued at once on the API
#     node; the time until all are done gives scans per minute;
#  2. two worker nodes: the same with IMAGES other images (so no layer is cached);
#  3. rescan: RESCAN_IMAGES images pushed and scanned once on two worker nodes; then
#     the database file is replaced (one more feed: a new content digest); both nodes'
#     schedulers notice and queue the rescans under the same keys; the time until every
#     image has a new READY result, and how many new results there are (one per image
#     means nothing was done twice).
#
# Measured here (2026-12-05, 2 cores shared with four other builds, load 5-8, debug
# binary, 1 worker per worker node, shared data dir, PostgreSQL 15):
#   one worker node 456 scans/min (50 in 6.6 s); two 692 scans/min (50 in 4.3 s):
#   ratio 1.52; rescan of 500 images after a database change on two nodes: 27.7 s
#   (1082 images/min), 500 new results, none rescanned twice.
#   BLOBS=s3 (one-node Garage, load 3-4): one node 484 scans/min (6.2 s), two 1143
#   (2.6 s): ratio 2.36 (noise of a shared machine: more than 2 says how much);
#   500 images pushed in 131 s, rescan after a database change 22.4 s (1339
#   images/min), 500 new results, none rescanned twice.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${CRSCAN_SHARED_DATA:-$ROOT/../shared/data}
IMAGES=${IMAGES:-50}
RESCAN_IMAGES=${RESCAN_IMAGES:-500}
WORKERS=${WORKERS:-1}
BLOBS=${BLOBS:-file}
GARAGE_PID=
PG_ADMIN=${CRSCAN_BENCH_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
WORK=$(mktemp -d /tmp/crscan-bench-cluster.XXXXXX)
PIDS=()
PG_NAME="crscan_bench_$$"
PG_URL="${PG_ADMIN%/*}/$PG_NAME"

stop_nodes() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  stop_nodes
  [ -z "$GARAGE_PID" ] || { kill "$GARAGE_PID" 2>/dev/null; wait "$GARAGE_PID" 2>/dev/null || true; }
  psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $PG_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

for tool in curl python3 psql; do
  command -v "$tool" >/dev/null || { echo "bench/cluster.sh: needs $tool" >&2; exit 1; }
done
[ -d "$DATA/vulndb" ] || { echo "bench/cluster.sh: shared data not found at $DATA (set CRSCAN_SHARED_DATA)" >&2; exit 1; }
if [ -z "${CRSCAN_BIN:-}" ]; then
  echo "building crscan (release)" >&2
  (cd "$ROOT" && cargo build --release -q -p crscan)
  CRSCAN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crscan"
fi
psql -q "$PG_ADMIN" -c "CREATE DATABASE $PG_NAME" >/dev/null
BLOBS_ARGS=()
if [ "$BLOBS" = s3 ]; then
  GARAGE=${CRSCAN_GARAGE:-$(command -v garage || echo "$HOME/.cache/crscan-tools/garage/bin/garage")}
  [ -x "$GARAGE" ] || { echo "bench/cluster.sh: BLOBS=s3 needs garage (scripts/install-garage.sh)" >&2; exit 1; }
  free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  RPC_PORT=$(free_port); S3_PORT=$(free_port)
  mkdir -p "$WORK/garage"
  cat > "$WORK/garage/garage.toml" <<TOML
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
  RUST_LOG=garage=warn "$GARAGE" -c "$WORK/garage/garage.toml" server > /dev/null 2> "$WORK/garage/garage.log" &
  GARAGE_PID=$!
  g() { RUST_LOG=warn "$GARAGE" -c "$WORK/garage/garage.toml" "$@"; }
  for _ in $(seq 1 200); do g status > /dev/null 2>&1 && break; sleep 0.3; done
  NODE=$(g node id -q | cut -d@ -f1)
  g layout assign -z dc1 -c 1G "$NODE" > /dev/null
  g layout apply --version 1 > /dev/null
  for _ in $(seq 1 100); do g bucket create crscan > /dev/null 2>&1 && break; sleep 0.3; done
  KEY=$(g key create crscan-bench)
  export AWS_ACCESS_KEY_ID=$(sed -n 's/^ *Key ID: *//p' <<< "$KEY")
  export AWS_SECRET_ACCESS_KEY=$(sed -n 's/^ *Secret key: *//p' <<< "$KEY")
  export AWS_REGION=garage AWS_ENDPOINT_URL="http://127.0.0.1:$S3_PORT"
  g bucket allow --read --write --owner crscan --key crscan-bench > /dev/null
  BLOBS_ARGS=(--blobs s3://crscan/bench)
fi
load() { cut -d' ' -f1-3 /proc/loadavg; }

FEEDS_A=("$DATA/vulndb/alpine-secdb/v3.4/main.yaml" "$DATA/vulndb/pypa-advisory-database/vulns/jinja2"
  "$DATA/vulndb/github-advisory-database-subset")
FEEDS_B=("${FEEDS_A[@]}" "$DATA/vulndb/alpine-secdb/v3.4/community.yaml")
SHARED="$WORK/data"
mkdir -p "$SHARED/vulndb"
"$CRSCAN_BIN" db build --db "$SHARED/vulndb/crscan.db" --from "${FEEDS_A[@]}" > "$WORK/db-a.out" 2>&1

# start_node NAME WORKERS: prints the node's URL.
start_node() {
  local log="$WORK/$1.log"
  CRSCAN_DB_AUTO_UPDATE=0 NO_COLOR=1 "$CRSCAN_BIN" serve --listen 127.0.0.1:0 \
    --data-dir "$SHARED" --store "$PG_URL" --workers "$2" --gc-enabled false "${BLOBS_ARGS[@]}" \
    > "$WORK/$1.out" 2> "$log" &
  PIDS+=($!)
  local deadline=$((SECONDS + 120))
  until grep -q "crscan serving on" "$WORK/$1.out" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "node $1 did not start:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  sed -n 's/^crscan serving on //p' "$WORK/$1.out"
}

cat > "$WORK/bench.py" <<'PY'
import gzip, hashlib, http.client, io, json, os, sys, tarfile, time, urllib.parse

DATA = os.environ["DATA"]

class Client:
    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)

    def call(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
                if attempt:
                    raise

    def json(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        status, payload = self.call(method, path, data, {"Content-Type": "application/json"})
        if status != 200:
            raise SystemExit(f"{method} {path}: HTTP {status}: {payload[:300]!r}")
        return json.loads(payload)

def sha(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()

def layer(files):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for path, contents in files:
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(contents), 0o644
            tar.addfile(info, io.BytesIO(contents))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, compresslevel=1, mtime=0), sha(tar_bytes)

def test_image(variant):
    """The scanner_e2e test image (Alpine 3.4 apk database, Jinja2 2.10, lodash and
    minimist), each layer made distinct by the variant, so nothing is cached."""
    installed = open(f"{DATA}/catalog/apk/trivy/installed", "rb").read()
    os_release = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME="Alpine Linux v3.4"\n'
    lock = json.dumps({"name": "app", "version": "1.0.0", "lockfileVersion": 2, "requires": True,
        "packages": {"": {"name": "app", "version": "1.0.0", "dependencies": {"lodash": "4.17.15", "minimist": "1.2.5"}},
                     "node_modules/lodash": {"version": "4.17.15"}, "node_modules/minimist": {"version": "1.2.5"}},
        "dependencies": {"lodash": {"version": "4.17.15"}, "minimist": {"version": "1.2.5"}}}).encode()
    stamp = f"variant {variant}\n".encode()
    layers = [layer([("etc/os-release", os_release), ("lib/apk/db/installed", installed), ("etc/bench-variant", stamp)]),
              layer([("usr/lib/python3.5/site-packages/Jinja2-2.10.dist-info/METADATA",
                      b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n"),
                     ("app/package-lock.json", lock), ("app/bench-variant", stamp)])]
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff for _, diff in layers]}}).encode()
    blobs = {sha(data): data for data, _ in layers}
    blobs[sha(config)] = config
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(data), "size": len(data)}
                   for data, _ in layers]}).encode()
    return blobs, manifest

def push(client, repository, tag, blobs, manifest):
    for digest, data in blobs.items():
        status, payload = client.call("POST", f"/v2/{repository}/blobs/uploads/?digest={digest}", data,
                                      {"Content-Type": "application/octet-stream"})
        if status != 201:
            raise SystemExit(f"blob upload {digest}: HTTP {status} {payload[:200]!r}")
    status, payload = client.call("PUT", f"/v2/{repository}/manifests/{tag}", manifest,
                                  {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
    if status != 201:
        raise SystemExit(f"manifest push: HTTP {status} {payload[:200]!r}")
    return sha(manifest)

def image_ids(client, digests):
    found, token = {}, ""
    while True:
        page = client.json("GET", f"/container-registry/v1/images?folderId=default&pageSize=1000&pageToken={token}")
        for image in page.get("images", []):
            found[image["digest"]] = image["id"]
        token = page.get("nextPageToken", "")
        if not token:
            return [found[digest] for digest in digests]

def push_images(client, repository, first, count):
    digests = [push(client, repository, f"v{first + index}", *test_image(first + index)) for index in range(count)]
    return image_ids(client, digests)

def scan_all(client, ids):
    operations = [client.json("POST", "/container-registry/v1/scans", {"imageId": image_id})["id"] for image_id in ids]
    pending = set(operations)
    while pending:
        for operation in list(pending):
            done = client.json("GET", f"/operations/{operation}")
            if done.get("done"):
                if "error" in done:
                    raise SystemExit(f"scan failed: {done['error']}")
                pending.discard(operation)
        time.sleep(0.1)

def cmd_throughput(url, repository, first, count):
    client = Client(url)
    ids = push_images(client, repository, int(first), int(count))
    start = time.perf_counter()
    scan_all(client, ids)
    elapsed = time.perf_counter() - start
    print(json.dumps({"images": len(ids), "seconds": elapsed, "per_minute": 60 * len(ids) / elapsed}))

def results(client, image_id):
    return client.json("GET", f"/container-registry/v1/scans?imageId={image_id}&pageSize=100").get("scanResults", [])

def cmd_rescan(url, repository, first, count, *rebuild):
    import subprocess
    client = Client(url)
    count = int(count)
    start = time.perf_counter()
    ids = push_images(client, repository, int(first), count)
    pushed = time.perf_counter() - start
    start = time.perf_counter()
    scan_all(client, ids)
    first_scan = time.perf_counter() - start
    before = {image_id: {row["id"] for row in results(client, image_id)} for image_id in ids}
    time.sleep(2)  # both schedulers have looked at the first database
    subprocess.run(list(rebuild), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    changed = time.perf_counter()
    pending = set(ids)
    new_results = {}
    while pending:
        for image_id in list(pending):
            rows = [row for row in results(client, image_id) if row["id"] not in before[image_id]]
            if any(row["status"] == "READY" for row in rows):
                pending.discard(image_id)
        if time.perf_counter() - changed > 1800:
            raise SystemExit(f"{len(pending)} of {count} images not rescanned after 1800 s")
        time.sleep(0.5)
    total = time.perf_counter() - changed
    time.sleep(3)  # a rescan queued twice would show up by now
    for image_id in ids:
        new_results[image_id] = len([row for row in results(client, image_id) if row["id"] not in before[image_id]])
    twice = sum(1 for n in new_results.values() if n > 1)
    print(json.dumps({"images": count, "push_s": pushed, "first_scan_s": first_scan,
                      "rescan_s": total, "rescans_per_minute": 60 * count / total,
                      "images_rescanned_twice": twice,
                      "new_results": sum(new_results.values())}))

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1]](*sys.argv[2:])
PY
export DATA
bench() { python3 "$WORK/bench.py" "$@"; }
field() { python3 -c "import json,sys; print(round(json.loads(sys.argv[1])['$2'], 2))" "$1"; }

echo "crscan cluster benchmark: $(nproc) cores, binary $CRSCAN_BIN, $WORKERS worker(s) per worker node, blobs: $BLOBS"
API=$(start_node api 0)

echo "== one worker node (load $(load))"
start_node worker-1 "$WORKERS" > /dev/null
ONE=$(bench throughput "$API" default/one 0 "$IMAGES")
echo "  $IMAGES scans in $(field "$ONE" seconds) s: $(field "$ONE" per_minute) scans/min"

echo "== two worker nodes (load $(load))"
start_node worker-2 "$WORKERS" > /dev/null
TWO=$(bench throughput "$API" default/two 10000 "$IMAGES")
echo "  $IMAGES scans in $(field "$TWO" seconds) s: $(field "$TWO" per_minute) scans/min"
python3 -c "import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); print(f'  ratio two/one: {b[\"per_minute\"]/a[\"per_minute\"]:.2f}')" "$ONE" "$TWO"

echo "== rescan of $RESCAN_IMAGES images after a database change, two worker nodes (load $(load))"
RESCAN=$(bench rescan "$API" default/rescan 20000 "$RESCAN_IMAGES" \
  "$CRSCAN_BIN" db build --db "$SHARED/vulndb/crscan.db" --from "${FEEDS_B[@]}")
echo "  push $(field "$RESCAN" push_s) s, first scan of all $(field "$RESCAN" first_scan_s) s"
echo "  rescan after the change: $(field "$RESCAN" rescan_s) s ($(field "$RESCAN" rescans_per_minute) images/min)"
echo "  new results: $(field "$RESCAN" new_results) for $RESCAN_IMAGES images; images rescanned twice: $(field "$RESCAN" images_rescanned_twice)"
