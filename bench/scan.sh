#!/usr/bin/env bash
# Benchmark of `crscan scan` on a debootstrap Debian image: the whole scan next to
# the `gzip -dc` floor of its layers, the matching step alone, and re-matching the
# stored inventory (`crscan scan --sbom`).
#
# Usage: bench/scan.sh            (from the repository root)
#
# The image is the one bench/sbom.sh builds and caches
# (${CRSCAN_BENCH_CACHE:-$HOME/.cache/crscan-bench}/image, tag `bench`) when it is
# there; otherwise a one-layer OCI layout is made here from the debootstrap tarball
# that the end-to-end tests cache (${CRSCAN_TEST_CACHE:-$HOME/.cache/crscan-test}/
# debootstrap-bookworm-minbase.tar; run bench/sbom.sh or `cargo test -p crscan --test
# sbom` once to make it). The database is built from ../shared/data/vulndb into the
# bench cache. Needs: python3, gzip, sha256sum, /usr/bin/time.
#
# Prints the median of RUNS (default 5) wall-clock runs of each step, the peak RSS,
# and crscan's own split of a scan into reading, matching and rendering
# (`--timings`).
set -euo pipefail

RUNS=${RUNS:-5}
CACHE=${CRSCAN_BENCH_CACHE:-$HOME/.cache/crscan-bench}
TEST_CACHE=${CRSCAN_TEST_CACHE:-$HOME/.cache/crscan-test}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
FEEDS=$REPO/../shared/data/vulndb
OUT=$CACHE/scan-out
mkdir -p "$CACHE" "$OUT"

need() { command -v "$1" >/dev/null || { echo "bench/scan.sh: needs $1" >&2; exit 1; }; }
for tool in python3 gzip sha256sum; do need "$tool"; done
[ -x /usr/bin/time ] || { echo "bench/scan.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

# --- the image -------------------------------------------------------------------
if [ -f "$CACHE/image/index.json" ]; then
    LAYOUT=$CACHE/image
    TAG=bench
else
    LAYOUT=$CACHE/scan-image
    TAG=latest
    if [ ! -f "$LAYOUT/index.json" ]; then
        tarball=$TEST_CACHE/debootstrap-bookworm-minbase.tar
        [ -f "$tarball" ] || { echo "bench/scan.sh: no image; run bench/sbom.sh first (or make $tarball)" >&2; exit 1; }
        echo "making a one-layer OCI layout from $tarball" >&2
        rm -rf "$LAYOUT.partial"
        mkdir -p "$LAYOUT.partial/blobs/sha256"
        gzip -c "$tarball" > "$LAYOUT.partial/layer.gz"
        python3 - "$LAYOUT.partial" "$tarball" <<'PY'
import hashlib, json, os, sys
layout, tarball = sys.argv[1], sys.argv[2]
def sha(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
def blob(data):
    digest = hashlib.sha256(data).hexdigest()
    open(f"{layout}/blobs/sha256/{digest}", "wb").write(data)
    return f"sha256:{digest}", len(data)
layer = sha(f"{layout}/layer.gz")
size = os.path.getsize(f"{layout}/layer.gz")
os.rename(f"{layout}/layer.gz", f"{layout}/blobs/sha256/{layer}")
config, config_size = blob(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{sha(tarball)}"]}}).encode())
manifest, manifest_size = blob(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{layer}", "size": size}]}).encode())
json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
    "digest": manifest, "size": manifest_size,
    "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, open(f"{layout}/index.json", "w"))
open(f"{layout}/oci-layout", "w").write('{"imageLayoutVersion":"1.0.0"}')
PY
        rm -rf "$LAYOUT"
        mv "$LAYOUT.partial" "$LAYOUT"
    fi
fi
IMAGE="oci:$LAYOUT:$TAG"
layers=$(python3 -c "
import json
index = json.load(open('$LAYOUT/index.json'))
digest = [m['digest'] for m in index['manifests'] if m.get('annotations', {}).get('org.opencontainers.image.ref.name') == '$TAG'][0]
manifest = json.load(open('$LAYOUT/blobs/sha256/' + digest.split(':')[1]))
print(' '.join(l['digest'].split(':')[1] for l in manifest['layers']))")
compressed=$(for l in $layers; do stat -c %s "$LAYOUT/blobs/sha256/$l"; done | awk '{s+=$1} END {printf "%.1f", s/1048576}')
echo "image: $IMAGE ($(echo "$layers" | wc -w) layers, $compressed MiB compressed)"

# --- crscan and its database -------------------------------------------------------
echo "building crscan (release)" >&2
(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release -q -p crscan)
CRSCAN=$TARGET/release/crscan
DB=$CACHE/scan-db/crscan.db
mkdir -p "$(dirname "$DB")"
feeds=()
for feed in "$FEEDS"/*/; do
    case "$feed" in */osv-schema/) continue ;; esac
    feeds+=("$feed")
done
/usr/bin/time -f '%e %M' -o "$OUT/build.time" "$CRSCAN" db build --db "$DB" --from "${feeds[@]}" \
    > "$OUT/build.out" 2> "$OUT/build.err"
echo "database build: $(cut -d' ' -f1 "$OUT/build.time") s; $(tail -1 "$OUT/build.out")"

gunzip_layers() {
    for l in $layers; do gzip -dc "$LAYOUT/blobs/sha256/$l" > /dev/null; done
}
export -f gunzip_layers
export LAYOUT layers

# measure NAME COMMAND...: runs the command RUNS times, recording "seconds max-rss-kib"
# per run in $OUT/NAME.times and the last run's stderr in $OUT/NAME.err.
measure() {
    local name=$1; shift
    : > "$OUT/$name.times"
    : > "$OUT/$name.timings"
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$@" > "$OUT/$name.stdout" 2> "$OUT/$name.err" ||
            { echo "$name failed:" >&2; tail -5 "$OUT/$name.err" >&2; exit 1; }
        cat "$OUT/$name.time" >> "$OUT/$name.times"
        grep '^timings:' "$OUT/$name.err" >> "$OUT/$name.timings" || true
    done
}

"$CRSCAN" sbom --format cyclonedx --output "$OUT/inventory.cdx.json" "$IMAGE"
measure scan "$CRSCAN" scan --db "$DB" --format json --timings "$IMAGE"
measure rematch "$CRSCAN" scan --db "$DB" --format json --timings --sbom "$OUT/inventory.cdx.json"
measure gzip bash -c gunzip_layers

python3 - "$OUT" <<'PY'
import json, re, statistics, sys
out = sys.argv[1]

def wall(name):
    rows = [line.split() for line in open(f"{out}/{name}.times") if line.strip()]
    return statistics.median(float(r[0]) for r in rows), max(int(r[1]) for r in rows) / 1024

def split(name):
    parts = {"read": [], "match": [], "render": []}
    for line in open(f"{out}/{name}.timings"):
        for key in parts:
            m = re.search(rf"{key} ([0-9.]+) ms", line)
            if m:
                parts[key].append(float(m.group(1)))
    lookups = re.search(r"\((\d+) lookups\)", open(f"{out}/{name}.timings").read())
    return {k: statistics.median(v) for k, v in parts.items() if v}, lookups.group(1) if lookups else "?"

scan, scan_rss = wall("scan")
rematch, rematch_rss = wall("rematch")
gz, _ = wall("gzip")
doc = json.load(open(f"{out}/scan.stdout"))
print(f"\npackages {doc['packages']}, findings {len(doc['findings'])}, summary {doc['summary']}")
print(f"{'step':<28} {'median':>10} {'peak RSS MiB':>13}")
print(f"{'gzip -dc of the layers':<28} {gz:>9.3f}s")
print(f"{'crscan scan (whole)':<28} {scan:>9.3f}s {scan_rss:>13.1f}   {scan / gz if gz else 0:.2f}x gzip")
print(f"{'crscan scan --sbom (whole)':<28} {rematch:>9.3f}s {rematch_rss:>13.1f}")
for name in ["scan", "rematch"]:
    parts, lookups = split(name)
    print(f"  {name}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in parts.items()) + f" ({lookups} lookups)")
PY
