"""Cluster DNS for the local node: CoreDNS (built by hack/toolchain.sh with only the plugins below) on
the node address, port 53, answering ``cluster.local`` from the API server. There is no ``forward``:
a name outside the cluster is refused, never sent anywhere. The kubelet points pods at it. Used by
devenv.node."""

from __future__ import annotations

import pathlib

from walletplatform.devenv import hostnet, processes
from walletplatform.models import common

# Read-only access to what the kubernetes plugin watches.
RBAC_RULES: list[common.JsonValue] = [
    {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
    {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
]
USER = "system:wallet-coredns"


def render_corefile(kubeconfig: pathlib.Path, health_port: int, ready_port: int) -> str:
    # Only the cluster's zones: any other name is REFUSED at once (no SERVFAIL, no error log line).
    return f"""cluster.local:53 in-addr.arpa:53 ip6.arpa:53 {{
    bind {hostnet.NODE_IP}
    errors
    health 127.0.0.1:{health_port}
    ready 127.0.0.1:{ready_port}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig} wallet-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""


def rbac() -> list[common.Manifest]:
    meta: dict[str, common.JsonValue] = {"name": "wallet-devenv:coredns"}
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": meta, "rules": RBAC_RULES},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": meta["name"]},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}],
        },
    ]


class CoreDNS(processes.Component):
    def __init__(
        self, binary: pathlib.Path, workdir: pathlib.Path, logs: pathlib.Path, kubeconfig: pathlib.Path
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.logs = logs
        self.kubeconfig = kubeconfig
        self.health_port = processes.free_port()
        self.ready_port = processes.free_port()
        self.process: processes.Process | None = None

    def start(self) -> CoreDNS:
        self.workdir.mkdir(parents=True, exist_ok=True)
        corefile = self.workdir / "Corefile"
        corefile.write_text(render_corefile(self.kubeconfig, self.health_port, self.ready_port))
        self.process = processes.Process("coredns", [str(self.binary), "-conf", str(corefile)], self.logs).start()
        self.process.wait_ready(self.ready, 60, "coredns /ready")
        return self

    def ready(self) -> bool:
        return processes.http_ok(f"http://127.0.0.1:{self.ready_port}/ready")
