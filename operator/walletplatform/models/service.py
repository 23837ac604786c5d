"""The model of one wallet service: the catalog entry in services/*.yaml and, field for field, what
a WalletPlatform may override. Defaults live here once; the renderer never invents its own."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import Field

from walletplatform.models import common


class Resources(common.WalletModel):
    """Container requests and limits."""

    cpu_request: common.Quantity = Field(description="CPU request, e.g. 250m.")
    memory_request: common.Quantity = Field(description="Memory request, e.g. 256Mi.")
    cpu_limit: common.Quantity = Field(description="CPU limit, e.g. 1.")
    memory_limit: common.Quantity = Field(description="Memory limit, e.g. 512Mi.")


class PolicyType(StrEnum):
    PERCENT = "Percent"
    PODS = "Pods"


class SelectPolicy(StrEnum):
    MAX = "Max"
    MIN = "Min"
    DISABLED = "Disabled"


class ScalingRule(common.WalletModel):
    """One HPA scaling policy: change by at most ``value`` (percent or pods) per period."""

    type: PolicyType = Field(description="Percent or Pods.")
    value: int = Field(ge=1, description="How much may change in one period.")
    period_seconds: int = Field(ge=1, le=1800, description="Length of the period in seconds.")


class ScalingDirection(common.WalletModel):
    """HPA behaviour in one direction (autoscaling/v2 HPAScalingRules)."""

    stabilization_window_seconds: int = Field(
        ge=0, le=3600, description="Window over which the HPA takes the most conservative recommendation."
    )
    select_policy: SelectPolicy = Field(default=SelectPolicy.MAX, description="Which policy wins when several apply.")
    policies: list[ScalingRule] = Field(min_length=1, description="Rate limits for this direction.")


class Behavior(common.WalletModel):
    """HPA scale-up and scale-down behaviour."""

    scale_up: ScalingDirection = Field(description="How fast the HPA may add pods.")
    scale_down: ScalingDirection = Field(description="How fast the HPA may remove pods.")


class PodsMetric(common.WalletModel):
    """A per-pod custom metric target (HPA type Pods), e.g. transaction_queue_depth averaging 10."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")] = Field(
        description="Metric name as served by the custom metrics API."
    )
    average_value: common.Quantity = Field(description="Target average value per pod.")


class Targets(common.WalletModel):
    """HPA resource utilisation targets in percent of requests."""

    cpu_utilization: int | None = Field(default=None, ge=1, le=100, description="CPU target, percent.")
    memory_utilization: int | None = Field(default=None, ge=1, le=100, description="Memory target, percent.")


class ThroughputUnit(StrEnum):
    RPS = "RPS"
    TPS = "TPS"
    MPS = "MPS"


class Slo(common.WalletModel):
    """Service level objectives; PrometheusRule alerts are built from them."""

    p95_latency_ms: int = Field(ge=1, description="95th percentile latency objective in milliseconds.")
    throughput: int = Field(ge=1, description="Throughput the service must sustain.")
    throughput_unit: ThroughputUnit = Field(default=ThroughputUnit.RPS, description="Unit of throughput.")
    error_rate_percent: float = Field(
        default=1.0, gt=0, le=100, description="Alert when the 5xx ratio exceeds this percentage."
    )


class EnvVar(common.WalletModel):
    """An environment variable: a literal value or a reference to a key of an existing Secret."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = Field(description="Variable name.")
    value: str | None = Field(default=None, description="Literal value.")
    secret_name: common.DnsLabel | None = Field(default=None, description="Secret to read the value from.")
    secret_key: common.SecretKey | None = Field(default=None, description="Key within secretName.")


Dependency = Literal["postgres", "redis"]


class ServiceDefinition(common.WalletModel):
    """A catalog entry: everything needed to run one wallet service, with production defaults."""

    __ordered__: ClassVar[tuple[common.Ordered, ...]] = (common.Ordered("min_replicas", "max_replicas"),)

    name: common.DnsLabel = Field(description="Service name, e.g. transaction.")
    description: str = Field(default="", description="What the service does.")
    image: common.PinnedImage = Field(description="Container image, pinned by tag or digest.")
    port: int = Field(default=8080, ge=1, le=65535, description="HTTP port the service listens on.")
    metrics_port: int = Field(default=9090, ge=1, le=65535, description="Port serving /metrics.")
    health_path: str = Field(default="/healthz", description="Liveness probe path.")
    ready_path: str = Field(default="/readyz", description="Readiness probe path.")
    min_replicas: int = Field(ge=1, description="Static replica floor (HPA minReplicas).")
    max_replicas: int = Field(ge=1, description="HPA maxReplicas.")
    resources: Resources = Field(description="Container requests and limits.")
    targets: Targets = Field(description="HPA utilisation targets.")
    behavior: Behavior = Field(description="HPA scale-up and scale-down behaviour.")
    extra_metrics: list[PodsMetric] = Field(default_factory=list, description="Per-pod metric targets.")
    slo: Slo = Field(description="Service level objectives.")
    depends_on: list[Dependency] = Field(default_factory=list, description="Data stores it connects to.")
    calls: list[common.DnsLabel] = Field(default_factory=list, description="Services it calls.")
    ingress: bool = Field(default=False, description="Reachable from outside the platform (the gateway).")
    external_egress: bool = Field(
        default=False, description="May open HTTPS connections outside the cluster (payment providers, SMS)."
    )
    env: list[EnvVar] = Field(default_factory=list, description="Environment variables.")
