"""kube-state-metrics for the demo's Prometheus: the ``kube_*`` series of Deployments and HPAs that the
platform's alerts and dashboard read (replicas available, HPA min/max/current/desired). Built from its
Go module sources (hack/toolchain.sh) and run on the host against the local API server, listening on
loopback, where the demo's Prometheus (also on the host) scrapes it as a cluster's Prometheus scrapes
the kube-state-metrics Deployment: ``honor_labels``, so ``namespace`` is the object's."""

from __future__ import annotations

import pathlib

from walletplatform.devenv import processes
from walletplatform.models import common

JOB = "kube-state-metrics"
# What the rendered alerts and the dashboard select, and nothing else (each resource is a watch).
RESOURCES = ("deployments", "horizontalpodautoscalers")


class KubeStateMetrics(processes.Component):
    def __init__(self, binary: pathlib.Path, logs: pathlib.Path, kubeconfig: pathlib.Path) -> None:
        self.binary = binary
        self.logs = logs
        self.kubeconfig = kubeconfig
        self.port = processes.free_port()
        self.telemetry_port = processes.free_port()
        self.process: processes.Process | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> KubeStateMetrics:
        self.process = processes.Process(
            "kube-state-metrics",
            [
                str(self.binary),
                f"--kubeconfig={self.kubeconfig}",
                "--host=127.0.0.1",
                f"--port={self.port}",
                "--telemetry-host=127.0.0.1",
                f"--telemetry-port={self.telemetry_port}",
                f"--resources={','.join(RESOURCES)}",
            ],
            self.logs,
        ).start()
        self.process.wait_ready(self.ready, 60, "kube-state-metrics /readyz")
        return self

    def ready(self) -> bool:
        return processes.http_ok(f"http://127.0.0.1:{self.telemetry_port}/readyz")  # /readyz is on the telemetry port

    def scrape_config(self, interval: str = "15s") -> common.JsonValue:
        return {
            "job_name": JOB,
            "honor_labels": True,
            "scrape_interval": interval,
            "static_configs": [{"targets": [self.address]}],
        }
