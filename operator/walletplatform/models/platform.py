"""The WalletPlatform custom resource: spec and status.

Read by the renderer (``walletplatform.render``), validated against the catalog by
``walletplatform.catalog.resolve``, turned into a CRD by ``walletplatform.crd``."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar, Literal

import pydantic
from pydantic import Field

from walletplatform.models import common, service


class ServiceOverride(common.WalletModel):
    """One service the platform runs, by catalog name, with optional overrides of the defaults."""

    __ordered__: ClassVar[tuple[common.Ordered, ...]] = (common.Ordered("min_replicas", "max_replicas"),)

    name: common.DnsLabel = Field(description="Catalog name: user, account, transaction, ...")
    image: common.PinnedImage | None = Field(default=None, description="Image override (pinned tag or digest).")
    min_replicas: int | None = Field(default=None, ge=1, description="Static floor override.")
    max_replicas: int | None = Field(default=None, ge=1, description="HPA maxReplicas override.")
    resources: service.Resources | None = Field(default=None, description="Requests/limits override.")
    targets: service.Targets | None = Field(default=None, description="HPA targets override.")
    behavior: service.Behavior | None = Field(default=None, description="HPA behaviour override.")
    env: list[service.EnvVar] | None = Field(default=None, description="Extra environment variables.")
    extra_metrics: list[service.PodsMetric] | None = Field(default=None, description="Per-pod metrics.")
    vpa: bool | None = Field(default=None, description="Render a recommendation-only VPA.")


class EvictionPolicy(StrEnum):
    ALLKEYS_LRU = "allkeys-lru"
    ALLKEYS_LFU = "allkeys-lfu"
    VOLATILE_LRU = "volatile-lru"
    VOLATILE_LFU = "volatile-lfu"
    VOLATILE_TTL = "volatile-ttl"
    NOEVICTION = "noeviction"


class Storage(common.WalletModel):
    """A persistent volume request."""

    size: common.Quantity = Field(description="Volume size, e.g. 10Gi.")
    storage_class: str | None = Field(default=None, description="StorageClass; cluster default when unset.")


class Redis(common.WalletModel):
    """The Redis cluster, run by the OT-Container-Kit redis-operator (RedisCluster)."""

    leaders: int = Field(default=3, ge=3, le=100, description="Leader (primary shard) count, at least 3.")
    followers_per_leader: int = Field(default=1, ge=0, le=5, description="Replicas per leader.")
    memory: common.Quantity = Field(default="1Gi", description="Memory per Redis node.")
    cpu: common.Quantity = Field(default="500m", description="CPU per Redis node.")
    eviction_policy: EvictionPolicy = Field(default=EvictionPolicy.ALLKEYS_LRU, description="maxmemory-policy.")
    persistence: Storage | None = Field(
        default_factory=lambda: Storage(size="10Gi"), description="Data volume; omit for cache-only."
    )
    append_only: bool = Field(default=True, description="Enable the AOF (appendonly yes).")
    version: str = Field(default="v7.0.15", pattern=r"^v?[0-9]+\.[0-9]+\.[0-9]+$", description="Redis version.")
    image: common.PinnedImage | None = Field(
        default=None, description="Redis image override; the project's Debian-based image of `version` when unset."
    )


class PoolMode(StrEnum):
    SESSION = "session"
    TRANSACTION = "transaction"


class Pooler(common.WalletModel):
    """PgBouncer in front of the primary (CloudNativePG Pooler)."""

    enabled: bool = Field(default=True, description="Render a Pooler.")
    instances: int = Field(default=2, ge=1, le=20, description="PgBouncer pods.")
    pool_mode: PoolMode = Field(default=PoolMode.TRANSACTION, description="PgBouncer pool mode.")
    default_pool_size: int = Field(default=25, ge=1, le=1000, description="Server connections per pool.")
    image: common.PinnedImage | None = Field(
        default=None, description="PgBouncer image override; the project's Debian-based image when unset."
    )


class Postgres(common.WalletModel):
    """Postgres: one primary and N replicas, run by CloudNativePG (Cluster)."""

    __cel__: ClassVar[tuple[common.Cel, ...]] = (
        common.Cel(
            "!has(self.synchronousReplicas) || !has(self.instances) || self.synchronousReplicas < self.instances",
            "synchronousReplicas must be less than instances (one instance is the primary)",
            ".synchronousReplicas",
        ),
    )

    instances: int = Field(default=3, ge=1, le=20, description="1 primary + (instances-1) replicas.")
    version: str = Field(
        default="17",
        pattern=r"^[0-9]+(\.[0-9]+)?$",
        description="PostgreSQL version (the image tag); 17 is what Debian trixie and CloudNativePG's images ship.",
    )
    image: common.PinnedImage | None = Field(
        default=None,
        description="PostgreSQL image override (its tag must name the major version, as CloudNativePG requires); "
        "the project's Debian-based image of `version` when unset.",
    )
    storage: Storage = Field(default_factory=lambda: Storage(size="20Gi"), description="Data volume.")
    memory: common.Quantity = Field(default="2Gi", description="Memory per instance; tuning is derived.")
    cpu: common.Quantity = Field(default="1", description="CPU per instance.")
    max_connections: int | None = Field(default=None, ge=10, le=10000, description="Derived when unset.")
    synchronous_replicas: int = Field(default=0, ge=0, le=19, description="Synchronous standbys.")
    pooler: Pooler = Field(default_factory=Pooler, description="Connection pooler.")
    database: common.DnsLabel = Field(default="wallet", description="Application database name.")
    owner: common.DnsLabel = Field(default="wallet", description="Application database owner.")

    @pydantic.model_validator(mode="after")
    def _synchronous_below_instances(self) -> Postgres:
        if self.synchronous_replicas >= self.instances:
            raise common.cross_field_error(
                "synchronousReplicas",
                "{value} is not less than instances {instances}",
                value=self.synchronous_replicas,
                instances=self.instances,
            )
        return self


class PrometheusCredentials(common.WalletModel):
    """Where the scaling engine finds Prometheus credentials: a Secret in the platform's namespace with a
    bearer token, or a user name and password (basic auth). Read when a forecast is refreshed; the
    values are never written anywhere."""

    __cel__: ClassVar[tuple[common.Cel, ...]] = (
        common.Cel(
            "has(self.tokenKey) ? !has(self.usernameKey) && !has(self.passwordKey)"
            " : has(self.usernameKey) && has(self.passwordKey)",
            "give tokenKey, or usernameKey and passwordKey",
            ".tokenKey",
        ),
    )

    secret_name: common.DnsLabel = Field(description="Secret in the platform's namespace.")
    token_key: common.SecretKey | None = Field(default=None, description="Key of a bearer token.")
    username_key: common.SecretKey | None = Field(default=None, description="Key of the basic-auth user name.")
    password_key: common.SecretKey | None = Field(default=None, description="Key of the basic-auth password.")

    @pydantic.model_validator(mode="after")
    def _one_kind_of_credentials(self) -> PrometheusCredentials:
        basic = self.username_key is not None and self.password_key is not None
        partial = (self.username_key is None) != (self.password_key is None)
        if (self.token_key is None) == (not basic) or partial:
            raise common.cross_field_error("tokenKey", "give tokenKey, or usernameKey and passwordKey")
        return self


class Monitoring(common.WalletModel):
    """Prometheus integration."""

    # No user:password@ in the authority: the URL is named in conditions, events and logs.
    prometheus_url: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s/@?#]+([/?#][^\s]*)?$",
        description="Prometheus used by the scaling engine, without credentials (the URL is shown in status).",
    )
    prometheus_credentials: PrometheusCredentials | None = Field(
        default=None, description="A Secret with the credentials Prometheus asks for, if any."
    )
    service_monitor: bool = Field(default=True, description="Render ServiceMonitors.")
    prometheus_rule: bool = Field(default=True, description="Render SLO alert PrometheusRules.")


class WalletPlatformSpec(common.WalletModel):
    """Desired state of one wallet platform."""

    environment: Literal["dev", "staging", "prod"] = Field(default="dev", description="Environment name.")
    services: list[ServiceOverride] = Field(
        min_length=1, max_length=32, description="Services to run, by catalog name."
    )
    image_pull_policy: Literal["IfNotPresent", "Always"] = Field(
        default="IfNotPresent", description="Image pull policy for service containers."
    )
    redis: Redis = Field(default_factory=Redis, description="Redis cluster.")
    postgres: Postgres = Field(default_factory=Postgres, description="Postgres cluster.")
    monitoring: Monitoring = Field(default_factory=Monitoring, description="Monitoring integration.")
    network_policies: bool = Field(default=True, description="Render NetworkPolicies.")
    vpa: bool = Field(default=False, description="Render recommendation-only VPAs for every service.")
    retain_data: bool = Field(
        default=True, description="Keep Postgres and Redis data (PVCs) when the platform is deleted."
    )


class ConditionStatus(StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Condition(common.WalletModel):
    """A standard Kubernetes condition."""

    model_config = common.WalletModel.model_config | {"extra": "ignore"}
    type: str = Field(description="Ready, Reconciled, Degraded, ...")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(pattern=r"^[A-Z][A-Za-z0-9]*$", description="CamelCase reason.")
    message: str = Field(default="", description="Human readable detail.")
    observed_generation: int | None = Field(default=None, description="Generation the condition is about.")
    last_transition_time: datetime | None = Field(default=None, description="When status last changed.")


class ComponentStatus(common.WalletModel):
    """Readiness of one child component, read from the child's own status."""

    model_config = common.WalletModel.model_config | {"extra": "ignore"}
    kind: str = Field(description="Kind of the child.")
    ready: bool = Field(description="Whether it is ready.")
    message: str = Field(default="", description="Why not, when not.")


class ScalingDecisionStatus(common.WalletModel):
    """The last floor the scaling engine applied to one service."""

    model_config = common.WalletModel.model_config | {"extra": "ignore"}
    service: str = Field(description="Service name.")
    floor: int = Field(description="Replica floor (HPA minReplicas).")
    source: str = Field(description="Input that won: static, schedule, predictive, override, hold.")
    policy: str = Field(default="", description="ScalingPolicy that decided it.")
    time: datetime | None = Field(default=None, description="When it was decided.")


class WalletPlatformStatus(common.WalletModel):
    """Observed state of the platform, written by the operator."""

    model_config = common.WalletModel.model_config | {"extra": "ignore"}
    observed_generation: int | None = Field(default=None, description="Last generation reconciled.")
    conditions: list[Condition] = Field(default_factory=list, description="Ready, Reconciled, Degraded.")
    components: dict[str, ComponentStatus] = Field(default_factory=dict, description="Per child readiness.")
    services_ready: str = Field(default="", description="Ready services out of total, e.g. 5/7.")
    postgres: str = Field(default="", description="Postgres state in one word.")
    redis: str = Field(default="", description="Redis state in one word.")
    scaling: list[ScalingDecisionStatus] = Field(default_factory=list, description="Last scaling floors.")
    last_error: str = Field(default="", description="Last reconcile error, kept after events expire.")
    retained: list[str] = Field(default_factory=list, description="Data kept on deletion.")
