"""kube-proxy in iptables mode for the local node: NodePorts only on the node address, conntrack
sysctls left as they are. Its rules are removed with the rest of the host's changes by devenv.hostnet.
Used by devenv.node."""

from __future__ import annotations

import json
import pathlib

from walletplatform.devenv import hostnet, processes
from walletplatform.devenv.kubelet import NODE_NAME


def render_config(kubeconfig: pathlib.Path, healthz_port: int, metrics_port: int) -> dict[str, object]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "bindAddress": hostnet.NODE_IP,
        "clusterCIDR": hostnet.POD_CIDR,
        "healthzBindAddress": f"127.0.0.1:{healthz_port}",
        "metricsBindAddress": f"127.0.0.1:{metrics_port}",
        "nodePortAddresses": [f"{hostnet.NODE_IP}/32"],
        # 0: leave the host's conntrack limits and timeouts alone.
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
        "iptables": {"syncPeriod": "10s", "minSyncPeriod": "0s"},
    }


class KubeProxy(processes.Component):
    def __init__(
        self, binary: pathlib.Path, workdir: pathlib.Path, logs: pathlib.Path, kubeconfig: pathlib.Path
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.logs = logs
        self.kubeconfig = kubeconfig
        self.healthz_port = processes.free_port()
        self.metrics_port = processes.free_port()
        self.process: processes.Process | None = None

    def start(self) -> KubeProxy:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "kube-proxy-config.json"
        config.write_text(json.dumps(render_config(self.kubeconfig, self.healthz_port, self.metrics_port)))
        self.process = processes.Process(
            "kube-proxy", [str(self.binary), f"--config={config}", "--v=1"], self.logs
        ).start()
        self.process.wait_ready(self.healthy, 60, "kube-proxy /healthz")
        return self

    def healthy(self) -> bool:
        return processes.http_ok(f"http://127.0.0.1:{self.healthz_port}/healthz")
