"""The operator's one settings object, read once from the environment at start-up and passed down.

Every variable has a production default; the chart sets the ones that differ per install."""

from __future__ import annotations

import dataclasses
import os
import pathlib
import socket

from walletplatform import catalog

OPERATOR_MANAGER = "wallet-operator"
SCALER_MANAGER = "wallet-scaler"


@dataclasses.dataclass(frozen=True)
class Settings:
    kubeconfig: pathlib.Path | None = None
    namespaces: tuple[str, ...] = ()
    resync_seconds: float = 60.0
    dependency_retry_seconds: float = 20.0
    metrics_port: int = 8080
    liveness_port: int = 8081
    lease_namespace: str = "wallet-system"
    lease_name: str = "wallet-operator"
    lease_seconds: float = 15.0
    identity: str = dataclasses.field(default_factory=socket.gethostname)
    catalog_dir: pathlib.Path = catalog.DEFAULT_DIR
    prometheus_timeout_seconds: float = 10.0
    # Where the metrics, liveness and webhook servers listen: every address in the pod's own network
    # namespace in-cluster; a process on a host (the dev environment, the tests) passes 127.0.0.1.
    listen_address: str = "0.0.0.0"
    # The admission webhook (controller/webhook.py): off at port 0. The API server reaches it through
    # the chart's Service, or at ``webhook_url`` (https://host:port, for an operator outside the cluster).
    webhook_port: int = 0
    webhook_url: str = ""
    webhook_name: str = "wallet-operator"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """WALLET_* variables; a bad value raises ValueError naming the variable."""
        env = dict(os.environ) if env is None else env
        defaults = cls()

        def number(name: str, default: float) -> float:
            raw = env.get(name)
            if raw is None:
                return default
            try:
                value = float(raw)
            except ValueError:
                raise ValueError(f"{name}: {raw!r} is not a number") from None
            if value <= 0:
                raise ValueError(f"{name}: {raw!r} must be positive")
            return value

        kubeconfig = env.get("WALLET_KUBECONFIG") or env.get("KUBECONFIG")
        return cls(
            kubeconfig=pathlib.Path(kubeconfig) if kubeconfig else None,
            namespaces=tuple(n for n in env.get("WALLET_NAMESPACES", "").split(",") if n),
            resync_seconds=number("WALLET_RESYNC_SECONDS", defaults.resync_seconds),
            dependency_retry_seconds=number("WALLET_DEPENDENCY_RETRY_SECONDS", defaults.dependency_retry_seconds),
            metrics_port=int(number("WALLET_METRICS_PORT", defaults.metrics_port)),
            liveness_port=int(number("WALLET_LIVENESS_PORT", defaults.liveness_port)),
            lease_namespace=env.get("WALLET_LEASE_NAMESPACE", defaults.lease_namespace),
            lease_name=env.get("WALLET_LEASE_NAME", defaults.lease_name),
            lease_seconds=number("WALLET_LEASE_SECONDS", defaults.lease_seconds),
            identity=env.get("WALLET_IDENTITY") or defaults.identity,
            catalog_dir=pathlib.Path(env.get("WALLET_CATALOG_DIR", str(defaults.catalog_dir))),
            prometheus_timeout_seconds=number("WALLET_PROMETHEUS_TIMEOUT_SECONDS", defaults.prometheus_timeout_seconds),
            listen_address=env.get("WALLET_LISTEN_ADDRESS") or defaults.listen_address,
            webhook_port=int(number("WALLET_WEBHOOK_PORT", 1)) if env.get("WALLET_WEBHOOK_PORT") else 0,
            webhook_url=env.get("WALLET_WEBHOOK_URL", defaults.webhook_url),
            webhook_name=env.get("WALLET_WEBHOOK_NAME") or defaults.webhook_name,
        )
