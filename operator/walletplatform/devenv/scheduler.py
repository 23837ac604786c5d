"""kube-scheduler for the local node, on a free loopback port, authenticated as system:kube-scheduler
(the bootstrap RBAC binds that user). Used by devenv.node."""

from __future__ import annotations

import pathlib

from walletplatform.devenv import processes


class Scheduler(processes.Component):
    def __init__(self, binary: pathlib.Path, logs: pathlib.Path, kubeconfig: pathlib.Path) -> None:
        self.binary = binary
        self.logs = logs
        self.kubeconfig = kubeconfig
        self.port = processes.free_port()
        self.process: processes.Process | None = None

    def start(self) -> Scheduler:
        self.process = processes.Process(
            "kube-scheduler",
            [
                str(self.binary),
                f"--kubeconfig={self.kubeconfig}",
                f"--authentication-kubeconfig={self.kubeconfig}",
                f"--authorization-kubeconfig={self.kubeconfig}",
                "--leader-elect=false",
                f"--secure-port={self.port}",
                "--bind-address=127.0.0.1",
                "--v=1",
            ],
            self.logs,
        ).start()
        self.process.wait_ready(self.healthy, 60, "kube-scheduler /healthz")
        return self

    def healthy(self) -> bool:
        return processes.http_ok(f"https://127.0.0.1:{self.port}/healthz", processes.insecure_context())
