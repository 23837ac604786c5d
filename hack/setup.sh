#!/usr/bin/env bash
# Installs everything a fresh machine needs, then is a no-op on later runs:
# Debian packages (Prometheus with promtool, openssl, PostgreSQL and Redis for the reference service's
# tests; the node's containerd, runc, CNI plugins and
# iptables; mmdebstrap and buildah for images), a virtualenv with the project, the control-plane and
# node binaries built from Go module sources (cached outside the clone by version), and the local
# images built from the project's Dockerfiles (cached outside the clone by content).
set -euo pipefail
cd "$(dirname "$0")/.."
phase() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }
start=$SECONDS

phase "Debian packages"
PACKAGES=(prometheus openssl postgresql redis-server containerd runc containernetworking-plugins iptables conntrack mmdebstrap buildah)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "prometheus: $(prometheus --version 2>&1 | head -1)"
echo "containerd: $(containerd --version)"

phase "Python environment"
[ -d .venv ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev,stacks,policy]'
echo "python: $(.venv/bin/python --version)"

phase "Control plane and node binaries (hack/toolchain.sh)"
hack/toolchain.sh all

phase "Local images (walletctl images: buildah, FROM a Debian base made with mmdebstrap)"
.venv/bin/walletctl images
echo "setup took $((SECONDS - start))s"
