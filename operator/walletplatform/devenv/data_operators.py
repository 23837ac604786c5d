"""The data tier's operators on the local node, installed the way their projects publish them:
CloudNativePG from its release manifest (``releases/cnpg-<version>.yaml`` in its Go module) and the OT
redis-operator from its ``config/default`` kustomization (rendered by ``kubectl kustomize``). The only
changes: the locally built images, pulled only if not present (no registry is reachable here)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from typing import Any

import yaml

from walletplatform.clients import kube
from walletplatform.devenv import crds, images, processes, toolchain
from walletplatform.models import common

MANAGER = "wallet-devenv"
CNPG_NAMESPACE = "cnpg-system"
CNPG_DEPLOYMENT = "cnpg-controller-manager"
REDIS_NAMESPACE = "redis-operator-system"
REDIS_DEPLOYMENT = "redis-operator-redis-operator"


def _use_local_image(docs: list[dict[str, Any]], deployment: str, image: str) -> list[dict[str, Any]]:
    """``docs`` with the Deployment's containers (and an OPERATOR_IMAGE_NAME, which CloudNativePG uses
    for the instance manager it injects into Postgres pods) on ``image``, IfNotPresent."""
    found = False
    for doc in docs:
        if doc.get("kind") == "Deployment" and doc["metadata"]["name"] == deployment:
            found = True
            for container in doc["spec"]["template"]["spec"]["containers"]:
                container["image"] = image
                container["imagePullPolicy"] = "IfNotPresent"
                for env in container.get("env") or []:
                    if env["name"] == "OPERATOR_IMAGE_NAME":
                        env["value"] = image
    if not found:
        raise RuntimeError(f"the published manifests have no Deployment {deployment}")
    return docs


def cnpg_manifests() -> list[dict[str, Any]]:
    root = crds.module_dir("github.com/cloudnative-pg/cloudnative-pg", toolchain.CNPG_VERSION)
    release = root / "releases" / f"cnpg-{toolchain.CNPG_VERSION.lstrip('v')}.yaml"
    docs = [d for d in yaml.safe_load_all(release.read_text()) if isinstance(d, dict)]
    return _use_local_image(docs, CNPG_DEPLOYMENT, images.CNPG)


def redis_operator_manifests(kubectl: str) -> list[dict[str, Any]]:
    root = crds.module_dir("github.com/OT-CONTAINER-KIT/redis-operator", toolchain.REDIS_OPERATOR_VERSION)
    argv = [kubectl, "kustomize", str(root / "config" / "default")]
    rendered = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if isinstance(d, dict)]
    return _use_local_image(docs, REDIS_DEPLOYMENT, images.REDIS_OPERATOR)


def _available(client: kube.Kube, namespace: str, name: str) -> bool:
    deployment = client.get("apps/v1", "Deployment", name, namespace) or {}
    return bool((deployment.get("status") or {}).get("availableReplicas"))


def _webhook_ready(client: kube.Kube) -> bool:
    """CloudNativePG's admission webhook answers: a server-side dry run of a Cluster passes through it."""
    probe: common.Manifest = {
        "apiVersion": "postgresql.cnpg.io/v1",
        "kind": "Cluster",
        "metadata": {"name": "webhook-probe", "namespace": CNPG_NAMESPACE},
        "spec": {"instances": 1, "storage": {"size": "1Gi"}},
    }
    try:
        client.create(probe, dry_run=True)
    except kube.ApiError:
        return False
    return True


def install(
    client: kube.Kube, kubectl: str, say: Callable[[str], None] = lambda _: None, timeout: float = 180
) -> float:
    """Apply both operators and wait until they serve; returns the seconds it took."""
    started = time.monotonic()
    for doc in cnpg_manifests() + redis_operator_manifests(kubectl):
        client.apply(doc, MANAGER)
    client.invalidate_discovery()
    versions = f"CloudNativePG {toolchain.CNPG_VERSION}, redis-operator {toolchain.REDIS_OPERATOR_VERSION}"
    say(f"data tier operators: {versions}")
    processes.wait_until(
        lambda: _available(client, CNPG_NAMESPACE, CNPG_DEPLOYMENT), timeout, "CloudNativePG available"
    )
    processes.wait_until(lambda: _webhook_ready(client), timeout, "CloudNativePG's webhook")
    processes.wait_until(
        lambda: _available(client, REDIS_NAMESPACE, REDIS_DEPLOYMENT), timeout, "redis-operator available"
    )
    return time.monotonic() - started
