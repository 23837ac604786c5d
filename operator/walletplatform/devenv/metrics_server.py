"""metrics-server for the local node, so that the HPAs' CPU and memory targets work: built from its Go
module sources (hack/toolchain.sh), run on the node address with a serving certificate of the cluster
CA, registered as the ``v1beta1.metrics.k8s.io`` APIService behind a selector-less Service whose
endpoint is that address (kube-apiserver routes to it through the aggregation layer). It scrapes the
kubelet's /metrics/resource, verifying the kubelet's serving certificate. Used by devenv.node."""

from __future__ import annotations

import base64
import pathlib
import ssl

from walletplatform.devenv import hostnet, processes
from walletplatform.models import common

USER = "system:wallet-metrics-server"
NAMESPACE = "kube-system"
NAME = "metrics-server"


def rbac() -> list[common.Manifest]:
    """What metrics-server needs: read nodes' and pods' metrics, delegate authentication and
    authorization to kube-apiserver, and read the front-proxy CA."""
    user: list[common.JsonValue] = [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": USER}]
    role: dict[str, common.JsonValue] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole"}
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "wallet-devenv:metrics-server"},
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "wallet-devenv:metrics-server"},
            "roleRef": {**role, "name": "wallet-devenv:metrics-server"},
            "subjects": user,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "wallet-devenv:metrics-server:auth-delegator"},
            "roleRef": {**role, "name": "system:auth-delegator"},
            "subjects": user,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "wallet-devenv:metrics-server:auth-reader", "namespace": NAMESPACE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "extension-apiserver-authentication-reader",
            },
            "subjects": user,
        },
    ]


def registration(port: int, ca: pathlib.Path) -> list[common.Manifest]:
    """The Service (no selector), its endpoint on the node address, and the APIService."""
    meta: dict[str, common.JsonValue] = {"name": NAME, "namespace": NAMESPACE, "labels": {"k8s-app": NAME}}
    return [
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": meta,
            "spec": {"ports": [{"name": "https", "port": 443, "targetPort": port}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": meta,
            "subsets": [{"addresses": [{"ip": hostnet.NODE_IP}], "ports": [{"name": "https", "port": port}]}],
        },
        {
            "apiVersion": "apiregistration.k8s.io/v1",
            "kind": "APIService",
            "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "spec": {
                "group": "metrics.k8s.io",
                "version": "v1beta1",
                "service": {"name": NAME, "namespace": NAMESPACE, "port": 443},
                "caBundle": base64.b64encode(ca.read_bytes()).decode(),
                "groupPriorityMinimum": 100,
                "versionPriority": 100,
            },
        },
    ]


class MetricsServer(processes.Component):
    def __init__(
        self, binary: pathlib.Path, workdir: pathlib.Path, logs: pathlib.Path, *, kubeconfig: pathlib.Path,
        serving: tuple[pathlib.Path, pathlib.Path], kubelet_ca: pathlib.Path,
    ) -> None:  # fmt: skip
        self.binary = binary
        self.workdir = workdir
        self.logs = logs
        self.kubeconfig = kubeconfig
        self.serving = serving
        self.kubelet_ca = kubelet_ca
        self.port = processes.free_port()
        self.process: processes.Process | None = None

    def start(self) -> MetricsServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.process = processes.Process(
            "metrics-server",
            [
                str(self.binary),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                f"--bind-address={hostnet.NODE_IP}",
                f"--secure-port={self.port}",
                f"--tls-cert-file={self.serving[0]}",
                f"--tls-private-key-file={self.serving[1]}",
                f"--kubelet-certificate-authority={self.kubelet_ca}",
                "--kubelet-preferred-address-types=InternalIP",
                "--kubelet-use-node-status-port",
                # The HPA controller syncs every 5 s here; fresher metrics make load tests react in seconds.
                "--metric-resolution=15s",
                "--kubelet-request-timeout=5s",
                "--v=1",
            ],
            self.logs,
        ).start()
        self.process.wait_ready(self.ready, 60, "metrics-server /readyz")
        return self

    def ready(self) -> bool:
        context = ssl.create_default_context(cafile=str(self.kubelet_ca))
        return processes.http_ok(f"https://{hostnet.NODE_IP}:{self.port}/livez", context)
