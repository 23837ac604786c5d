#!/usr/bin/env bash
# Installs everything a fresh machine needs, then is a no-op on later runs:
# Debian packages (Prometheus with promtool, openssl), a virtualenv with the project, and the
# control-plane binaries built from Go module sources (cached outside the clone by version).
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
start=$SECONDS

phase "Debian packages"
if ! command -v promtool >/dev/null || ! command -v prometheus >/dev/null || ! command -v openssl >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq prometheus openssl >/dev/null
fi
echo "prometheus: $(prometheus --version 2>&1 | head -1)"

phase "Python environment"
[ -d .venv ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev,policy]'
echo "python: $(.venv/bin/python --version)"

phase "Control plane binaries (hack/toolchain.sh)"
hack/toolchain.sh all
echo "setup took $((SECONDS - start))s"
