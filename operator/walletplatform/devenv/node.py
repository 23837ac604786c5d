"""One local Kubernetes node beside the control plane: containerd, the kubelet, kube-proxy,
kube-scheduler, CoreDNS, metrics-server and a volume provisioner, each its own small component
(start, ready, stop) over devenv.processes,
and the host changes they make recorded and undone by devenv.hostnet. Images come from
devenv.images (built locally, imported into containerd). One node per machine.

Used by the integration fixtures (``node`` fixture) and by ``walletctl demo``."""

from __future__ import annotations

import contextlib
import pathlib
import time
from collections.abc import Callable
from typing import Any

from walletplatform.clients import kube
from walletplatform.devenv import (
    containerd,
    controlplane,
    coredns,
    hostnet,
    images,
    kubelet,
    kubeproxy,
    metrics_server,
    processes,
    scheduler,
    storage,
    toolchain,
)

NODE_NAME = kubelet.NODE_NAME
NODE_IP = hostnet.NODE_IP


def start_control_plane(workdir: pathlib.Path, binaries: toolchain.Binaries) -> controlplane.ControlPlane:
    """A control plane bound to the node address (claimed by ``Node.claim`` first)."""
    return controlplane.ControlPlane(workdir, binaries, address=NODE_IP).start()


class Node:
    """``claim()`` (before the control plane starts: the node address must exist), then ``start()``;
    ``stop()`` undoes everything, also what ``claim`` did."""

    def __init__(self, workdir: pathlib.Path, binaries: toolchain.Binaries) -> None:
        self.workdir = workdir
        self.binaries = binaries
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.host = hostnet.HostNetwork(workdir)
        self.containerd: containerd.Containerd | None = None
        self.parts: list[Any] = []
        self.timings: dict[str, float] = {}

    def claim(self) -> Node:
        self.host.claim()
        return self

    def start(self, plane: controlplane.ControlPlane, say: Callable[[str], None] = lambda _: None) -> Node:
        client = kube.Kube(plane.kubeconfig)
        started = time.monotonic()
        archives = images.ensure_all(say)
        self.timings["images"] = time.monotonic() - started

        def step(name: str, start: Callable[[], Any]) -> Any:
            begun = time.monotonic()
            part = start()
            self.parts.append(part)
            self.timings[name] = time.monotonic() - begun
            return part

        self.containerd = step(
            "containerd",
            lambda: containerd.Containerd(
                self.workdir / "containerd", toolchain.cache_dir() / "containerd", self.logs, images.PAUSE
            ).start(),
        )
        begun = time.monotonic()
        for archive in archives.values():
            self.containerd.import_image(archive)
        self.timings["image import"] = time.monotonic() - begun
        for obj in coredns.rbac():
            client.apply(obj, "wallet-devenv")
        config = self.workdir / "kubeconfigs"
        config.mkdir(exist_ok=True)
        step(
            "kubelet",
            lambda: kubelet.Kubelet(
                self.binaries.kubelet, self.workdir / "kubelet", self.logs,
                kubeconfig=plane.node_kubeconfig("kubelet", config / "kubelet"),
                runtime_endpoint=self.containerd.endpoint,  # type: ignore[union-attr]
                client_ca=plane.kubelet_client_ca,
                serving=plane.serving_certificate("kubelet", [NODE_IP], [NODE_NAME]),
            ).start(),
        )  # fmt: skip
        step(
            "kube-proxy",
            lambda: kubeproxy.KubeProxy(
                self.binaries.kube_proxy, self.workdir / "kube-proxy", self.logs,
                plane.node_kubeconfig("kube-proxy", config / "kube-proxy"),
            ).start(),
        )  # fmt: skip
        step(
            "kube-scheduler",
            lambda: scheduler.Scheduler(
                self.binaries.kube_scheduler, self.logs, plane.node_kubeconfig("kube-scheduler", config / "scheduler")
            ).start(),
        )
        step(
            "coredns",
            lambda: coredns.CoreDNS(
                self.binaries.coredns,
                self.workdir / "coredns",
                self.logs,
                plane.node_kubeconfig("coredns", config / "coredns"),
            ).start(),
        )
        for obj in metrics_server.rbac():
            client.apply(obj, "wallet-devenv")
        metrics = step(
            "metrics-server",
            lambda: metrics_server.MetricsServer(
                self.binaries.metrics_server, self.workdir / "metrics-server", self.logs,
                kubeconfig=plane.node_kubeconfig("metrics-server", config / "metrics-server"),
                serving=plane.serving_certificate(
                    "metrics-server", [NODE_IP], [f"{metrics_server.NAME}.{metrics_server.NAMESPACE}.svc"]
                ),
                kubelet_ca=plane.kubelet_client_ca,
            ).start(),
        )  # fmt: skip
        for obj in metrics_server.registration(metrics.port, plane.kubelet_client_ca):
            client.apply(obj, "wallet-devenv")
        step("volumes", lambda: storage.Provisioner(client, self.workdir / "volumes").start())
        begun = time.monotonic()
        processes.wait_until(lambda: self.ready(client), 90, f"node {NODE_NAME} Ready")
        processes.wait_until(
            lambda: client.get("v1", "ServiceAccount", "default", "default"), 60, "default ServiceAccount"
        )
        self.timings["node ready"] = time.monotonic() - begun
        return self

    @staticmethod
    def ready(client: kube.Kube) -> bool:
        node = client.get("v1", "Node", NODE_NAME)
        conditions = ((node or {}).get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def stop(self) -> None:
        """Stop every component, then undo the host changes."""
        self.stop_components()
        self.release()

    def release(self) -> None:
        """Undo the host changes (after the control plane, which binds to the node address, stopped)."""
        self.host.release()

    def stop_components(self) -> None:
        """Stop every component (newest first) and remove every container."""
        for part in reversed(self.parts):
            if part is not self.containerd:
                with contextlib.suppress(Exception):
                    part.stop()
        if self.containerd is not None:
            with contextlib.suppress(Exception):
                self.containerd.stop()
        self.parts.clear()

    def logs_tail(self, lines: int = 30) -> str:
        parts = []
        for path in sorted(self.logs.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"==== {path.name} ====\n" + "\n".join(text))
        return "\n".join(parts)
