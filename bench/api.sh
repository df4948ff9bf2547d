#!/usr/bin/env bash
# Benchmark of the scanner's management API on loopback (issue 6): throughput and
# latency percentiles of `POST /container-registry/v1/scans` and `GET /operations/{id}`
# under wrk, the time from Scan to a done operation for the end-to-end test image
# (cold and warm layer cache), and the time to rescan 100 stored images after the
# vulnerability database changes. Figures are printed, never asserted.
#
# Usage: bench/api.sh                 (from anywhere; needs wrk, curl, python3)
#   DURATION=10      seconds per wrk run
#   CONNECTIONS="4 16"  wrk connection counts
#   WARM_RUNS=5      warm Scan-to-done runs (the median is reported)
#   RESCAN_IMAGES=100  images in the rescan measurement
#   CRSCAN_BIN=...   use this crscan binary instead of `cargo build --release -p crscan`
#   KEEP=1           keep the work directory (data dirs, server logs, wrk output)
# wrk is Debian's package: `apt-get install wrk`.
#
# What runs where (each phase starts its own `crscan serve --listen 127.0.0.1:0` on a
# fresh data dir, SQLite store, CRSCAN_DB_AUTO_UPDATE=0):
#  1. API only (`--workers 0`): wrk POST /scans, then GET /operations/{id} of a running
#     operation. Nothing drains the queue, so every POST leaves a queued job; the
#     queue size after each run is printed (the jobs table grows by req/s x DURATION).
#  2. With the default workers (one per core): Scan-to-done of the test image (first
#     scan: cold layer cache; then WARM_RUNS warm ones), polling the operation every
#     10 ms; the workers' throughput (40 scans queued at once); wrk GET
#     /operations/{id} of a done operation; wrk POST /scans paced (wrk's `delay`
#     hook) at about half of that throughput, so the queue stays
#     bounded and the latency is that of a server that is scanning; then unpaced, where
#     the queue grows without bound (the backlog is printed: those latencies are of a
#     server whose workers are saturated and whose queue is growing).
#  3. Rescan: RESCAN_IMAGES distinct images (the test image plus a one-file layer that
#     differs per image) are pushed over the registry API and scanned once; then the
#     database is rebuilt with one more feed (a new content digest) while the server
#     runs, and the time until every image has a new READY result is measured, split
#     into detection (the scheduler stats the database file every second) and
#     rescanning (the workers work through the queued rescans).
#
# Scan to done includes the time an idle worker takes to notice the queued job: the
# workers poll every 250 ms; the server wakes them when a scan is queued on it.
#
# The machine is shared: the load average is printed before each phase; wrk runs on
# the same cores as the server (2 threads), so req/s is a lower bound of the server's.
set -euo pipefail

DURATION=${DURATION:-10}
CONNECTIONS=${CONNECTIONS:-"4 16"}
WARM_RUNS=${WARM_RUNS:-5}
RESCAN_IMAGES=${RESCAN_IMAGES:-100}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATA=${CRSCAN_SHARED_DATA:-$ROOT/../shared/data}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/crscan-api-bench.XXXXXX")
SERVER_PID=
URL=

kill_server() {
  if [ -n "$SERVER_PID" ]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=
  fi
}
cleanup() {
  kill_server
  if [ -n "${KEEP:-}" ]; then echo "work directory kept: $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

for tool in curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/api.sh: needs $tool (apt-get install $tool)" >&2; exit 1; }
done
command -v wrk >/dev/null || { echo "bench/api.sh: needs wrk (apt-get install wrk)" >&2; exit 1; }
[ -d "$DATA/vulndb" ] || { echo "bench/api.sh: shared data not found at $DATA (set CRSCAN_SHARED_DATA)" >&2; exit 1; }
if [ -z "${CRSCAN_BIN:-}" ]; then
  echo "building crscan (release)" >&2
  (cd "$ROOT" && cargo build --release -q -p crscan)
  CRSCAN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crscan"
fi
CORES=$(nproc)
load() { cut -d' ' -f1-3 /proc/loadavg; }

# --- the vulnerability databases ------------------------------------------------------
# A: the feeds of crates/crscan/tests/scanner_e2e.rs; B: A plus Alpine 3.4 community,
# so its content digest differs.
FEEDS_A=("$DATA/vulndb/alpine-secdb/v3.4/main.yaml" "$DATA/vulndb/pypa-advisory-database/vulns/jinja2"
  "$DATA/vulndb/github-advisory-database-subset")
FEEDS_B=("${FEEDS_A[@]}" "$DATA/vulndb/alpine-secdb/v3.4/community.yaml")
"$CRSCAN_BIN" db build --db "$WORK/db-a.db" --from "${FEEDS_A[@]}" > "$WORK/db-a.out" 2>&1

# --- the client side: image building, pushing, polling (python3 standard library) -----
cat > "$WORK/bench.py" <<'PY'
import gzip, hashlib, http.client, io, json, os, sqlite3, statistics, subprocess, sys, tarfile, time
import urllib.parse

DATA = os.environ["DATA"]

class Client:
    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.host, self.port = parsed.hostname, parsed.port
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            try:
                self.conn.request(method, path, body=body, headers=headers or {})
                response = self.conn.getresponse()
                return response.status, response.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise

    def json(self, method, path, body=None, expect=200):
        data = None if body is None else json.dumps(body).encode()
        status, payload = self.call(method, path, data, {"Content-Type": "application/json"})
        if status != expect:
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

_shared = None
def test_image(variant=None):
    """The image of scanner_e2e.rs `write_image` (Alpine 3.4 apk database, Jinja2 2.10,
    lodash and minimist from an npm lockfile); with `variant`, one more layer holding
    one small file that makes the image distinct."""
    global _shared
    if _shared is None:
        installed = open(f"{DATA}/catalog/apk/trivy/installed", "rb").read()
        os_release = b'NAME="Alpine Linux"\nID=alpine\nVERSION_ID=3.4.6\nPRETTY_NAME="Alpine Linux v3.4"\n'
        lock = json.dumps({"name": "app", "version": "1.0.0", "lockfileVersion": 2, "requires": True,
            "packages": {"": {"name": "app", "version": "1.0.0", "dependencies": {"lodash": "4.17.15", "minimist": "1.2.5"}},
                         "node_modules/lodash": {"version": "4.17.15"}, "node_modules/minimist": {"version": "1.2.5"}},
            "dependencies": {"lodash": {"version": "4.17.15"}, "minimist": {"version": "1.2.5"}}}).encode()
        _shared = [layer([("etc/os-release", os_release), ("lib/apk/db/installed", installed)]),
                   layer([("usr/lib/python3.5/site-packages/Jinja2-2.10.dist-info/METADATA",
                           b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n"),
                          ("app/package-lock.json", lock)])]
    layers = list(_shared)
    if variant is not None:
        layers.append(layer([("etc/bench-variant", f"variant {variant}\n".encode())]))
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
        status, _ = client.call("HEAD", f"/v2/{repository}/blobs/{digest}")
        if status == 200:
            continue
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
            if image["digest"] in digests:
                found[image["digest"]] = image["id"]
        token = page.get("nextPageToken", "")
        if not token:
            break
    return [found[digest] for digest in digests]

def start_scan(client, image_id):
    operation = client.json("POST", "/container-registry/v1/scans", {"imageId": image_id})
    return operation["id"]

def wait_done(client, operation_id, poll):
    while True:
        operation = client.json("GET", f"/operations/{operation_id}")
        if operation.get("done"):
            if "error" in operation:
                raise SystemExit(f"scan failed: {operation['error']}")
            return operation
        time.sleep(poll)

def cmd_push_test(url, repository, tag):
    client = Client(url)
    blobs, manifest = test_image()
    print(image_ids(client, [push(client, repository, tag, blobs, manifest)])[0])

def cmd_scan_done(url, image_id, runs, poll_ms):
    """Scan-to-done times: the first run and the median of the others."""
    client, times = Client(url), []
    for _ in range(int(runs)):
        start = time.perf_counter()
        operation = wait_done(client, start_scan(client, image_id), int(poll_ms) / 1000)
        times.append(time.perf_counter() - start)
    counts = operation["response"]["vulnerabilities"]
    print(json.dumps({"cold": times[0], "warm": times[1:], "counts": counts, "operation": operation["id"]}))

def cmd_scan_batch(url, image_id, count):
    """Queues COUNT scans of one image at once and waits for all: scans per second."""
    client = Client(url)
    start = time.perf_counter()
    operations = [start_scan(client, image_id) for _ in range(int(count))]
    for operation in operations:
        wait_done(client, operation, 0.01)
    print(f"{int(count) / (time.perf_counter() - start):.1f}")

def cmd_queue(sqlite_path):
    """Jobs by state, read from the store's SQLite file (read-only)."""
    db = sqlite3.connect(f"file:{sqlite_path}?mode=ro", uri=True, timeout=30)
    rows = dict(db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())
    ops = db.execute("SELECT COUNT(*) FROM operations").fetchone()[0]
    print(f"queued {rows.get('queued', 0)}, running {rows.get('running', 0)}, done {rows.get('done', 0)} "
          f"(operations table: {ops} rows)")

def poll_results(client, repository_id):
    rows, token = [], ""
    while True:
        page = client.json("GET", f"/container-registry/v1/scans?repositoryId={repository_id}&pageSize=1000&pageToken={token}")
        rows += page.get("scanResults", [])
        token = page.get("nextPageToken", "")
        if not token:
            return rows

def cmd_rescan(url, repository, count, server_log, started_at, *rebuild):
    client = Client(url)
    count = int(count)
    # Push COUNT distinct images.
    start = time.perf_counter()
    digests = []
    for index in range(count):
        blobs, manifest = test_image(variant=index)
        digests.append(push(client, repository, f"v{index}", blobs, manifest))
    ids = image_ids(client, digests)
    pushed = time.perf_counter() - start
    registries = client.json("GET", "/container-registry/v1/registries?folderId=default")["registries"]
    repos = client.json("GET", f"/container-registry/v1/repositories?registryId={registries[0]['id']}&pageSize=1000")
    repository_id = [r["id"] for r in repos["repositories"] if r["name"].endswith("/" + repository.split("/", 1)[1])][0]
    # Scan each once.
    start = time.perf_counter()
    operations = [start_scan(client, image_id) for image_id in ids]
    for operation in operations:
        wait_done(client, operation, 0.05)
    first_scan = time.perf_counter() - start
    before = {row["id"] for row in poll_results(client, repository_id)}
    # Let the scheduler see the old database first (it looks at start and then stats
    # the file every second), so the change is a change and not the first look.
    settle = float(started_at) + 6.5 - time.time()
    if settle > 0:
        time.sleep(settle)
    start = time.perf_counter()
    subprocess.run(list(rebuild), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    changed_wall = time.time()
    changed = time.perf_counter()
    rebuild_s = changed - start
    first_queued = first_ready = None
    while True:
        rows = [row for row in poll_results(client, repository_id) if row["id"] not in before]
        now = time.perf_counter() - changed
        if rows and first_queued is None:
            first_queued = now
        ready = {row["imageId"] for row in rows if row["status"] == "READY"}
        if ready and first_ready is None:
            first_ready = now
        if len(ready & set(ids)) == count:
            total = now
            break
        if now > 600:
            raise SystemExit(f"only {len(ready)} of {count} images rescanned after 600 s")
        time.sleep(0.05)
    # The scheduler's own log line, for the exact detection time.
    detected_log = None
    for line in open(server_log, errors="replace"):
        if "vulnerability database changed" in line:
            stamp = line.split()[0]
            from datetime import datetime
            detected_log = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() - changed_wall
    print(json.dumps({"push_s": pushed, "first_scan_s": first_scan, "rebuild_s": rebuild_s,
                      "detected_poll_s": first_queued, "detected_log_s": detected_log,
                      "first_ready_s": first_ready, "total_s": total}))

if __name__ == "__main__":
    globals()["cmd_" + sys.argv[1].replace("-", "_")](*sys.argv[2:])
PY
export DATA
bench() { python3 "$WORK/bench.py" "$@"; }

# --- the server -------------------------------------------------------------------------
start_server() { # name workers
  local dir="$WORK/$1"
  mkdir -p "$dir/vulndb"
  cp "$WORK/db-a.db" "$dir/vulndb/crscan.db"
  CRSCAN_DB_AUTO_UPDATE=0 "$CRSCAN_BIN" serve --listen 127.0.0.1:0 --data-dir "$dir" \
    --db "$dir/vulndb/crscan.db" --workers "$2" > "$dir/serve.out" 2> "$dir/serve.log" &
  SERVER_PID=$!
  SERVER_STARTED=$(date +%s.%N)
  for _ in $(seq 200); do
    URL=$(sed -n 's/^crscan serving on \(http:[^ ]*\).*/\1/p' "$dir/serve.out")
    [ -n "$URL" ] && return 0
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.05
  done
  echo "crscan serve did not start:" >&2
  tail -5 "$dir/serve.log" >&2
  exit 1
}
queue() { bench queue "$WORK/$1/crscan.db"; }

# run_wrk LABEL CONNECTIONS PATH [wrk args...]: prints req/s, p50, p99, max and errors.
to_ms() { awk '{ v = $1; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v);
  f = (u == "us") ? 0.001 : (u == "ms") ? 1 : (u == "s") ? 1000 : (u == "m") ? 60000 : 1;
  printf "%.2f", v * f }'; }
run_wrk() {
  local label=$1 conns=$2 path=$3; shift 3
  local out
  out="$WORK/wrk-$(echo "$label" | tr -c 'A-Za-z0-9\n' _)-c$conns.txt"
  wrk --latency -t "$((conns < 2 ? conns : 2))" -c "$conns" -d "${DURATION}s" "$@" "$URL$path" > "$out"
  local rps p50 p99 max errors
  rps=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$out")
  p50=$(awk '$1 == "50%" { print $2 }' "$out" | to_ms)
  p99=$(awk '$1 == "99%" { print $2 }' "$out" | to_ms)
  max=$(awk '$1 == "Latency" && NF >= 4 { print $4 }' "$out" | to_ms)
  errors=$(awk '/Non-2xx|Socket errors/ { sub(/^ +/, ""); printf "%s; ", $0 }' "$out")
  printf '%-34s c=%-3s %8s req/s   p50 %7s ms   p99 %7s ms   max %8s ms   %s\n' \
    "$label" "$conns" "$rps" "$p50" "$p99" "$max" "${errors:-no errors}"
}

echo "crscan: $CRSCAN_BIN; $CORES cores; wrk $(wrk -v 2>&1 | head -1 | cut -d' ' -f2); ${DURATION}s per wrk run"

# --- 1. API only --------------------------------------------------------------------------
echo
echo "== 1. API only (--workers 0; every POST leaves a queued job); load $(load)"
start_server api 0
IMAGE=$(bench push-test "$URL" default/app 1.0)
export BENCH_IMAGE_ID=$IMAGE
unset BENCH_DELAY_MS
for conns in $CONNECTIONS; do
  run_wrk "POST /scans" "$conns" /container-registry/v1/scans -s "$ROOT/bench/api_post_scan.lua"
  echo "   queue after: $(queue api)"
done
OPERATION=$(curl -fsS -X POST -H 'Content-Type: application/json' -d "{\"imageId\":\"$IMAGE\"}" \
  "$URL/container-registry/v1/scans" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
for conns in $CONNECTIONS; do
  run_wrk "GET /operations/{id} (running)" "$conns" "/operations/$OPERATION"
done
kill_server

# --- 2. With workers ----------------------------------------------------------------------
echo
echo "== 2. With the default workers ($CORES); load $(load)"
start_server workers "$CORES"
IMAGE=$(bench push-test "$URL" default/app 1.0)
export BENCH_IMAGE_ID=$IMAGE
SCAN=$(bench scan-done "$URL" "$IMAGE" "$((WARM_RUNS + 1))" 10)
python3 - "$SCAN" <<'PY'
import json, statistics, sys
scan = json.loads(sys.argv[1])
print(f"Scan to done (poll 10 ms): cold cache {scan['cold'] * 1000:.0f} ms; warm median "
      f"{statistics.median(scan['warm']) * 1000:.0f} ms (runs {', '.join(f'{t * 1000:.0f}' for t in scan['warm'])} ms); "
      f"findings {scan['counts']}")
PY
DONE_OPERATION=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["operation"])' "$SCAN")
DRAIN=$(bench scan-batch "$URL" "$IMAGE" 40)
echo "worker throughput (40 scans queued at once, warm cache): $DRAIN scans/s"
for conns in $CONNECTIONS; do
  run_wrk "GET /operations/{id} (done)" "$conns" "/operations/$DONE_OPERATION"
done
# Paced: each connection waits so that the offered rate is about half of what the
# workers drained above.
for conns in $CONNECTIONS; do
  export BENCH_DELAY_MS=$(python3 -c "print(max(1, round(2 * $conns * 1000 / $DRAIN)))")
  rate=$(( conns * 1000 / BENCH_DELAY_MS ))
  run_wrk "POST /scans paced (~$rate/s)" "$conns" /container-registry/v1/scans -s "$ROOT/bench/api_post_scan.lua"
  echo "   queue after: $(queue workers)"
done
unset BENCH_DELAY_MS
for conns in $CONNECTIONS; do
  run_wrk "POST /scans unpaced (backlog)" "$conns" /container-registry/v1/scans -s "$ROOT/bench/api_post_scan.lua"
  echo "   queue after: $(queue workers)"
done
kill_server

# --- 3. Rescan after a database change -----------------------------------------------------
echo
echo "== 3. Rescan of $RESCAN_IMAGES images after a database change ($CORES workers); load $(load)"
start_server rescan "$CORES"
RESCAN=$(bench rescan "$URL" default/rescan "$RESCAN_IMAGES" "$WORK/rescan/serve.log" "$SERVER_STARTED" \
  "$CRSCAN_BIN" db build --db "$WORK/rescan/vulndb/crscan.db" --from "${FEEDS_B[@]}")
python3 - "$RESCAN" "$RESCAN_IMAGES" <<'PY'
import json, sys
r, n = json.loads(sys.argv[1]), int(sys.argv[2])
detected = r["detected_log_s"] if r["detected_log_s"] is not None else r["detected_poll_s"]
print(f"push of {n} images {r['push_s']:.1f} s; first scan of all {r['first_scan_s']:.1f} s "
      f"({r['first_scan_s'] / n * 1000:.0f} ms/image); database rebuild {r['rebuild_s']:.1f} s")
print(f"after the database file changed: detected {detected:.2f} s (scheduler log; first new result seen by polling "
      f"{r['detected_poll_s']:.2f} s), first READY {r['first_ready_s']:.2f} s, all {n} READY {r['total_s']:.2f} s")
print(f"  = detection {detected:.2f} s + rescanning {r['total_s'] - detected:.2f} s "
      f"({(r['total_s'] - detected) / n * 1000:.0f} ms/image)")
print("  (the scheduler stats the database file every second, so detection is 0-1 s plus")
print("  reading the new database's digest)")
PY
echo "   queue after: $(queue rescan)"
kill_server
echo
echo "load at the end: $(load)"
