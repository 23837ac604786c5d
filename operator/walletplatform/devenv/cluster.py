"""A whole local cluster on this machine: the host network claimed, a control plane bound to the node
address, every CRD, and the node. ``running()`` tears all of it down, whatever happens inside.
Used by ``walletctl cluster``, ``walletctl demo`` and the node integration tests."""

from __future__ import annotations

import contextlib
import pathlib
import time
from collections.abc import Callable, Iterator

from walletplatform.clients import kube
from walletplatform.devenv import controlplane, crds, node, toolchain
from walletplatform.devenv import data_operators as data_operators_mod


class LocalCluster:
    def __init__(self, workdir: pathlib.Path) -> None:
        self.workdir = workdir
        self.binaries = toolchain.ensure_binaries()
        self.node = node.Node(workdir / "node", self.binaries)
        self.plane: controlplane.ControlPlane | None = None
        self.client: kube.Kube | None = None
        self.bring_up_seconds = 0.0

    def start(self, say: Callable[[str], None] = lambda _: None, *, data_operators: bool = False) -> LocalCluster:
        started = time.monotonic()
        say(f"node: claiming the host network (node address {node.NODE_IP} on a dummy interface)")
        self.node.claim()
        say("control plane: etcd, kube-apiserver, kube-controller-manager")
        self.plane = node.start_control_plane(self.workdir / "controlplane", self.binaries)
        self.client = kube.Kube(self.plane.kubeconfig)
        crds.install(self.client)
        say("node: containerd, kubelet, kube-proxy, kube-scheduler, CoreDNS")
        self.node.start(self.plane, say)
        say(f"node: {node.NODE_NAME} Ready ({time.monotonic() - started:.0f}s)")
        if data_operators:
            seconds = data_operators_mod.install(self.client, str(self.binaries.kubectl), say)
            self.node.timings["data operators"] = seconds
            say(f"data tier operators: serving ({seconds:.0f}s)")
        self.bring_up_seconds = time.monotonic() - started
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.node.stop_components()
        if self.plane is not None:
            with contextlib.suppress(Exception):
                self.plane.stop()
        self.node.release()

    def logs_tail(self, lines: int = 30) -> str:
        return "\n".join(filter(None, [self.plane.logs_tail(lines) if self.plane else "", self.node.logs_tail(lines)]))


@contextlib.contextmanager
def running(
    workdir: pathlib.Path, say: Callable[[str], None] = lambda _: None, *, data_operators: bool = False
) -> Iterator[LocalCluster]:
    cluster = LocalCluster(workdir)
    try:
        cluster.start(say, data_operators=data_operators)
        yield cluster
    finally:
        cluster.stop()
