#!/usr/bin/env bash
# Lifecycle policies at scale: pushes N small images (a config blob and a manifest
# each, tags t0..t(N-1), every tenth one untagged) into one repository of a fresh
# `crscan serve` on SQLite, then times a dry run of {tagRegexp "t.*", retainedTop 10} +
# {untagged} (REST round trip), and the scheduler's run that deletes what it picks
# (from the PATCH to ACTIVE until the images are gone, runs every second). Prints
# figures only; asserts nothing.
#
# Usage: bench/lifecycle.sh [N...]   (default: 100 1000 5000)
# The crscan binary is taken from $CRSCAN_BIN, else built with `cargo build --release`.
set -euo pipefail

SIZES=("$@")
[ ${#SIZES[@]} -gt 0 ] || SIZES=(100 1000 5000)
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

if [ -z "${CRSCAN_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release --quiet -p crscan)
  CRSCAN_BIN="$ROOT/target/release/crscan"
fi

for n in "${SIZES[@]}"; do
  data="$WORK/data-$n"
  mkdir -p "$data"
  printf 'lifecycle_interval_seconds = 1\n' >"$WORK/crscan.toml"
  env -u CRSCAN_TOKENS -u CRSCAN_CONFIG -u CRSCAN_STORE CRSCAN_DB_AUTO_UPDATE=0 "$CRSCAN_BIN" serve --listen 127.0.0.1:0 \
    --data-dir "$data" --workers 0 --config "$WORK/crscan.toml" \
    >"$WORK/serve.out" 2>"$WORK/serve-$n.log" &
  SERVER_PID=$!
  for _ in $(seq 100); do
    grep -q "serving on" "$WORK/serve.out" 2>/dev/null && break
    sleep 0.1
  done
  url=$(sed -n 's/.*serving on \(http[^ ]*\).*/\1/p' "$WORK/serve.out")
  python3 - "$url" "$n" <<'PY'
import hashlib, http.client, json, sys, time, urllib.parse

url, n = sys.argv[1], int(sys.argv[2])
host = urllib.parse.urlparse(url).netloc
connection = http.client.HTTPConnection(host)

def call(method, path, body=b"", headers=None):
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    data = response.read()
    if response.status >= 300:
        raise SystemExit(f"{method} {path}: {response.status} {data[:300]!r}")
    return data

started = time.monotonic()
for index in range(n):
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"index": str(index)}}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    call("POST", f"/v2/default/bench/blobs/uploads/?digest={config_digest}", config,
         {"Content-Type": "application/octet-stream"})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": config_digest, "size": len(config)},
                           "layers": []}).encode()
    reference = "sha256:" + hashlib.sha256(manifest).hexdigest() if index % 10 == 9 else f"t{index}"
    call("PUT", f"/v2/default/bench/manifests/{reference}", manifest,
         {"Content-Type": "application/vnd.oci.image.manifest.v1+json"})
push_seconds = time.monotonic() - started

repositories = json.loads(call("GET", "/container-registry/v1/repositories?folderId=default"))
repository = next(r for r in repositories["repositories"] if r["name"].endswith("/bench"))
policy = json.loads(call("POST", "/container-registry/v1/lifecyclePolicies", json.dumps(
    {"repositoryId": repository["id"], "status": "DISABLED",
     "rules": [{"tagRegexp": "t.*", "retainedTop": "10"}, {"untagged": True}]}).encode(),
    {"Content-Type": "application/json"}))["response"]
dry_runs = []
for _ in range(3):
    started = time.monotonic()
    result = json.loads(call("POST", f"/container-registry/v1/dryRunLifecyclePolicy/{policy['id']}", b"{}",
                             {"Content-Type": "application/json"}))["response"]
    dry_runs.append(time.monotonic() - started)
affected = int(result["affectedImagesCount"])
started = time.monotonic()
call("PATCH", f"/container-registry/v1/lifecyclePolicies/{policy['id']}",
     json.dumps({"updateMask": "status", "status": "ACTIVE"}).encode(), {"Content-Type": "application/json"})
while True:
    listed = json.loads(call("GET", f"/container-registry/v1/images?repositoryName={urllib.parse.quote(repository['name'])}&pageSize=1000"))
    if len(listed["images"]) == n - affected:
        break
    time.sleep(0.05)
run_seconds = time.monotonic() - started
dry_runs.sort()
print(f"images={n} push={push_seconds:.2f}s ({n / push_seconds:.0f}/s) affected={affected} "
      f"dry_run_median={dry_runs[1] * 1000:.1f}ms (min {dry_runs[0] * 1000:.1f}ms) "
      f"activate_to_deleted={run_seconds:.2f}s (includes up to 1s waiting for the next slot)")
PY
  kill_server
done
