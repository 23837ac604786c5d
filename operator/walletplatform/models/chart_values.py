"""The operator chart's values as one typed model: charts/wallet-operator/values.schema.json is
generated from it (``walletctl chart``), so ``helm install`` refuses a bad value with its path, and a
unit test checks the chart's own values.yaml against it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from walletplatform.models import common


class Image(common.WalletModel):
    repository: str = Field(pattern=r"^[^\s:@]+$", description="Image repository, without a tag.")
    tag: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", description="Image tag; pin a digest in production."
    )
    pull_policy: Literal["IfNotPresent", "Always", "Never"] = Field(description="imagePullPolicy.")


class Amounts(common.WalletModel):
    cpu: common.Quantity = Field(description="CPU, e.g. 100m.")
    memory: common.Quantity = Field(description="Memory, e.g. 128Mi.")


class Resources(common.WalletModel):
    requests: Amounts = Field(description="Requests of the operator container.")
    limits: Amounts = Field(description="Limits of the operator container.")


class Metrics(common.WalletModel):
    port: int = Field(ge=1, le=65535, description="Port of /metrics.")
    service_monitor: bool = Field(description="Render a ServiceMonitor for the metrics port.")
    prometheus_rule: bool = Field(description="Render the operator's own alerts (a PrometheusRule).")


class PodDisruptionBudget(common.WalletModel):
    enabled: bool = Field(description="Keep one replica through voluntary disruptions (with replicas > 1).")


class Dashboard(common.WalletModel):
    enabled: bool = Field(description="Ship the Grafana dashboard in a ConfigMap for Grafana's sidecar.")
    label: str = Field(pattern=r"^[a-z0-9A-Z._/-]{1,253}$", description="The label the sidecar selects on.")


class Webhook(common.WalletModel):
    enabled: bool = Field(
        description="Serve the admission webhook: kubectl apply refuses what the operator would refuse "
        "(the catalog and the environment guardrails), with the field path."
    )
    port: int = Field(ge=1024, le=65535, description="Container port of the webhook's HTTPS server.")


class ChartValues(common.WalletModel):
    """values.yaml of charts/wallet-operator."""

    image: Image = Field(description="The operator image (operator/Dockerfile).")
    replicas: int = Field(ge=1, le=5, description="Operator replicas: one leads, the others stand by.")
    lease_seconds: int = Field(ge=5, le=300, description="Leader Lease duration.")
    resync_seconds: int = Field(ge=1, le=3600, description="Period of the drift-repairing resync.")
    dependency_retry_seconds: int = Field(ge=1, le=600, description="Retry delay after a failed reconcile.")
    namespaces: list[common.DnsLabel] = Field(
        max_length=100, description="Namespaces to watch (RBAC bound there only); empty: every namespace."
    )
    resources: Resources = Field(description="Requests and limits of the operator container.")
    metrics: Metrics = Field(description="Prometheus metrics.")
    liveness_port: int = Field(ge=1, le=65535, description="Port of /healthz.")
    pod_disruption_budget: PodDisruptionBudget = Field(description="PodDisruptionBudget of the replicas.")
    dashboard: Dashboard = Field(description="The platform's Grafana dashboard.")
    webhook: Webhook = Field(description="The validating admission webhook the operator serves.")


def values_schema() -> dict[str, common.JsonValue]:
    """JSON Schema (2020-12) of the values, for Helm: unknown keys and bad values are refused."""
    schema: dict[str, common.JsonValue] = ChartValues.model_json_schema(by_alias=True, mode="validation")
    return schema
