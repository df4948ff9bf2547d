#!/usr/bin/env bash
# `crscan mirror` next to `skopeo sync` (Debian's skopeo) of the same repositories, from
# Debian's `docker-registry` into a fresh `crscan serve`, in the same run: a 6-layer
# Debian image plus 20 small repositories. Prints the median wall time of each, the
# crscan/skopeo ratio and the bytes each left at the destination; then a second
# `crscan mirror` over the unchanged source (nothing to copy), and a remote
# `crscan scan docker://…` next to `crscan scan` of the local copy.
#
# Usage: bench/mirror.sh [RUNS]   (default 3; needs skopeo, docker-registry, python3, curl)
# The crscan binary is $CRSCAN_BIN, else built with `cargo build --release`.
# The 6-layer image is bench/sbom.sh's (${CRSCAN_BENCH_CACHE:-$HOME/.cache/crscan-bench}/image)
# when it has been built; otherwise one is made here: the debootstrap root filesystem of
# the test cache (${CRSCAN_TEST_CACHE:-$HOME/.cache/crscan-test}) as the first layer and
# five layers of generated files.
set -euo pipefail

RUNS=${1:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CRSCAN_BENCH_CACHE:-$HOME/.cache/crscan-bench}
TEST_CACHE=${CRSCAN_TEST_CACHE:-$HOME/.cache/crscan-test}
FEEDS=${CRSCAN_FEEDS:-$ROOT/../shared/data/vulndb}
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

for tool in skopeo docker-registry python3 curl; do
  command -v "$tool" >/dev/null || { echo "bench/mirror.sh: needs $tool (apt-get install -y $tool)" >&2; exit 1; }
done
if [ -z "${CRSCAN_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p crscan >&2)
  CRSCAN_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/crscan"
fi

# --- the images -------------------------------------------------------------------
LAYOUT=$CACHE/image
TAG=bench
if [ ! -f "$LAYOUT/index.json" ]; then
  LAYOUT=$WORK/image
  tarball=$TEST_CACHE/debootstrap-bookworm-minbase.tar
  [ -f "$tarball" ] || { echo "bench/mirror.sh: run bench/sbom.sh or the sbom tests first (no $tarball)" >&2; exit 1; }
  echo "making a 6-layer image from $tarball" >&2
  python3 - "$LAYOUT" "$tarball" "$TAG" <<'PY'
import gzip, hashlib, io, json, os, random, sys, tarfile
layout, tarball, tag = sys.argv[1:]
os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    open(f"{layout}/blobs/sha256/{digest}", "wb").write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}
def generated(index):
    out = io.BytesIO()
    rng = random.Random(index)
    with tarfile.open(fileobj=out, mode="w") as tar:
        for n in range(40):
            words = " ".join(rng.choice(["alpha", "beta", "gamma", "delta", str(rng.random())]) for _ in range(20000))
            data = words.encode()
            info = tarfile.TarInfo(f"opt/layer{index}/file{n}.txt"); info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()
tars = [open(tarball, "rb").read()] + [generated(i) for i in range(1, 6)]
layers, diff_ids = [], []
for data in tars:
    d = blob(gzip.compress(data, 1)); d["mediaType"] = "application/vnd.oci.image.layer.v1.tar+gzip"
    layers.append(d); diff_ids.append("sha256:" + hashlib.sha256(data).hexdigest())
config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": diff_ids}}).encode())
config["mediaType"] = "application/vnd.oci.image.config.v1+json"
manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": config, "layers": layers}).encode())
manifest["mediaType"] = "application/vnd.oci.image.manifest.v1+json"
manifest["annotations"] = {"org.opencontainers.image.ref.name": tag}
json.dump({"schemaVersion": 2, "manifests": [manifest]}, open(f"{layout}/index.json", "w"))
open(f"{layout}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
fi
SMALL=$WORK/small
python3 - "$SMALL" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
layout = sys.argv[1]
os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)
def blob(data, media):
    digest = hashlib.sha256(data).hexdigest()
    open(f"{layout}/blobs/sha256/{digest}", "wb").write(data)
    return {"mediaType": media, "digest": f"sha256:{digest}", "size": len(data)}
entries = []
for n in range(1, 21):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        data = (f"small repository {n}\n" * 2000).encode()
        info = tarfile.TarInfo(f"srv/{n}.txt"); info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    raw = out.getvalue()
    layer = blob(gzip.compress(raw, 6), "application/vnd.oci.image.layer.v1.tar+gzip")
    config = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode(),
        "application/vnd.oci.image.config.v1+json")
    manifest = blob(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": config, "layers": [layer]}).encode(), "application/vnd.oci.image.manifest.v1+json")
    manifest["annotations"] = {"org.opencontainers.image.ref.name": f"s{n:02d}"}
    entries.append(manifest)
json.dump({"schemaVersion": 2, "manifests": entries}, open(f"{layout}/index.json", "w"))
open(f"{layout}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY

# --- the source: docker-registry on loopback ----------------------------------------
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 200); do curl -fs "http://$1/v2/" >/dev/null 2>&1 && return 0; curl -s -o /dev/null -w '%{http_code}' "http://$1/v2/" 2>/dev/null | grep -q 401 && return 0; sleep 0.05; done; echo "no server at $1" >&2; exit 1; }
SRC_PORT=$(free_port)
SRC=127.0.0.1:$SRC_PORT
cat > "$WORK/registry.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $WORK/registry
http:
  addr: $SRC
YAML
docker-registry serve "$WORK/registry.yml" >/dev/null 2>&1 &
PIDS+=($!)
wait_http "$SRC"
skopeo copy -q --dest-tls-verify=false "oci:$LAYOUT:$TAG" "docker://$SRC/bench/debian:$TAG" >/dev/null
for n in $(seq -w 1 20); do
  skopeo copy -q --dest-tls-verify=false "oci:$SMALL:s$n" "docker://$SRC/bench/small/r$n:1" >/dev/null
done
layers=$(python3 -c "import json; i=json.load(open('$LAYOUT/index.json')); print(i['manifests'][0]['digest'].split(':')[1])")
echo "source: bench/debian:$TAG ($(python3 -c "import json; print(len(json.load(open('$LAYOUT/blobs/sha256/$layers'))['layers']))") layers) and 20 repositories bench/small/rNN:1 at $SRC"

# --- the destination: a fresh crscan each run ---------------------------------------
DEST_PID=
start_crscan() { # data_dir -> DEST
  local port; port=$(free_port)
  DEST=127.0.0.1:$port
  CRSCAN_TOKENS=bench-token:pusher+admin CRSCAN_DB_AUTO_UPDATE=0 RUST_LOG=error \
    "$CRSCAN_BIN" serve --listen "$DEST" --data-dir "$1" >/dev/null 2>&1 &
  DEST_PID=$!
  wait_http "$DEST"
}
stop_crscan() { kill "$DEST_PID" 2>/dev/null || true; wait "$DEST_PID" 2>/dev/null || true; }
bytes_in() { du -sb "$1/blobs" 2>/dev/null | cut -f1; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

cat > "$WORK/sync.yml" <<YAML
$SRC:
  tls-verify: false
  images-by-tag-regex:
    bench/debian: '.*'
$(for n in $(seq -w 1 20); do echo "    bench/small/r$n: '.*'"; done)
YAML

: > "$WORK/crscan.times"; : > "$WORK/skopeo.times"; : > "$WORK/second.times"
for run in $(seq "$RUNS"); do
  start_crscan "$WORK/dest-crscan-$run"
  start=$(now)
  "$CRSCAN_BIN" mirror --src-tls-verify=false --dest-tls-verify=false --dest-creds ci:bench-token \
    "docker://$SRC/bench" "docker://$DEST/default/bench" 2> "$WORK/mirror-$run.log"
  echo "$(now) - $start" | bc >> "$WORK/crscan.times"
  start=$(now)
  "$CRSCAN_BIN" mirror --src-tls-verify=false --dest-tls-verify=false --dest-creds ci:bench-token \
    "docker://$SRC/bench" "docker://$DEST/default/bench" 2> "$WORK/second-$run.log"
  echo "$(now) - $start" | bc >> "$WORK/second.times"
  stop_crscan
  CRSCAN_BYTES=$(bytes_in "$WORK/dest-crscan-$run")

  start_crscan "$WORK/dest-skopeo-$run"
  start=$(now)
  skopeo sync --src yaml --dest docker --dest-tls-verify=false --dest-creds ci:bench-token \
    "$WORK/sync.yml" "$DEST/default" > "$WORK/skopeo-$run.log" 2>&1 || { cat "$WORK/skopeo-$run.log" >&2; exit 1; }
  echo "$(now) - $start" | bc >> "$WORK/skopeo.times"
  stop_crscan
  SKOPEO_BYTES=$(bytes_in "$WORK/dest-skopeo-$run")
done
crscan_time=$(median < "$WORK/crscan.times")
skopeo_time=$(median < "$WORK/skopeo.times")
second_time=$(median < "$WORK/second.times")
echo "crscan mirror:  $(printf %.2f "$crscan_time") s, $CRSCAN_BYTES bytes at the destination"
echo "  $(grep ' repositories; ' "$WORK/mirror-1.log")"
echo "skopeo sync:    $(printf %.2f "$skopeo_time") s, $SKOPEO_BYTES bytes at the destination"
echo "ratio crscan/skopeo: $(echo "scale=2; $crscan_time / $skopeo_time" | bc)"
echo "second crscan mirror (unchanged source): $(printf %.2f "$second_time") s"
echo "  $(grep ' repositories; ' "$WORK/second-1.log")"

# --- remote scan next to local scan ------------------------------------------------
DB=$WORK/crscan.db
"$CRSCAN_BIN" db build --db "$DB" --from "$FEEDS/debian-security-tracker" >/dev/null 2>&1
: > "$WORK/remote.times"; : > "$WORK/local.times"
for run in $(seq "$RUNS"); do
  start=$(now)
  "$CRSCAN_BIN" scan --db "$DB" --format json --tls-verify=false "docker://$SRC/bench/debian:$TAG" > "$WORK/remote.json"
  echo "$(now) - $start" | bc >> "$WORK/remote.times"
  start=$(now)
  "$CRSCAN_BIN" scan --db "$DB" --format json "oci:$LAYOUT:$TAG" > "$WORK/local.json"
  echo "$(now) - $start" | bc >> "$WORK/local.times"
done
remote_time=$(median < "$WORK/remote.times")
local_time=$(median < "$WORK/local.times")
same=$(python3 -c "import json; a=json.load(open('$WORK/remote.json')); b=json.load(open('$WORK/local.json')); print('same' if a['findings']==b['findings'] else 'DIFFERENT')")
echo "scan docker://: $(printf %.2f "$remote_time") s; scan oci: (local copy) $(printf %.2f "$local_time") s; ratio $(echo "scale=2; $remote_time / $local_time" | bc); findings $same ($(python3 -c "import json; print(len(json.load(open('$WORK/local.json'))['findings']))"))"
