"""Third-party CRDs the platform renders into, installed from their published sources (pinned Go
modules, fetched with ``go mod download``; nothing is committed), plus our own generated CRDs."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import tempfile
import time

import yaml

from walletplatform import crd
from walletplatform.clients import kube
from walletplatform.devenv import toolchain

# module, version, files inside the module
THIRD_PARTY: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "github.com/cloudnative-pg/cloudnative-pg",
        toolchain.CNPG_VERSION,
        ("config/crd/bases/postgresql.cnpg.io_clusters.yaml", "config/crd/bases/postgresql.cnpg.io_poolers.yaml"),
    ),
    (
        "github.com/OT-CONTAINER-KIT/redis-operator",
        toolchain.REDIS_OPERATOR_VERSION,
        ("config/crd/bases/redis.redis.opstreelabs.in_redisclusters.yaml",),
    ),
    (
        "github.com/prometheus-operator/prometheus-operator",
        "v0.85.0",
        (
            "example/prometheus-operator-crd/monitoring.coreos.com_servicemonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_podmonitors.yaml",
            "example/prometheus-operator-crd/monitoring.coreos.com_prometheusrules.yaml",
        ),
    ),
    ("k8s.io/autoscaler/vertical-pod-autoscaler", "v1.8.1", ("deploy/vpa-v1-crd-gen.yaml",)),
)


def module_dir(module: str, version: str) -> pathlib.Path:
    """Download a module from the Go proxy (cached in GOMODCACHE) and return its folder.

    GOSUMDB is off for these downloads because the checksum database does not list every tag the
    proxy serves (redis-operator v0.23.0); the proxy's zip is what the project published."""
    with tempfile.TemporaryDirectory() as scratch:
        (pathlib.Path(scratch) / "go.mod").write_text("module wallet.local/crds\n")
        out = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=scratch,
            capture_output=True,
            text=True,
            check=False,
            env={**os.environ, "GOFLAGS": "-mod=mod", "GOSUMDB": "off"},
        )
    info = json.loads(out.stdout or "{}")
    if "Dir" not in info:
        raise RuntimeError(f"go mod download {module}@{version} failed: {info.get('Error') or out.stderr}")
    return pathlib.Path(info["Dir"])


def third_party_crds() -> list[dict[str, object]]:
    docs: list[dict[str, object]] = []
    for module, version, files in THIRD_PARTY:
        root = module_dir(module, version)
        for name in files:
            docs += [
                d
                for d in yaml.safe_load_all((root / name).read_text())
                if isinstance(d, dict) and d.get("kind") == "CustomResourceDefinition"
            ]
    return docs


def install(client: kube.Kube, *, ours: bool = True, timeout: float = 60) -> list[str]:
    """Apply the third-party CRDs (and ours), wait until every one is Established; return their names."""
    docs = third_party_crds() + (list(crd.render_crds()) if ours else [])
    names = []
    for doc in docs:
        client.apply(doc, "wallet-devenv")  # type: ignore[arg-type]
        names.append(str(doc["metadata"]["name"]))  # type: ignore[index]
    deadline = time.monotonic() + timeout
    for name in names:
        while True:
            live = client.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name) or {}
            conditions = live.get("status", {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"CRD {name} not Established after {timeout:.0f}s")
            time.sleep(0.2)
    client.invalidate_discovery()
    return names
