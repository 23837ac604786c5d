"""The operator in-cluster, as users install it: ``helm upgrade --install`` of charts/wallet-operator
with the locally built operator image, and ``helm uninstall``. Used by ``walletctl demo`` and the
in-cluster operator tests."""

from __future__ import annotations

import json
import pathlib
import subprocess

from walletplatform.devenv import images, toolchain

CHART = toolchain.ROOT / "charts" / "wallet-operator"
RELEASE = "wallet-operator"
NAMESPACE = "wallet-system"


def _helm(helm: pathlib.Path, kubeconfig: pathlib.Path, *args: str, timeout: float = 300) -> str:
    result = subprocess.run(
        [str(helm), "--kubeconfig", str(kubeconfig), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"helm {args[0]}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def install(helm: pathlib.Path, kubeconfig: pathlib.Path, values: dict[str, object] | None = None) -> str:
    """Install (or upgrade) the chart with the local operator image and wait for its pods."""
    repository, tag = images.OPERATOR.rsplit(":", 1)
    overrides = {"image": {"repository": repository, "tag": tag, "pullPolicy": "IfNotPresent"}, **(values or {})}
    return _helm(
        helm, kubeconfig, "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--create-namespace",
        "--set-json", f"image={json.dumps(overrides.pop('image'))}",
        *[arg for key, value in overrides.items() for arg in ("--set-json", f"{key}={json.dumps(value)}")],
        "--wait", "--timeout", "240s",
    )  # fmt: skip


def uninstall(helm: pathlib.Path, kubeconfig: pathlib.Path) -> str:
    return _helm(helm, kubeconfig, "uninstall", RELEASE, "--namespace", NAMESPACE, "--wait", "--timeout", "120s")
