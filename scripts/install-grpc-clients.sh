#!/usr/bin/env bash
# Installs the official Yandex Cloud SDKs that crates/crscan/tests/grpc_sdk.rs drives as
# real gRPC clients, from their registries (PyPI, npm), into a cache outside the
# repository. Idempotent: a second run with the same versions does nothing.
# Prints the cache directory on stdout.
set -euo pipefail

PYTHON_SDK_VERSION=0.413.0
NODE_SDK_VERSION=2.9.3
cache=${CRSCAN_TOOLS_CACHE:-$HOME/.cache/crscan-tools}
mkdir -p "$cache"

venv="$cache/python-yandexcloud-$PYTHON_SDK_VERSION"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import yandexcloud' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "yandexcloud==$PYTHON_SDK_VERSION" >&2
fi

node_dir="$cache/node-yandex-cloud-sdk-$NODE_SDK_VERSION"
if [ ! -d "$node_dir/node_modules/@yandex-cloud/nodejs-sdk" ]; then
    mkdir -p "$node_dir"
    (cd "$node_dir" && npm install --silent --no-audit --no-fund "@yandex-cloud/nodejs-sdk@$NODE_SDK_VERSION" >&2)
fi
echo "$cache"
