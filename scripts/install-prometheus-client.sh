#!/usr/bin/env bash
# Installs the Prometheus project's Python client (PyPI prometheus-client), whose text
# parser crates/crscan/tests/operations.rs checks `/metrics` with, into a venv in a
# cache outside the repository. Idempotent. Prints the venv's python on stdout.
set -euo pipefail

VERSION=0.26.0
cache=${CRSCAN_TOOLS_CACHE:-$HOME/.cache/crscan-tools}
venv="$cache/python-prometheus-client-$VERSION"
mkdir -p "$cache"
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import prometheus_client' 2>/dev/null; then
    python3 -m venv "$venv" >&2
    "$venv/bin/pip" install --quiet --disable-pip-version-check "prometheus-client==$VERSION" >&2
fi
echo "$venv/bin/python"
