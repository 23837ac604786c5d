"""The kubelet of the local node: the cgroupfs driver, containerd's CRI socket, the node address on the
harness's interface, webhook authentication and authorization (kube-apiserver's client certificate
for logs and exec, ServiceAccount tokens for metrics), cluster DNS on the node address, and eviction
thresholds low enough for a small shared disk. Used by devenv.node."""

from __future__ import annotations

import json
import pathlib

from walletplatform.devenv import hostnet, processes

NODE_NAME = "wallet-node"


def render_config(
    workdir: pathlib.Path, runtime_endpoint: str, client_ca: pathlib.Path, healthz_port: int,
    serving: tuple[pathlib.Path, pathlib.Path],
) -> dict[str, object]:  # fmt: skip
    """The KubeletConfiguration."""
    return {
        "tlsCertFile": str(serving[0]),
        "tlsPrivateKeyFile": str(serving[1]),
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "cgroupDriver": "cgroupfs",
        "containerRuntimeEndpoint": runtime_endpoint,
        "address": hostnet.NODE_IP,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(client_ca)},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [hostnet.NODE_IP],
        "clusterDomain": "cluster.local",
        "resolvConf": str(workdir / "resolv.conf"),
        "podCIDR": hostnet.POD_CIDR,
        "failSwapOn": False,
        "failCgroupV1": False,
        "podLogsDir": str(workdir / "pod-logs"),
        "maxPods": 60,
        "serializeImagePulls": False,
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
            "nodefs.inodesFree": "1%",
        },
        "registerNode": True,
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "shutdownGracePeriod": "0s",
        "localStorageCapacityIsolation": True,
    }


class Kubelet(processes.Component):
    def __init__(
        self, binary: pathlib.Path, workdir: pathlib.Path, logs: pathlib.Path, *, kubeconfig: pathlib.Path,
        runtime_endpoint: str, client_ca: pathlib.Path, serving: tuple[pathlib.Path, pathlib.Path],
    ) -> None:  # fmt: skip
        self.serving = serving
        self.binary = binary
        self.workdir = workdir
        self.logs = logs
        self.kubeconfig = kubeconfig
        self.runtime_endpoint = runtime_endpoint
        self.client_ca = client_ca
        self.healthz_port = processes.free_port()
        self.process: processes.Process | None = None

    def start(self) -> Kubelet:
        self.workdir.mkdir(parents=True, exist_ok=True)
        # No nameserver of the host's: pods resolve cluster names only, nothing leaves the machine.
        (self.workdir / "resolv.conf").write_text("options ndots:5\n")
        config = self.workdir / "kubelet-config.json"
        config.write_text(
            json.dumps(
                render_config(self.workdir, self.runtime_endpoint, self.client_ca, self.healthz_port, self.serving)
            )
        )
        self.process = processes.Process(
            "kubelet",
            [
                str(self.binary),
                f"--config={config}",
                f"--kubeconfig={self.kubeconfig}",
                f"--root-dir={hostnet.RUNTIME_DIR / 'kubelet'}",  # short: it holds unix sockets
                f"--cert-dir={self.workdir / 'pki'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={hostnet.NODE_IP}",
                "--v=1",
            ],
            self.logs,
        ).start()
        self.process.wait_ready(self.healthy, 60, "kubelet /healthz")
        return self

    def healthy(self) -> bool:
        return processes.http_ok(f"http://127.0.0.1:{self.healthz_port}/healthz")
