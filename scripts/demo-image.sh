#!/usr/bin/env bash
# Builds a small two-layer OCI image layout from the shared test data, so that
# `crscan sbom` and `crscan scan` have a real image to read on a fresh checkout.
#
#   scripts/demo-image.sh DIR     ->  DIR is an OCI layout with the tag `demo`
#
# Layer 1: a Debian dpkg status database and os-release (bookworm).
# Layer 2: an npm lockfile, a Python package's METADATA and a Go binary, and a
#          whiteout that deletes a file of layer 1.
# Only coreutils, tar and gzip are needed.
set -euo pipefail

out=${1:?usage: scripts/demo-image.sh OUTPUT_DIR}
here=$(cd "$(dirname "$0")/.." && pwd)
data=${CRSCAN_SHARED_DATA:-$here/../shared/data}
[ -d "$data/catalog" ] || { echo "demo-image: shared data not found at $data (set CRSCAN_SHARED_DATA)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$out"
mkdir -p "$out/blobs/sha256"

# Layer 1: the OS.
mkdir -p "$work/l1/etc" "$work/l1/var/lib/dpkg" "$work/l1/usr/share/doc/removed"
printf 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION="12 (bookworm)"\nVERSION_CODENAME=bookworm\nID=debian\n' > "$work/l1/etc/os-release"
cp "$data/catalog/dpkg/trivy/status" "$work/l1/var/lib/dpkg/status"
echo "this file is deleted by layer 2" > "$work/l1/usr/share/doc/removed/README"

# Layer 2: applications.
mkdir -p "$work/l2/app" "$work/l2/usr/local/lib/python3.11/site-packages/Jinja2-2.10.dist-info" \
         "$work/l2/usr/local/bin" "$work/l2/usr/share/doc"
cp "$data/catalog/npm/osv-scalibr/package-lock/scoped-packages.v2.json" "$work/l2/app/package-lock.json"
printf 'Metadata-Version: 2.1\nName: Jinja2\nVersion: 2.10\n' > "$work/l2/usr/local/lib/python3.11/site-packages/Jinja2-2.10.dist-info/METADATA"
cp "$data/catalog/go/trivy/test.elf" "$work/l2/usr/local/bin/test-app"
touch "$work/l2/usr/share/doc/.wh.removed"

blob() { # file -> prints "sha256 size" and stores the blob
    local sum size
    sum=$(sha256sum "$1" | cut -d' ' -f1)
    size=$(stat -c %s "$1")
    cp "$1" "$out/blobs/sha256/$sum"
    echo "$sum $size"
}

layers=() diff_ids=()
for layer in l1 l2; do
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work/$layer" -cf "$work/$layer.tar" .
    diff_ids+=("$(sha256sum "$work/$layer.tar" | cut -d' ' -f1)")
    gzip -n -9 < "$work/$layer.tar" > "$work/$layer.tar.gz"
    layers+=("$(blob "$work/$layer.tar.gz")")
done

printf '{"architecture":"amd64","os":"linux","created":"2026-11-28T00:00:00Z","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s","sha256:%s"]},"history":[{"created_by":"demo: os"},{"created_by":"demo: apps"}]}' \
    "${diff_ids[0]}" "${diff_ids[1]}" > "$work/config.json"
read -r config_sum config_size < <(blob "$work/config.json")

layer_json=""
for entry in "${layers[@]}"; do
    read -r sum size <<< "$entry"
    layer_json+="${layer_json:+,}{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$sum\",\"size\":$size}"
done
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
    "$config_sum" "$config_size" "$layer_json" > "$work/manifest.json"
read -r manifest_sum manifest_size < <(blob "$work/manifest.json")

printf '{"imageLayoutVersion":"1.0.0"}' > "$out/oci-layout"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"demo"}}]}' \
    "$manifest_sum" "$manifest_size" > "$out/index.json"
echo "demo image written to $out (tag demo, manifest sha256:$manifest_sum)" >&2
