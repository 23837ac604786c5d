"""Where the control-plane binaries are: built and cached by hack/toolchain.sh, keyed by version."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "hack" / "toolchain.sh"
K8S_VERSION = "v1.34.4"
ETCD_VERSION = "v3.6.16"
HELM_VERSION = "v3.22.0"
COREDNS_VERSION = "v1.15.0"
METRICS_SERVER_VERSION = "v0.8.0"
KUBE_STATE_METRICS_VERSION = "v2.16.0"
# The data tier's operators, also the versions whose CRDs devenv.crds installs.
CNPG_VERSION = "v1.27.1"
REDIS_OPERATOR_VERSION = "v0.23.0"
PULUMI_VERSION = "v3.259.0"
PULUMI_K8S_MODULE_VERSION = "v4.0.0-20260115033456-f47bc2d6f199"


@dataclasses.dataclass(frozen=True)
class Binaries:
    etcd: pathlib.Path
    kube_apiserver: pathlib.Path
    kube_controller_manager: pathlib.Path
    kubectl: pathlib.Path
    kube_scheduler: pathlib.Path
    kubelet: pathlib.Path
    kube_proxy: pathlib.Path
    coredns: pathlib.Path
    metrics_server: pathlib.Path
    kube_state_metrics: pathlib.Path
    helm: pathlib.Path
    pulumi: pathlib.Path
    pulumi_kubernetes: pathlib.Path


def cache_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("WALLET_TOOLS_CACHE", pathlib.Path.home() / ".cache" / "wallet-platform"))


def ensure_binaries() -> Binaries:
    """Run hack/toolchain.sh (a no-op when everything is cached) and return the binaries' paths."""
    out = subprocess.run(
        [str(SCRIPT), "all"],
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "K8S_VERSION": K8S_VERSION,
            "ETCD_VERSION": ETCD_VERSION,
            "HELM_VERSION": HELM_VERSION,
            "COREDNS_VERSION": COREDNS_VERSION,
            "METRICS_SERVER_VERSION": METRICS_SERVER_VERSION,
            "KUBE_STATE_METRICS_VERSION": KUBE_STATE_METRICS_VERSION,
            "CNPG_VERSION": CNPG_VERSION,
            "REDIS_OPERATOR_VERSION": REDIS_OPERATOR_VERSION,
            "PULUMI_VERSION": PULUMI_VERSION,
            "PULUMI_K8S_MODULE_VERSION": PULUMI_K8S_MODULE_VERSION,
        },
    )
    bin_dir = pathlib.Path(out.stdout.strip().splitlines()[-1])
    return Binaries(
        etcd=bin_dir / f"etcd-{ETCD_VERSION}",
        kube_apiserver=bin_dir / f"kube-apiserver-{K8S_VERSION}",
        kube_controller_manager=bin_dir / f"kube-controller-manager-{K8S_VERSION}",
        kubectl=bin_dir / f"kubectl-{K8S_VERSION}",
        kube_scheduler=bin_dir / f"kube-scheduler-{K8S_VERSION}",
        kubelet=bin_dir / f"kubelet-{K8S_VERSION}",
        kube_proxy=bin_dir / f"kube-proxy-{K8S_VERSION}",
        coredns=bin_dir / f"coredns-{COREDNS_VERSION}",
        metrics_server=bin_dir / f"metrics-server-{METRICS_SERVER_VERSION}",
        kube_state_metrics=bin_dir / f"kube-state-metrics-{KUBE_STATE_METRICS_VERSION}",
        helm=bin_dir / f"helm-{HELM_VERSION}",
        pulumi=bin_dir / f"pulumi-{PULUMI_VERSION}",
        pulumi_kubernetes=bin_dir / f"pulumi-resource-kubernetes-{PULUMI_K8S_MODULE_VERSION}",
    )
