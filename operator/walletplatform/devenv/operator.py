"""Run the operator as a real process against a control plane, as the chart installs it: the chart's
ServiceAccount and RBAC (install.render_rbac), authenticated with that account's token, never admin.
Used by the integration tests, the demo and the benchmark."""

from __future__ import annotations

import os
import pathlib
import sys
import urllib.error
import urllib.request

from walletplatform import install
from walletplatform.clients import kube
from walletplatform.devenv import controlplane, processes

NAMESPACE = "wallet-system"
ACCOUNT = "wallet-operator"


def install_rbac(client: kube.Kube, namespace: str = NAMESPACE) -> None:
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}, "wallet-devenv")
    for obj in install.render_rbac(namespace, ACCOUNT):
        client.apply(obj, "wallet-devenv")


def operator_kubeconfig(client: kube.Kube, plane: controlplane.ControlPlane, path: pathlib.Path) -> pathlib.Path:
    """A kubeconfig that authenticates as the chart's ServiceAccount."""
    token = client.service_account_token(NAMESPACE, ACCOUNT, seconds=24 * 3600)
    return plane.write_kubeconfig(path, token, user=f"system:serviceaccount:{NAMESPACE}:{ACCOUNT}")


class Operator:
    """One operator process; ``identity`` distinguishes replicas for leader election."""

    def __init__(
        self,
        kubeconfig: pathlib.Path,
        workdir: pathlib.Path,
        identity: str,
        env: dict[str, str] | None = None,
        *,
        webhook_port: int = 0,
    ) -> None:
        """``webhook_port``: serve the admission webhook there, the API server calling it on loopback."""
        self.metrics_port = processes.free_port()
        self.liveness_port = processes.free_port()
        self.identity = identity
        environment = {
            **os.environ,
            "WALLET_LEASE_NAMESPACE": NAMESPACE,
            "WALLET_IDENTITY": identity,
            "PYTHONUNBUFFERED": "1",
            "MALLOC_ARENA_MAX": "2",  # as the image sets it (operator/Dockerfile)
            **(env or {}),
        }
        environment.pop("KUBECONFIG", None)
        argv = [
            sys.executable,
            "-m",
            "walletplatform.cli.main",
            "operator",
            "--kubeconfig",
            str(kubeconfig),
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            "--listen-address",  # a process on the host listens on loopback only
            "127.0.0.1",
        ]
        if webhook_port:
            argv += ["--webhook-port", str(webhook_port), "--webhook-url", f"https://127.0.0.1:{webhook_port}"]
        self.process = processes.Process(f"operator-{identity}", argv, workdir, env=environment)

    def start(self) -> Operator:
        self.process.start()
        processes.wait_until(self.live, 30, f"operator {self.identity} liveness")
        return self

    def _get(self, port: int, path: str) -> tuple[int, str]:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as response:
            return int(response.status), response.read().decode()

    def live(self) -> bool:
        return self._get(self.liveness_port, "/healthz")[0] == 200

    def ready(self) -> bool:
        """Readiness: alive, and the admission webhook serving when it has one."""
        try:
            return self._get(self.liveness_port, "/readyz")[0] == 200
        except urllib.error.HTTPError:
            return False

    def role(self) -> str:
        """'leader' or 'standby', as the liveness endpoint says."""
        return self._get(self.liveness_port, "/healthz")[1]

    def metrics(self) -> str:
        return self._get(self.metrics_port, "/metrics")[1]

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no lease release (a crash)."""
        if self.process.popen is not None:
            self.process.popen.kill()
            self.process.popen.wait(10)

    def stop(self) -> None:
        self.process.stop()

    def logs(self) -> str:
        return self.process.log_path.read_text() if self.process.log_path.exists() else ""
